"""The attention constructions (B24-T1, T6, T13, T7, induction): one shared table of cases run
against both the reference solver and each construction, long lengths, property tests over
random inputs at random lengths, widths against the catalogue, the designed invariants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions, theory
from sepbench.constructions import verify as V
from sepbench.constructions.addresses import attention, margin_dim, random_addresses
from sepbench.constructions.base import HandBuilt

ATTENTION = (
    "index_lookup_1layer",
    "string_equality_2layer",
    "disjointness_2layer",
    "nearest_neighbor_2layer",
    "associative_recall_2layer",
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------- the shared table


@dataclass(frozen=True)
class Case:
    """A construction, its builder parameters, and one input as token strings."""

    construction: str
    tokens: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        if self.construction == "index_lookup_1layer":
            return len(self.tokens) - 1
        return (len(self.tokens) - 1) // 2


def _lookup(symbols: list[int], p: int, **params: Any) -> Case:
    tokens = (*(f"s{x}" for x in symbols), f"@{p}")
    return Case("index_lookup_1layer", tokens, params)


def _pair(name: str, prefix: str, x: list[int], y: list[int], **params: Any) -> Case:
    tokens = (*(f"{prefix}{v}" for v in x), "|", *(f"{prefix}{v}" for v in y))
    return Case(name, tokens, params)


def _nn(points: list[int], labels: list[int], query: int, bits: int) -> Case:
    tokens = [t for c, lab in zip(points, labels, strict=True) for t in (f"p{c}", f"y{lab}")]
    return Case("nearest_neighbor_2layer", (*tokens, f"p{query}"), {"bits": bits})


def _recall(keys: list[int], values: list[int], query: int, nkeys: int) -> Case:
    tokens = [t for k, v in zip(keys, values, strict=True) for t in (f"k{k}", f"v{v}")]
    return Case("associative_recall_2layer", (*tokens, f"k{query}"), {"keys": nkeys})


def _long_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    big = 2048
    x = rng.integers(0, 2, size=1024).tolist()
    y_one = list(x)
    y_one[-1] = 1 - y_one[-1]
    first_only = [1] + [0] * 1023
    cover = [0] + [1] * 1023
    heavy = [c for c in range(2048) if bin(c).count("1") >= 2]  # distance >= 2 from p0
    nn_points = rng.permutation(heavy)[:1023].tolist()
    nn_points.insert(int(rng.integers(0, 1024)), 1 << 5)  # the unique nearest, distance 1
    return [
        _lookup([3] * (big - 1) + [1], big, alphabet=4, max_length=big),
        _lookup([2] + [1] * (big - 1), 1, alphabet=4, max_length=big),
        _lookup(rng.integers(0, 4, size=big).tolist(), 1000, alphabet=4, max_length=big),
        _pair("string_equality_2layer", "s", x, x),
        _pair("string_equality_2layer", "s", x, y_one),
        _pair("disjointness_2layer", "b", first_only, first_only),
        _pair("disjointness_2layer", "b", first_only, cover),
        _pair("disjointness_2layer", "b", cover[::-1], cover),
        _nn(nn_points, (np.arange(1024) % 2).tolist(), 0, bits=11),
        _recall(rng.permutation(1024).tolist(), (np.arange(1024) % 16).tolist(), 5, 1024),
    ]


CASES: list[Case] = [
    _lookup([2, 0, 3, 3, 1], 4),
    _lookup([1], 1, alphabet=2),
    _lookup([0, 1, 1, 0, 1, 0, 0], 7, alphabet=2),
    _lookup([4, 6, 5, 0], 2, alphabet=7),
    _pair("string_equality_2layer", "s", [0, 1], [0, 1]),
    _pair("string_equality_2layer", "s", [0, 1], [1, 0]),
    _pair("string_equality_2layer", "s", [1], [0], negatives="one"),
    _pair("string_equality_2layer", "s", [2, 0, 1], [2, 0, 1], alphabet=3),
    _pair("string_equality_2layer", "s", [2, 0, 1], [2, 1, 1], alphabet=3),
    _pair("disjointness_2layer", "b", [1, 0], [0, 1]),
    _pair("disjointness_2layer", "b", [1], [1]),
    _pair("disjointness_2layer", "b", [0, 0, 0], [0, 0, 0]),
    _pair("disjointness_2layer", "b", [1, 1, 1], [0, 0, 1]),
    _nn([0, 7], [0, 1], 1, bits=3),
    _nn([0, 7, 3], [1, 0, 1], 6, bits=3),
    _nn([5], [1], 2, bits=3),
    _recall([3, 0], [1, 2], 3, nkeys=4),
    _recall([3, 0, 2], [1, 2, 1], 2, nkeys=4),
    _recall([0], [5], 0, nkeys=1),
    *_long_cases(),
]

_BUILT: dict[tuple[str, int, str], HandBuilt] = {}


def _admissible_build(name: str, n: int, start: int = 1, **params: Any) -> HandBuilt:
    """The build at the smallest address dimension ≥ ``start`` whose draw has the margin."""
    c = constructions.get(name)
    assert c.admissible is not None
    dim = c.admissible(n, start, **params)
    hb = c.build(n, addr_dim=dim, **params)
    assert hb.hypotheses_hold, hb.hypotheses
    return hb


def _build(case: Case) -> HandBuilt:
    key = (case.construction, case.length, repr(sorted(case.params.items())))
    if key not in _BUILT:
        _BUILT[key] = _admissible_build(case.construction, case.length, **case.params)
    return _BUILT[key]


def _answer(hb: HandBuilt, tokens: tuple[str, ...]) -> str:
    ids = torch.from_numpy(hb.task.encode(tokens)[None, :])
    with torch.no_grad():
        logits = hb.module(ids)
    return hb.task.vocab[int(logits[0, -1].argmax())]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.construction}-N{c.length}")
def test_shared_table_reference_and_construction_agree(case: Case) -> None:
    hb = _build(case)
    expected = hb.task.solve(list(case.tokens))
    assert expected == [_answer(hb, case.tokens)]


def test_the_table_covers_both_answers_and_long_lengths() -> None:
    for name in ATTENTION:
        mine = [c for c in CASES if c.construction == name]
        assert max(c.length for c in mine) >= 1024
        answers = {tuple(_build(c).task.solve(list(c.tokens))) for c in mine}
        assert len(answers) >= 2


# ----------------------------------------------------------------- property tests


def _sampled_ok(hb: HandBuilt, rows: int, seed: int) -> V.VerifyRow:
    return V.check(hb, samples=rows, hard_limit=4, exhaustive_limit=0, seed=seed)


PROPERTY_PARAMS: dict[str, Callable[[int], dict[str, Any]]] = {
    "index_lookup_1layer": lambda n: {"alphabet": 2 + n % 5},
    "string_equality_2layer": lambda n: {"alphabet": 2 + n % 3, "negatives": "one"},
    "disjointness_2layer": lambda n: {},
    "nearest_neighbor_2layer": lambda n: {"labels": 2 + n % 3},
    "associative_recall_2layer": lambda n: {"values": 3 + n % 5},
}


@pytest.mark.parametrize("name", ATTENTION)
@settings(max_examples=6, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 2**16), extra=st.integers(0, 60))
def test_any_draw_with_the_margin_gives_a_correct_network(
    name: str, n: int, seed: int, extra: int
) -> None:
    """η comes from γ, so *every* draw that satisfies the margin (at any admissible dimension,
    not only the smallest) answers every position's query and the hard and random rows."""
    hb = _admissible_build(name, n, 1 + extra, seed=seed, **PROPERTY_PARAMS[name](n))
    row = V.check(hb, samples=16, hard_limit=4, exhaustive_limit=0, seed=seed, contexts=1)
    assert row.verdict == "pass" and row.every > 0, row.counterexample


