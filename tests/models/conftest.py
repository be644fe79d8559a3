"""Shared configurations: one small instance of every family and notable variant."""

from __future__ import annotations

from typing import Any

import pytest
import torch

VOCAB = 7
WIDTH = 8

QUIET: dict[str, Any] = {"readout": "every", "gumbel": False, "dropout": 0.0}

# (family, options) — small enough that every test over all of them stays fast
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("elman", {}),
    ("elman", {"nonlinearity": "sigmoid"}),
    ("elman", {"nonlinearity": "relu", "layers": 2}),
    ("lstm", {}),
    ("lstm", {"layers": 2, "embedding": "onehot"}),
    ("gru", {}),
    ("gru", {"layers": 2, "embed_dim": 5}),
    ("rag", {"cell": "lstm"}),
    ("ssm", {}),
    ("ssm", {"layers": 2, "state_dim": 3, "gate": False, "layer_norm": False}),
    ("transformer", {}),
    ("transformer", {"layers": 2, "heads": 2, "pos": "rope"}),
    ("transformer", {"pos": "sinusoidal", "mlp_width": 0, "layer_norm": False, "bias": False}),
    ("transformer", {"pos": "none", "heads": 4, "head_dim": 3, "attn_scale": 1.0}),
    ("hybrid", {}),
    ("hybrid", {"base": "gru", "layers": 2, "pos": "learned", "heads": 2}),
    ("hybrid", {"base": "ssm", "pos": "rope", "heads": 2}),
    ("hybrid", {"base": "elman", "nonlinearity": "sigmoid", "embedding": "onehot"}),
    # tree families: no dropout or noise (the generic tests run in training mode and compare
    # passes), and readout=every so that every column carries logits
    ("grc", {"dropout": 0.0}),
    ("bbt", {"readout": "every", "dropout": 0.0}),
    ("beam_tree", {**QUIET, "beam": 3}),
    ("beam_tree", {**QUIET, "beam": 2, "scorer": "parent", "topk": "st"}),
    ("beam_tree", {**QUIET, "scorer": "parent", "topk": "onesoft"}),
    ("rir", {**QUIET, "chunk": 3, "beam": 2, "align": "rank"}),
    ("rir", {**QUIET, "chunk": 4, "align": "rank", "pre_ssm": True}),
    # looped: state_init=noise and abacus_offset > 0 draw in training mode (a fresh build is in
    # training mode), so forward is deliberately not a function of the input there; their
    # contract checks run in evaluation mode in tests/models/test_looped.py.
    ("looped", {}),
    (
        "looped",
        {
            "block_layers": 2,
            "iterations": 3,
            "heads": 2,
            "injection": "concat",
            "state_init": "embed",
            "pos": "rope",
        },
    ),
    (
        "looped",
        {"iterations": 2, "injection": "none", "pos": "abacus", "digit_max": 4, "abacus_max": 40},
    ),
    ("looped", {"iterations": 2, "pos": "learned", "mlp_width": 0, "layer_norm": False}),
    ("dtnet", {"iterations": 3}),
    ("dtnet", {"iterations": 2, "recall": False, "embed_dim": 3}),
    # bounded precision (docs/precision.md): every family's quantised path
    ("elman", {"state_bits": 2}),
    ("elman", {"nonlinearity": "relu", "state_bits": 3}),
    ("lstm", {"state_bits": 2}),
    ("gru", {"layers": 2, "state_bits": 4}),
    ("rag", {"cell": "lstm", "layers": 2, "state_bits": 3}),
    ("ssm", {"state_bits": 2}),
    ("transformer", {"precision_bits": 6, "pos": "rope", "heads": 2}),
    ("hybrid", {"base": "ssm", "state_bits": 2, "precision_bits": 8}),
    ("hybrid", {"base": "lstm", "state_bits": 4}),
]


def config_id(cfg: tuple[str, dict[str, Any]]) -> str:
    family, opts = cfg
    return family + ("-" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else "")


@pytest.fixture(params=CONFIGS, ids=[config_id(c) for c in CONFIGS])
def config(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    cfg: tuple[str, dict[str, Any]] = request.param
    return cfg


def tokens(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, shape, generator=g)


@pytest.fixture(autouse=True, scope="package")
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread is faster and keeps timings stable on shared CPUs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
