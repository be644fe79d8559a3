"""Prefix-storing RNNs (index_lookup_prefix_rnn, string_equality_prefix_rnn): exact widths,
tightness against the B24-T3 / B24-T11 lower bounds, exhaustive small inputs, long inputs and
hypothesis property tests."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions, theory
from sepbench.constructions import HandBuilt, check_batch
from sepbench.constructions.prefix_rnn import equality_prefix_width, index_prefix_width
from sepbench.tasks import IGNORE


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_rows(hb: HandBuilt, rows: list[list[str]]) -> None:
    inputs = np.array([hb.task.encode(r) for r in rows])
    targets = np.full_like(inputs, IGNORE)
    targets[:, -1] = [hb.task.token_to_id[hb.task.solve(r)[0]] for r in rows]
    res = check_batch(hb, inputs, targets)
    assert res.errors == 0, (res, rows[res.first_error or 0])
    assert res.min_gap >= 0.5 - 1e-6


# --------------------------------------------------------------------------- widths, bounds
@pytest.mark.parametrize("n", [1, 2, 7, 64, 300])
@pytest.mark.parametrize("k", [2, 3, 4, 16])
def test_widths_and_tightness(n: int, k: int) -> None:
    b = math.ceil(math.log2(k))
    assert index_prefix_width(n, k) == (n + 1) * b
    assert equality_prefix_width(n, k) == (n + 3) * b + 2
    hb = constructions.get("index_lookup_prefix_rnn").build(n, alphabet=k, max_length=512)
    assert hb.width == hb.module.width == (n + 1) * b and hb.result_id == "B24-T3"
    negatives = "random" if n < 2 else "mixed"
    he = constructions.get("string_equality_prefix_rnn").build(n, alphabet=k, negatives=negatives)
    assert he.width == he.module.width == (n + 3) * b + 2 and he.result_id == "B24-T11"
    # every unit is one bit: the state never beats the lower bound (theory.md "Sanity") and
    # stays within a constant factor of it (tight up to constants)
    for built in (hb, he) if n >= 2 else ():
        bound = theory.get(built.result_id).width_bound(n, 1, alphabet=k)
        assert built.width >= bound
        assert built.width <= 2 * (1 + 3 / n) * bound + 2


# --------------------------------------------------------------------------- exhaustive
@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 4), (2, 8), (3, 5), (4, 4)])
def test_index_prefix_on_every_input(k: int, n: int) -> None:
    hb = constructions.get("index_lookup_prefix_rnn").build(n, alphabet=k, max_length=16)
    rows = [
        [f"s{c}" for c in word] + [f"@{p}"]
        for word in itertools.product(range(k), repeat=n)
        for p in range(1, n + 1)
    ]
    _check_rows(hb, rows)


@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 3), (2, 6), (3, 3), (5, 2)])
def test_equality_prefix_on_every_pair(k: int, n: int) -> None:
    hb = constructions.get("string_equality_prefix_rnn").build(n, alphabet=k, negatives="random")
    words = [[f"s{c}" for c in w] for w in itertools.product(range(k), repeat=n)]
    _check_rows(hb, [[*x, "|", *y] for x in words for y in words])


# --------------------------------------------------------------------------- long / random
def test_long_inputs() -> None:
    # width Θ(N) makes a step Θ(N²): N = 512 (the state-carrying W_hh alone is 513²)
    hb = constructions.get("index_lookup_prefix_rnn").build(512, alphabet=2, max_length=512)
    batch = hb.task.sample(length=512, batch_size=4, seed=7)
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
    he = constructions.get("string_equality_prefix_rnn").build(512, alphabet=2)
    batch = he.task.sample(length=512, batch_size=6, seed=7)  # negatives: random, one, swap
    assert check_batch(he, batch.inputs, batch.targets).errors == 0


@settings(max_examples=15)
@given(
    which=st.sampled_from(["index", "equality"]),
    n=st.integers(2, 60),
    k=st.integers(2, 9),
    negatives=st.sampled_from(["random", "one", "swap", "mixed"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_random_batches(which: str, n: int, k: int, negatives: str, seed: int) -> None:
    if which == "index":
        hb = constructions.get("index_lookup_prefix_rnn").build(n, alphabet=k, max_length=64)
    else:
        hb = constructions.get("string_equality_prefix_rnn").build(
            n, alphabet=k, negatives=negatives
        )
    batch = hb.task.sample(length=n, batch_size=24, seed=seed)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0, (res, hb.task.decode(batch.inputs[res.first_error or 0]))


# --------------------------------------------------------------------------- the checks bite
def test_damaged_prefix_rnns_fail() -> None:
    hb = constructions.get("string_equality_prefix_rnn").build(16, alphabet=2)
    batch = hb.task.sample(length=16, batch_size=64, seed=1)
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
    with torch.no_grad():
        w = hb.module.get_parameter("rnn.weight_hh_l0")
        w[5, 4] = 0.0  # break the delay line between slots 4 and 5: x_t arrives empty
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0
    # built for N = 16, run at N = 15: the delay no longer matches the length
    hb = constructions.get("string_equality_prefix_rnn").build(16, alphabet=2)
    short = hb.task.sample(length=15, batch_size=64, seed=1)
    assert check_batch(hb, short.inputs, short.targets).errors > 0
