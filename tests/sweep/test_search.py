"""The minimal-width search as a pure state machine over stored observations."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepbench.sweep import Done, Grid, Observation, Probe, find_min_width, next_probe

Oracle = Callable[[int, int], bool]  # (width, attempt) -> reached


def test_find_min_width_is_the_same_loop() -> None:
    done, history = find_min_width(lambda w, a: w >= 37, Grid(1, 100))
    assert done.width == 37 and len(history) == done.probes == expected_count(37)


def run(oracle: Oracle, grid: Grid, reprobes: int = 1) -> tuple[Done, list[Probe]]:
    history: list[Observation] = []
    probes: list[Probe] = []
    for _ in range(1000):
        step = next_probe(history, grid, reprobes)
        if isinstance(step, Done):
            assert step.probes == len(history)
            return step, probes
        assert all((o.width, o.attempt) != (step.width, step.attempt) for o in history)
        probes.append(step)
        history.append(Observation(step.width, step.attempt, oracle(step.width, step.attempt)))
    raise AssertionError("search did not terminate")


def monotone(t: int) -> Oracle:
    return lambda w, a: w >= t


def expected_count(t: int) -> int:
    """Doubling (j + 1) + bisection (j - 1) + a witness when t is a power of two."""
    j = math.ceil(math.log2(t)) if t > 1 else 0
    if t == 1:
        return 2
    return 2 * j + (1 if t == 2**j else 0)


@pytest.mark.parametrize("t", [*range(1, 70), 100, 127, 128, 129, 500, 1000])
def test_exact_threshold_with_log2_probes(t: int) -> None:
    done, probes = run(monotone(t), Grid(1, 4096))
    assert (done.width, done.censored, done.violations, done.consistent) == (t, False, (), True)
    assert len(probes) == expected_count(t)
    assert len(probes) <= 2 * math.ceil(math.log2(max(t, 2))) + 1
    assert [p.width for p in probes if p.reason == "double"] == [
        2**i for i in range(math.ceil(math.log2(t)) + 1)
    ]


def test_resolution_grid_and_minimum() -> None:
    grid = Grid(10, 200, 4)  # widths 12, 16, ..., 200; doubling 12, 24, 48, ...
    done, probes = run(monotone(37), grid)
    assert done.width == 40
    assert all(p.width % 4 == 0 and 12 <= p.width <= 200 for p in probes)
    assert [p.width for p in probes if p.reason == "double"] == [12, 24, 48]


def test_first_width_already_enough() -> None:
    done, probes = run(monotone(1), Grid(3, 100))
    assert done.width == 3
    assert [(p.width, p.reason) for p in probes] == [(3, "double"), (6, "witness")]


def test_censored_when_nothing_up_to_max_succeeds() -> None:
    done, probes = run(monotone(10**6), Grid(1, 100))
    assert done.censored and done.width is None
    assert [p.width for p in probes] == [1, 2, 4, 8, 16, 32, 64, 100]


def test_max_is_probed_when_doubling_overshoots() -> None:
    done, probes = run(monotone(90), Grid(1, 100))
    assert done.width == 90
    assert 100 in [p.width for p in probes]


def test_answer_at_max_needs_no_witness() -> None:
    done, probes = run(monotone(100), Grid(1, 100))
    assert done.width == 100 and probes[-1].reason != "witness"


def test_false_success_is_caught_by_the_witness_and_reprobed() -> None:
    # threshold 10, but width 4 succeeds by luck on its first attempt
    oracle: Oracle = lambda w, a: w >= 10 or (w == 4 and a == 0)  # noqa: E731
    done, probes = run(oracle, Grid(1, 1024))
    assert done.width == 10
    assert done.violations == ((4, 8),) and done.consistent
    reprobes = [(p.width, p.attempt) for p in probes if p.reason == "reprobe"]
    assert reprobes == [(4, 1)]


def test_false_failure_above_a_success_is_reprobed() -> None:
    # threshold 16 but the witness probe at 32 fails once: 16 is re-probed, then 32
    oracle: Oracle = lambda w, a: w >= 16 and not (w == 32 and a == 0)  # noqa: E731
    done, probes = run(oracle, Grid(1, 1024))
    assert done.width == 16 and done.consistent
    assert [(p.width, p.attempt) for p in probes if p.reason == "reprobe"] == [(16, 1), (32, 1)]
    assert done.violations == ((16, 32),)


def test_persistent_non_monotonicity_is_settled_conservatively() -> None:
    # width 4 always succeeds, 8 always fails, from 12 on everything succeeds
    oracle: Oracle = lambda w, a: w == 4 or w >= 12  # noqa: E731
    done, _ = run(oracle, Grid(1, 1024), reprobes=2)
    assert done.width == 12
    assert not done.consistent
    assert (4, 8) in done.violations


def test_no_reprobes_allowed() -> None:
    oracle: Oracle = lambda w, a: w >= 10 or (w == 4 and a == 0)  # noqa: E731
    done, probes = run(oracle, Grid(1, 1024), reprobes=0)
    assert done.width == 10 and not done.consistent
    assert not [p for p in probes if p.reason == "reprobe"]


def test_decision_depends_on_the_set_not_the_order() -> None:
    oracle: Oracle = lambda w, a: w >= 10 or (w == 4 and a == 0)  # noqa: E731
    done, probes = run(oracle, Grid(1, 1024))
    history = [Observation(p.width, p.attempt, oracle(p.width, p.attempt)) for p in probes]
    rng = random.Random(0)
    for _ in range(20):
        rng.shuffle(history)
        assert next_probe(history, Grid(1, 1024)) == done
    # and every prefix, in any order, asks for the same next probe
    for n in range(len(history)):
        prefix = [Observation(p.width, p.attempt, oracle(p.width, p.attempt)) for p in probes[:n]]
        for perm in itertools.islice(itertools.permutations(prefix), 10):
            assert next_probe(list(perm), Grid(1, 1024)) == probes[n]


def test_off_grid_observation_is_rejected() -> None:
    with pytest.raises(ValueError, match="not on the search grid"):
        next_probe([Observation(5, 0, True)], Grid(4, 64, 4))


@given(
    t=st.integers(1, 3000),
    minimum=st.integers(1, 40),
    span=st.integers(0, 2000),
    resolution=st.integers(1, 8),
)
def test_property_monotone_search_is_exact_and_logarithmic(
    t: int, minimum: int, span: int, resolution: int
) -> None:
    grid = Grid(minimum, minimum + span, resolution)
    if grid.k_min > grid.k_max:
        return
    done, probes = run(monotone(t), grid)
    on_grid = [grid.width(k) for k in range(grid.k_min, grid.k_max + 1) if grid.width(k) >= t]
    if on_grid:
        assert done.width == on_grid[0] and not done.censored
    else:
        assert done.censored
    steps = grid.k_max - grid.k_min + 2
    assert len(probes) <= 2 * math.ceil(math.log2(steps)) + 3
    assert len({p.width for p in probes}) == len(probes)  # no width probed twice


@given(
    t=st.integers(1, 300),
    flips=st.sets(st.integers(1, 300), max_size=6),
    reprobes=st.integers(0, 2),
)
def test_property_flaky_outcomes_always_terminate_with_a_bracketed_answer(
    t: int, flips: set[int], reprobes: int
) -> None:
    def oracle(w: int, a: int) -> bool:
        return (w >= t) != (w in flips and a == 0)

    grid = Grid(1, 300)
    done, probes = run(oracle, grid, reprobes)
    latest: dict[int, bool] = {}
    for p in probes:  # the effective outcome of a width is its latest attempt
        latest[p.width] = oracle(p.width, p.attempt)
    if done.censored:
        assert latest[300] is False
    else:
        assert done.width is not None and latest[done.width]
        assert all(not ok for w, ok in latest.items() if w == done.width - 1)
        assert all(ok for w, ok in latest.items() if w > done.width)
    if reprobes >= 1:  # a flip is undone by one re-probe: nothing inconsistent survives
        assert done.consistent
