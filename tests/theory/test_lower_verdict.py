"""theory.lower_verdict: a lower bound judged on the per-seed answers alone (no growth law),
as the report does for a curve with too few finite answers to fit (e.g. RNNs at p = 1 bit per
number that are censored above the first N)."""

from __future__ import annotations

import math

import pytest

from sepbench import theory
from sepbench.errors import UserError

AVG = theory.Success.average(0.95)


def _bound(n: int, p: int) -> float:
    """B24-T3's error-allowed width at N, p (binary alphabet): the catalogue's own number."""
    value = theory.get("B24-T3").error_lower_width(n, p, error=0.05, alphabet=2)
    assert value is not None
    return float(value)


def test_one_seed_below_the_bound_refutes_it_without_a_law() -> None:
    low = _bound(16, 1)
    v = theory.lower_verdict(
        "B24-T3", [16], [(low / 4, low / 2)], 1, min_width=1, success=AVG, alphabet=2
    )
    assert v.outcome == "inconsistent"


def test_seeds_above_the_bound_meet_it_censored_or_not() -> None:
    b = _bound(64, 1)
    v = theory.lower_verdict(
        "B24-T3",
        [4, 16, 64],
        [(6.0, 8.0), (64.0, math.inf), (64.0, math.inf)],
        1,
        min_width=1,
        success=AVG,
        alphabet=2,
    )
    assert b > 1 and v.outcome == "consistent"
    assert "per-seed answers" in v.reason and "would fall below" not in v.reason


def test_a_bound_below_the_grid_is_vacuous_and_a_worst_case_bound_not_applicable() -> None:
    v = theory.lower_verdict("B24-T3", [4], [(1.0, 2.0)], 32, min_width=1, success=AVG, alphabet=2)
    assert v.outcome == "vacuous"
    # B24-T5 (1-layer Transformer on Dyck) has no error-allowed form
    lower = [r for r in theory.results() if r.direction == "lower" and r.error_fn is None]
    assert lower
    v = theory.lower_verdict(lower[0].id, [8], [(4.0, 6.0)], 32, min_width=1, success=AVG)
    assert v.outcome == "not applicable"


def test_it_agrees_with_verdict_where_a_law_can_be_fitted() -> None:
    lengths = [4, 8, 16, 32]
    intervals = [(8.0, 11.0), (16.0, 23.0), (32.0, 45.0), (45.0, 64.0)]
    fit = theory.fit_growth(lengths, intervals=intervals, n_boot=0)
    full = theory.verdict("B24-T3", fit, 1, min_width=1, success=AVG, alphabet=2)
    alone = theory.lower_verdict(
        "B24-T3", lengths, intervals, 1, min_width=1, success=AVG, alphabet=2
    )
    assert full.outcome == alone.outcome


def test_bad_answers_and_non_lower_results_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="low <= high"):
        theory.lower_verdict("B24-T3", [8], [(5.0, 3.0)], 1, alphabet=2)
    with pytest.raises(UserError, match="one interval per length"):
        theory.lower_verdict("B24-T3", [8, 16], [(5.0, 6.0)], 1, alphabet=2)
    with pytest.raises(UserError, match="needs a growth fit"):
        theory.lower_verdict("B24-T1", [8], [(5.0, 6.0)], 32)
