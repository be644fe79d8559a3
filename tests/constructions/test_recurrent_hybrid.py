"""W24-H hybrids: index_lookup_hybrid and associative_recall_hybrid, against the reference
solvers (exhaustive small inputs, N = 1024, hypothesis), with their exact widths and the
claim that the RNN part only tags tokens."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions
from sepbench.constructions import HandBuilt, check_batch
from sepbench.constructions.hybrid_tf import index_hybrid_width, recall_hybrid_width
from sepbench.tasks import IGNORE


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_rows(hb: HandBuilt, rows: list[list[str]]) -> None:
    """Run ``rows`` (token strings) and compare with ``task.solve`` at the last position."""
    inputs = np.array([hb.task.encode(r) for r in rows])
    targets = np.full_like(inputs, IGNORE)
    targets[:, -1] = [hb.task.token_to_id[hb.task.solve(r)[0]] for r in rows]
    res = check_batch(hb, inputs, targets)
    assert res.errors == 0, (res, rows[res.first_error or 0])
    # ±1 codes of b bits: the true symbol wins by min(2, b) (up to e^-12 leakage)
    assert res.min_gap > 0.99


# --------------------------------------------------------------------------- widths
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 16, 17, 1000, 1024, 1025])
@pytest.mark.parametrize("k", [2, 4, 7])
def test_index_hybrid_width(n: int, k: int) -> None:
    want = math.ceil(math.log2(k)) + 2 * max(1, math.ceil(math.log2(n)))
    assert index_hybrid_width(n, k) == want
    if n <= 1024:
        hb = constructions.get("index_lookup_hybrid").build(n, alphabet=k)
        assert hb.width == hb.module.width == want and hb.result_id == "W24-H"


def test_recall_hybrid_width_depends_on_the_key_vocabulary_only() -> None:
    for n in (1, 16, 1024):
        hb = constructions.get("associative_recall_hybrid").build(n, keys=1024, values=16)
        assert hb.width == hb.module.width == 2 * 10 + 4
    assert recall_hybrid_width(2**20, 2) == 2 * 20 + 1
    assert recall_hybrid_width(5, 3) == 2 * 3 + 2


def test_exactly_one_attention_layer_and_a_recurrent_base() -> None:
    for name in ("index_lookup_hybrid", "associative_recall_hybrid"):
        model: Any = constructions.get(name).build(8).module
        assert model.family == "hybrid" and model.options["base"] == "elman"
        attn = [m for m in model.modules() if type(m).__name__ == "Attention"]
        assert len(attn) == 1 and model.options["mlp_width"] == 0


# --------------------------------------------------------------------------- exhaustive
@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 2), (2, 5), (2, 8), (3, 4), (4, 5)])
def test_index_hybrid_on_every_input(k: int, n: int) -> None:
    hb = constructions.get("index_lookup_hybrid").build(n, alphabet=k, max_length=16)
    rows = [
        [f"s{c}" for c in word] + [f"@{p}"]
        for word in itertools.product(range(k), repeat=n)
        for p in range(1, n + 1)
    ]
    _check_rows(hb, rows)


@pytest.mark.parametrize(("keys", "values", "n"), [(2, 1, 2), (4, 2, 3), (4, 3, 4), (5, 2, 2)])
def test_recall_hybrid_on_every_input(keys: int, values: int, n: int) -> None:
    hb = constructions.get("associative_recall_hybrid").build(n, keys=keys, values=values)
    rows = []
    for ks in itertools.permutations(range(keys), n):
        for vs in itertools.product(range(values), repeat=n):
            pairs = [t for a, v in zip(ks, vs, strict=True) for t in (f"k{a}", f"v{v}")]
            rows += [[*pairs, f"k{ks[j]}"] for j in range(n)]
    _check_rows(hb, rows)


# --------------------------------------------------------------------------- long / random
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("index_lookup_hybrid", {"alphabet": 4}),
        ("index_lookup_hybrid", {"alphabet": 7}),
        ("associative_recall_hybrid", {"keys": 1024, "values": 16}),
    ],
)
def test_long_inputs(name: str, params: dict[str, int]) -> None:
    hb = constructions.get(name).build(1024, **params)
    batch = hb.task.sample(length=1024, batch_size=8, seed=4)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0 and res.min_gap > 1.9, res


@settings(max_examples=15)
@given(
    which=st.sampled_from(["index", "recall"]),
    n=st.integers(1, 200),
    k=st.integers(2, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_random_batches(which: str, n: int, k: int, seed: int) -> None:
    if which == "index":
        hb = constructions.get("index_lookup_hybrid").build(n, alphabet=k, max_length=256)
    else:
        hb = constructions.get("associative_recall_hybrid").build(n, keys=n + k, values=k)
    batch = hb.task.sample(length=n, batch_size=16, seed=seed)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0, res
    for row in range(2):  # the reference solver agrees with the batch targets
        toks = hb.task.decode(batch.inputs[row])
        assert hb.task.solve(toks) == [hb.task.vocab[batch.targets[row, -1]]]


# --------------------------------------------------------------------------- the mechanism
def _stream(model: Any, inputs: torch.Tensor) -> torch.Tensor:
    """The attention layer's input: the RNN's states plus the position table."""
    return model.positions(model.core.hidden(model.embed, model.rnn, inputs))


def test_index_hybrid_attention_is_sharp_and_the_rnn_is_memoryless() -> None:
    n = 64
    hb = constructions.get("index_lookup_hybrid").build(n, alphabet=4)
    model: Any = hb.module
    assert torch.count_nonzero(model.rnn.weight_hh_l0) == 0
    batch = hb.task.sample(length=n, batch_size=32, seed=1)
    inputs = torch.from_numpy(batch.inputs)
    with torch.no_grad():
        w = model.block.attn.weights(_stream(model, inputs))[:, 0, -1]  # query row
    p = batch.inputs[:, -1] - hb.task.token_to_id["@1"]
    assert torch.all(w[torch.arange(32), torch.from_numpy(p)] > 1 - 1e-4)


def test_recall_hybrid_rnn_state_depends_on_the_last_two_tokens_only() -> None:
    hb = constructions.get("associative_recall_hybrid").build(16, keys=64, values=8)
    model: Any = hb.module
    batch = hb.task.sample(length=16, batch_size=8, seed=2)
    a = torch.from_numpy(batch.inputs)
    b = a.clone()
    b[:, :-3] = torch.from_numpy(hb.task.sample(length=16, batch_size=8, seed=3).inputs)[:, :-3]
    with torch.no_grad():
        ha = model.core.hidden(model.embed, model.rnn, a)
        hb_ = model.core.hidden(model.embed, model.rnn, b)
    torch.testing.assert_close(ha[:, -2:], hb_[:, -2:], rtol=0, atol=0)


def test_damaged_hybrids_fail() -> None:
    hb = constructions.get("associative_recall_hybrid").build(32, keys=64, values=8)
    batch = hb.task.sample(length=32, batch_size=64, seed=5)
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
    with torch.no_grad():
        hb.module.get_parameter("rnn.weight_hh_l0").zero_()  # values lose their key tags
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0
    hb = constructions.get("index_lookup_hybrid").build(32, alphabet=4)
    batch = hb.task.sample(length=32, batch_size=64, seed=5)
    with torch.no_grad():
        pos = hb.module.get_parameter("positions.pos_emb")
        pos[:32] = pos[:32].flip(0)  # addresses in the wrong order
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0
