"""verdict: clear synthetic cases for every outcome, lower bounds, the tight H20."""

from __future__ import annotations

import numpy as np
import pytest

from sepbench import theory
from sepbench.errors import UserError
from sepbench.theory import verdicts

NS = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dtype=float)


def fit(widths: np.ndarray | list[float], ns: np.ndarray = NS) -> theory.GrowthFit:
    return theory.fit_growth(ns, widths)


def test_log_curve_is_consistent_with_a_log_upper_bound() -> None:
    v = theory.verdict("B24-T1", fit(3 + 5 * np.log2(NS)))
    assert v.outcome == "consistent"
    assert "log" in v.reason and "\n" not in v.reason


def test_the_construction_width_itself_is_consistent_with_its_result() -> None:
    for rid in ("B24-T1", "B24-T6", "B24-T13", "B24-T7", "W24-H"):
        widths = [theory.min_width(rid, int(n)) for n in NS]
        assert theory.verdict(rid, fit(widths)).outcome == "consistent", rid
    for rid in ("B24-E", "H20", "Y21", "W24-C", "W24-RAG"):
        widths = [theory.min_width(rid, int(n), 32) for n in NS]
        assert theory.verdict(rid, fit(widths)).outcome == "consistent", rid


def test_linear_curve_is_inconsistent_with_a_log_upper_bound() -> None:
    v = theory.verdict("B24-T1", fit(2 * NS + 10))
    assert v.outcome == "inconsistent"
    assert "faster than log N" in v.reason


def test_noisy_power_curve_above_the_threshold_is_inconsistent() -> None:
    rng = np.random.default_rng(0)
    n = np.repeat(NS, 5)
    w = 3 * n**0.9 * np.exp(rng.normal(0, 0.1, size=n.shape))
    assert theory.verdict("B24-T6", theory.fit_growth(n, w)).outcome == "inconsistent"


def test_few_noisy_points_are_undecided() -> None:
    f = theory.fit_growth([16, 64, 256, 1024], [10, 30, 20, 60])
    v = theory.verdict("B24-T1", f)
    assert v.outcome == "undecided"
    assert "straddles 0.5" in v.reason and "N = 16..1024" in v.reason


def test_conflicting_evidence_is_undecided() -> None:
    # an exactly linear curve with a large offset: AICc says linear, the log-log slope is tiny
    v = theory.verdict("B24-T1", fit(100 + 0.01 * NS))
    assert v.outcome == "undecided"
    assert "conflicting" in v.reason


def test_constant_forms() -> None:
    assert theory.verdict("B24-E", fit(np.full(len(NS), 13.0))).outcome == "consistent"
    v = theory.verdict("B24-E", fit(13 + 3 * np.log2(NS)))
    assert v.outcome == "inconsistent"
    assert "constant form" in v.reason
    # log growth is fine for a log bound but not for a constant one
    assert theory.verdict("W24-RAG", fit(7 + 3 * np.log2(NS))).outcome == "consistent"


def test_noisy_constant_is_consistent_with_many_seeds() -> None:
    rng = np.random.default_rng(5)
    n = np.repeat(NS, 6)
    w = 8 + rng.normal(0, 0.5, size=n.shape)
    assert theory.verdict("B24-E", theory.fit_growth(n, w)).outcome == "consistent"


def test_lower_bound_cleared_is_consistent() -> None:
    widths = 2 * np.array([theory.min_width("B24-T3", int(n), 32) for n in NS])
    v = theory.verdict("B24-T3", fit(widths))
    assert v.outcome == "consistent"
    assert "2×" in v.reason and "does not bind" not in v.reason


def test_lower_bound_far_away_says_it_does_not_bind() -> None:
    v = theory.verdict("B24-T3", fit(200 * NS))
    assert v.outcome == "consistent" and "does not bind" in v.reason


def test_one_measurement_below_a_lower_bound_is_inconsistent() -> None:
    n = np.repeat(NS, 2)
    w = np.array([theory.min_width("B24-T3", int(x), 32) * 1.5 for x in n])
    w[7] = 0.5 * theory.min_width("B24-T3", int(n[7]), 32)
    v = theory.verdict("B24-T3", theory.fit_growth(n, w))
    assert v.outcome == "inconsistent"
    assert "below the lower bound" in v.reason and f"N = {n[7]:g}" in v.reason


def test_lower_bound_uses_the_given_precision_and_parameters() -> None:
    widths = [theory.min_width("B24-T3", int(n), 32) * 1.2 for n in NS]
    f = fit(widths)
    assert theory.verdict("B24-T3", f).outcome == "consistent"  # default p = 32
    assert theory.verdict("B24-T3", f, precision_bits=16).outcome == "inconsistent"
    assert theory.verdict("B24-T3", f, alphabet=16).outcome == "inconsistent"
    with pytest.raises(UserError, match="unknown parameter"):
        theory.verdict("B24-T3", f, heads=2)


def test_a_slow_curve_above_a_linear_lower_bound_says_where_it_would_cross() -> None:
    v = theory.verdict("B24-T3", fit(100 + 20 * np.log2(NS)))
    assert v.outcome == "consistent"
    assert "would fall below it near N" in v.reason


def test_tight_h20_checks_both_sides() -> None:
    flat = fit(np.full(len(NS), 8.0))
    v = theory.verdict("H20", flat)
    assert v.outcome == "consistent" and "lower side" in v.reason
    # at p = 1 the lower side needs log2(7) ≈ 2.8 units: width 2 breaks it
    assert theory.verdict("H20", fit(np.full(len(NS), 2.0)), precision_bits=1).outcome == (
        "inconsistent"
    )
    assert theory.verdict("H20", fit(8 + 2 * np.log2(NS))).outcome == "inconsistent"


def test_bad_calls() -> None:
    f = fit(NS)
    with pytest.raises(UserError, match="known results"):
        theory.verdict("nope", f)
    with pytest.raises(UserError, match="GrowthFit"):
        theory.verdict("B24-T1", [1, 2, 3])  # type: ignore[arg-type]


def test_thresholds_cover_every_form() -> None:
    assert {r.form for r in theory.results()} <= set(verdicts.FORM_THRESHOLDS)
    assert str(theory.verdict("B24-T1", fit(NS))).startswith("B24-T1: inconsistent — ")
