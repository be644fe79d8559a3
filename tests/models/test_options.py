"""Option validation: unknown, ill-typed, out-of-range or inapplicable options are UserErrors
naming the option and what is allowed."""

from __future__ import annotations

import pytest

from sepbench import models
from sepbench.errors import UserError


@pytest.mark.parametrize(
    ("family", "options", "words"),
    [
        ("lstm", {"hidden": 3}, ["'hidden'", "allowed", "layers"]),
        ("lstm", {"layers": 0}, ["'layers'", "integer >= 1"]),
        ("lstm", {"layers": "two"}, ["'layers'", "integer >= 1", "'two'"]),
        ("lstm", {"layers": 1.5}, ["'layers'"]),
        ("lstm", {"layers": True}, ["'layers'"]),
        ("elman", {"nonlinearity": "gelu"}, ["'nonlinearity'", "tanh, relu, sigmoid"]),
        ("lstm", {"nonlinearity": "tanh"}, ["unknown option 'nonlinearity'"]),
        ("gru", {"embedding": "onehot", "embed_dim": 4}, ["'embed_dim'", "embedding=learned"]),
        ("rag", {"cell": "lstm", "nonlinearity": "relu"}, ["'nonlinearity'", "cell=elman"]),
        ("rag", {"cell": "transformer"}, ["'cell'", "elman, lstm, gru"]),
        ("ssm", {"state_dim": -1}, ["'state_dim'", ">= 1"]),
        ("transformer", {"pos": "alibi"}, ["'pos'", "learned, sinusoidal, none, rope"]),
        ("transformer", {"attn_scale": "none"}, ["'attn_scale'", "'sqrt'", "> 0"]),
        ("transformer", {"attn_scale": 0}, ["'attn_scale'"]),
        ("transformer", {"attn_scale": float("nan")}, ["'attn_scale'"]),
        ("transformer", {"layer_norm": "maybe"}, ["'layer_norm'", "true or false"]),
        ("transformer", {"mlp_width": -1}, ["'mlp_width'", ">= 0"]),
        ("transformer", {"pos": "rope", "max_len": 9}, ["'max_len'", "pos=learned"]),
        ("transformer", {"pos": "rope", "head_dim": 3}, ["'pos'", "even head_dim"]),
        ("hybrid", {"base": "lstm", "state_dim": 4}, ["'state_dim'", "base=ssm"]),
        ("hybrid", {"base": "ssm", "embedding": "onehot"}, ["'embedding'", "RNN base"]),
        ("hybrid", {"base": "mamba"}, ["'base'", "elman, lstm, gru, ssm"]),
    ],
)
def test_bad_options(family: str, options: dict, words: list[str]) -> None:
    with pytest.raises(UserError) as err:
        models.build(family, 5, 8, **options)
    for word in words:
        assert word in str(err.value)
    assert f"model '{family}'" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"family": "rnn"}, "unknown model family 'rnn'"),
        ({"width": 0}, "width"),
        ({"width": 2.5}, "width"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"seed": -1}, "seed"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_build_arguments(kwargs: dict, word: str) -> None:
    args = {"family": "lstm", "vocab_size": 5, "width": 8, **kwargs}
    with pytest.raises(UserError, match=word):
        models.build(**args)


def test_user_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        models.build("lstm", 5, 8, depth=2)


def test_cli_strings_are_parsed() -> None:
    m = models.build("transformer", 5, 8, layers="2", layer_norm="false", attn_scale="1.5")
    assert m.options["layers"] == 2 and m.options["layer_norm"] is False
    assert m.options["attn_scale"] == 1.5
    assert m.layers[0].attn.scale == 1.5


def test_defaults_are_resolved_and_complete() -> None:
    m = models.build("transformer", 5, 12, heads=3)
    assert m.options == {
        "layers": 1,
        "heads": 3,
        "head_dim": 4,
        "pos": "learned",
        "max_len": 512,
        "attn_scale": "sqrt",
        "layer_norm": True,
        "mlp_width": 48,
        "bias": True,
    }
    assert models.build("gru", 5, 12).options["embed_dim"] == 12
    assert "embed_dim" not in models.build("gru", 5, 12, embedding="onehot").options
    assert "nonlinearity" not in models.build("rag", 5, 12).options
    assert models.build("rag", 5, 12, cell="elman").options["nonlinearity"] == "tanh"


def test_options_dict_and_keywords_merge() -> None:
    m = models.build("lstm", 5, 8, options={"layers": 2}, embedding="onehot")
    assert m.options["layers"] == 2 and m.options["embedding"] == "onehot"
    with pytest.raises(UserError, match="given twice"):
        models.build("lstm", 5, 8, options={"layers": 2}, layers=3)


def test_describe_every_family() -> None:
    for family in models.families():
        d = models.describe(family)
        assert d["family"] == family and d["summary"]
        for name, info in d["options"].items():
            assert info["allowed"] and info["doc"], (family, name)


def test_learned_positions_refuse_long_inputs() -> None:
    import torch

    m = models.build("transformer", 5, 8, max_len=6)
    m(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(UserError, match="max_len"):
        m(torch.zeros(1, 7, dtype=torch.long))


def test_sigmoid_elman_rnn_module_refuses_direct_calls() -> None:
    import torch

    m = models.build("elman", 5, 8, nonlinearity="sigmoid")
    with pytest.raises(AssertionError):
        m.rnn(torch.zeros(1, 2, 8))
