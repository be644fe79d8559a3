"""The shared-prefix evaluator computes what the module's own forward pass computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sepbench import models
from sepbench.constructions import verify as V
from sepbench.constructions.shared_prefix import last_logits


def _full_last(module: torch.nn.Module, prefix: np.ndarray, finals: np.ndarray) -> torch.Tensor:
    rows = np.concatenate([np.repeat(prefix[None], finals.size, 0), finals[:, None]], axis=1)
    with torch.no_grad():
        return module(torch.from_numpy(rows))[:, -1]


@pytest.mark.parametrize(
    "options",
    [
        {"layers": 2, "heads": 2, "pos": "learned", "max_len": 64},
        {"layers": 3, "heads": 1, "pos": "rope", "head_dim": 6},
        {"layers": 1, "heads": 3, "pos": "sinusoidal", "mlp_width": 0, "attn_scale": 0.7},
    ],
)
def test_random_transformers_match_the_full_pass(options: dict) -> None:
    model = models.build("transformer", 11, 12, seed=3, **options).double().eval()
    rng = np.random.default_rng(0)
    prefix = rng.integers(0, 11, size=40)
    finals = np.arange(11)
    fast, full = last_logits(model, prefix, finals), _full_last(model, prefix, finals)
    torch.testing.assert_close(fast, full)


@pytest.mark.parametrize(
    "name, n",
    [("index_lookup_1layer", 16), ("nearest_neighbor_2layer", 8), ("string_equality_2layer", 8),
     ("index_lookup_hybrid", 16), ("associative_recall_hybrid", 8)],
)  # fmt: skip
def test_constructions_match_the_full_pass(name: str, n: int) -> None:
    hb = V.build(name, n)
    batch = hb.task.sample(n, 1, rng=np.random.default_rng(1))
    prefix = batch.inputs[0, :-1]
    finals = np.arange(len(hb.task.vocab))
    torch.testing.assert_close(
        last_logits(hb.module, prefix, finals), _full_last(hb.module, prefix, finals)
    )