@pytest.mark.parametrize("name", ATTENTION)
def test_long_lengths_random_batches(name: str) -> None:
    n = 1024 if name == "index_lookup_1layer" else 512
    params: dict[str, Any] = {"max_length": n} if name == "index_lookup_1layer" else {}
    hb = _admissible_build(name, n, **params)
    row = _sampled_ok(hb, 4, 1)
    assert row.verdict == "pass" and row.sampled == 4, row.counterexample


# --------------------------------------------------------------------- widths, invariants


@pytest.mark.parametrize("n", [2, 16, 64])
def test_default_widths_follow_the_formulas_and_the_catalogue(n: int) -> None:
    k = 2 + n % 5
    b24_t1 = constructions.get("index_lookup_1layer").build(n, alphabet=k)
    assert b24_t1.width == theory.min_width("B24-T1", n, alphabet=k)  # theory.md's formula
    se = constructions.get("string_equality_2layer").build(n, alphabet=k)
    kaddr = theory.address_dim(2 * n + 1)
    assert se.width == int(np.ceil(np.log2(k))) + 2 * kaddr + 1
    assert se.width <= theory.min_width("B24-T6", n, alphabet=k)
    dj = constructions.get("disjointness_2layer").build(n)
    assert dj.width == 2 * kaddr + 2 <= theory.min_width("B24-T13", n)
    nn = constructions.get("nearest_neighbor_2layer").build(n)
    assert nn.width == 8 + 1 + 2 * kaddr + 1 <= theory.min_width("B24-T7", n)
    ar = constructions.get("associative_recall_2layer").build(n)
    assert ar.width == 3 * theory.address_dim(max(2 * n + 1, n)) + 4 + 1
    for hb in (b24_t1, se, dj, nn, ar):
        assert hb.width == hb.module.width
        assert hb.width_params["addr_dim"] >= 1 and hb.width_formula


def test_registry_entries() -> None:
    reg = constructions.registry()
    for name in ATTENTION:
        c = reg[name]
        assert c.form == "log" and c.width_knob == "addr_dim"
        if c.result_id != "IND":
            assert name in theory.get(c.result_id).constructions


def test_index_lookup_puts_three_quarters_on_the_queried_position() -> None:
    n = 1024
    hb = _admissible_build("index_lookup_1layer", n, max_length=n)
    batch = hb.task.sample(n, 6, seed=0)
    model: Any = hb.module
    x = model.positions(model.embed(torch.from_numpy(batch.inputs)))
    with torch.no_grad():
        w = attention(model, 0).weights(x)[:, 0, -1, :]
    p = batch.inputs[:, -1] - hb.task.token_to_id["@1"]
    assert bool((w[torch.arange(6), torch.from_numpy(p)] > 0.75).all())


def test_addresses_are_nested_in_the_dimension_and_measured() -> None:
    small, big = random_addresses(50, 16, seed=3), random_addresses(50, 64, seed=3)
    assert np.allclose(small.vectors * 4, big.vectors[:, :16] * 8)
    gram = big.vectors @ big.vectors.T
    np.fill_diagonal(gram, 0.0)
    assert np.isclose(big.max_abs_cross, np.abs(gram).max())
    np.fill_diagonal(gram, -np.inf)
    assert np.isclose(big.max_cross, gram.max())
    assert np.allclose((big.vectors**2).sum(1), 1.0)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(2, 60), gamma=st.sampled_from([0.2, 0.25, 0.5]), seed=st.integers(0, 99),
       start=st.integers(1, 80))  # fmt: skip
def test_margin_dim_is_the_smallest_dimension_with_the_margin(
    count: int, gamma: float, seed: int, start: int
) -> None:
    """The exact scan with jumps agrees with a brute-force scan of every dimension."""
    k = margin_dim(count, gamma, seed, 0, start)
    assert k is not None and k >= start
    assert random_addresses(count, k, seed).margin_holds(gamma)
    for d in range(start, k):
        assert not random_addresses(count, d, seed).margin_holds(gamma)


def test_a_draw_without_the_margin_fails_verification_whatever_its_rows() -> None:
    # two positions, one dimension: the addresses are ±1: cross product ±1 > γ, always
    hb = constructions.get("index_lookup_1layer").build(2, alphabet=2, addr_dim=1, seed=0)
    assert not hb.hypotheses_hold and "FAILS" in hb.hypotheses
    row = V.check(hb)
    assert row.verdict == "fail" and not row.hypotheses_hold


@pytest.mark.parametrize("name", ATTENTION)
def test_float32_at_n_256(name: str) -> None:
    hb = _admissible_build(name, 256)
    contexts = 1 if V.shares_prefix(hb.task.name) else 0  # pair tasks: 256 full rows each
    row = V.check(hb, "float32", samples=8, hard_limit=4, contexts=contexts)
    assert row.verdict == "pass", row.counterexample
