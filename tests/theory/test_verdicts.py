"""verdict: every outcome from clear cases, lower bounds on grids, H20, the shipped designs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sepbench import theory
from sepbench.errors import UserError
from sepbench.sweep.search import Grid
from sepbench.sweep.spec import builtin_studies, load_builtin
from sepbench.theory import verdicts

NS = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dtype=float)
GRID = [float(w) for w in Grid(1, 64, per_octave=2).widths()]


def fit(widths: np.ndarray | list[float], ns: np.ndarray = NS) -> theory.GrowthFit:
    return theory.fit_growth(ns, widths)


def grid_fit(lengths: list[int], answers: list[int | None]) -> theory.GrowthFit:
    return theory.fit_growth(
        lengths, intervals=[theory.interval_from_grid(w, GRID) for w in answers]
    )


# ------------------------------------------------------------------------------------------
# growth form
# ------------------------------------------------------------------------------------------


def test_log_curve_is_consistent_with_a_log_upper_bound() -> None:
    v = theory.verdict("B24-T1", fit(3 + 5 * np.log2(NS)))
    assert v.outcome == "consistent"
    assert "log N" in v.hypothesis and v.reason.startswith("checked B24-T1")
    assert "\n" not in v.reason


def test_the_construction_width_itself_is_consistent_with_its_result() -> None:
    for rid in ("B24-T1", "B24-T6", "B24-T13", "B24-T7"):
        widths = [theory.min_width(rid, int(n)) for n in NS]
        assert theory.verdict(rid, fit(widths)).outcome == "consistent", rid
    for rid in ("B24-E", "H20", "Y21", "W24-C", "W24-RAG", "W24-H"):
        widths = [theory.min_width(rid, int(n), 32) for n in NS]
        assert theory.verdict(rid, fit(widths)).outcome == "consistent", rid


def test_linear_curve_is_inconsistent_with_a_log_upper_bound() -> None:
    v = theory.verdict("B24-T1", fit(2 * NS + 10))
    assert v.outcome == "inconsistent"
    assert "grows faster" in v.reason


def test_noisy_power_curve_above_the_form_is_inconsistent() -> None:
    rng = np.random.default_rng(0)
    n = np.repeat(NS, 5)
    w = 3 * n**0.9 * np.exp(rng.normal(0, 0.1, size=n.shape))
    assert theory.verdict("B24-T6", theory.fit_growth(n, w)).outcome == "inconsistent"


def test_few_noisy_points_are_undecided() -> None:
    v = theory.verdict("B24-T1", theory.fit_growth([16, 64, 256, 1024], [10, 30, 20, 60]))
    assert v.outcome == "undecided"
    assert "N = 16..1024" in v.reason and "AICc undefined" in v.reason


def test_a_flat_grid_curve_is_consistent_with_log_when_its_interval_is_tight() -> None:
    # the stored Transformer curve at N = 2..32: no growth, α's interval well below 0.56
    v = theory.verdict("B24-T1", grid_fit([2, 2, 4, 4, 8, 8, 16, 16, 32, 32],
                                          [3, 6, 3, 3, 4, 4, 4, 4, 6, 4]))  # fmt: skip
    assert v.outcome == "consistent" and "no growth beyond it" in v.reason
    # a noisier flat curve over N = 4..16: its interval reaches past 0.5 + one grid step
    short = theory.verdict("B24-T1", grid_fit([4, 4, 8, 8, 16, 16], [3, 6, 3, 6, 4, 6]))
    assert short.outcome == "undecided" and "(one grid step)" in short.reason


def test_a_growing_curve_needs_the_shape_to_be_consistent() -> None:
    # the seeds that agree, as grid answers: growth is detected, the shape is not
    v = theory.verdict("B24-T1", grid_fit([4, 4, 8, 8, 16, 16], [4, 4, 4, 4, 6, 6]))
    assert v.outcome == "undecided" and "growth detected" in v.reason


def test_one_grid_step_as_grid_answers_is_undecided_for_a_constant() -> None:
    v = theory.verdict("B24-E", grid_fit([8, 16, 32, 64], [11, 11, 11, 16]))
    assert v.outcome == "undecided"


def test_constant_forms() -> None:
    assert theory.verdict("B24-E", fit(np.full(len(NS), 13.0))).outcome == "consistent"
    v = theory.verdict("B24-E", fit(13 + 3 * np.log2(NS)))
    assert v.outcome == "inconsistent" and "a constant" in v.hypothesis
    # log growth is fine for a log bound but not for W24-RAG's constant width
    assert theory.verdict("B24-T1", fit(7 + 3 * np.log2(NS))).outcome == "consistent"
    assert theory.verdict("W24-RAG", fit(7 + 3 * np.log2(NS))).outcome == "inconsistent"


def test_a_flat_curve_is_consistent_with_a_constant_only_within_the_grid_resolution() -> None:
    rng = np.random.default_rng(5)
    n = np.repeat(NS, 6)
    w = 8 * np.exp(rng.normal(0, 0.1, size=n.shape))
    snapped = [GRID[int(np.searchsorted(GRID, x))] for x in w]
    on_grid = grid_fit(list(n), snapped)
    v = theory.verdict("B24-E", on_grid)
    assert v.outcome == "consistent" and "one grid step" in v.reason
    # exact noisy points have no resolution to hide in: a slope is never shown to be 0, and
    # the constant law's smaller penalty alone is not evidence
    assert theory.verdict("B24-E", theory.fit_growth(n, w)).outcome == "undecided"


def test_a_zero_width_interval_never_decides() -> None:
    # an exact power law: its interval has zero width; the likelihood decides instead
    f = fit(5 * NS**0.3)
    assert f.alpha_ci is not None and f.alpha_ci[0] == pytest.approx(f.alpha_ci[1])
    v = theory.verdict("B24-T1", f)
    assert "zero width: not used" in v.reason
    assert v.outcome == "inconsistent" and "a faster law fits decisively better" in v.reason


def test_form_slope() -> None:
    assert verdicts.form_slope("log", [2, 4, 8, 16, 32]) == pytest.approx(0.5644, abs=1e-4)
    assert verdicts.form_slope("log", 2.0 ** np.arange(1, 11)) == pytest.approx(0.332, abs=1e-3)
    assert verdicts.form_slope("linear", [2, 4]) == 1.0
    assert verdicts.form_slope("D log k", [2, 4]) == 0.0
    assert math.isinf(verdicts.form_slope("log", [1, 2, 4]))
    # no log law with a >= 0 beats the slope of w = log2 N over the design
    n = np.array([2.0, 4, 8, 16, 32])
    for a in (0.1, 1.0, 10.0):
        slope = np.polyfit(np.log(n), np.log(a + np.log2(n)), 1)[0]
        assert slope < verdicts.form_slope("log", n)


def test_every_form_has_a_family() -> None:
    assert {r.form for r in theory.results()} <= set(verdicts.FORM_FAMILY)
    assert str(theory.verdict("B24-T1", fit(NS))).startswith("B24-T1: inconsistent — checked")


# ------------------------------------------------------------------------------------------
# lower bounds
# ------------------------------------------------------------------------------------------


def test_lower_bound_cleared_is_consistent() -> None:
    widths = 2 * np.array([theory.min_width("B24-T3", int(n), 32) for n in NS])
    v = theory.verdict("B24-T3", fit(widths))
    assert v.outcome == "consistent"
    assert "2×" in v.reason and "far from binding" not in v.reason
    assert "exact answers on every input" in v.hypothesis


def test_lower_bound_far_away_says_so() -> None:
    v = theory.verdict("B24-T3", fit(200 * NS))
    assert v.outcome == "consistent" and "far from binding" in v.reason


def test_one_measurement_below_a_lower_bound_is_inconsistent() -> None:
    n = np.repeat(NS, 2)
    w = np.array([theory.min_width("B24-T3", int(x), 32) * 1.5 for x in n])
    w[7] = 0.5 * theory.min_width("B24-T3", int(n[7]), 32)
    v = theory.verdict("B24-T3", theory.fit_growth(n, w))
    assert v.outcome == "inconsistent"
    assert "below the lower bound" in v.reason and f"N = {n[7]:g}" in v.reason


def test_a_grid_answer_violates_only_through_its_high_end() -> None:
    # B24-T3 at N = 1024, p = 32, alphabet 2: 32 numbers. A seed that worked at 23 violates it;
    # a censored seed never does.
    lengths = [256, 256, 512, 512, 1024, 1024]
    ok = grid_fit(lengths, [11, 16, 23, 23, 32, None])
    assert theory.verdict("B24-T3", ok, alphabet=2).outcome == "consistent"
    bad = grid_fit(lengths, [11, 16, 23, 23, 32, 23])
    v = theory.verdict("B24-T3", bad, alphabet=2)
    assert v.outcome == "inconsistent" and "width 23" in v.reason


def test_vacuous_depends_on_the_smallest_measurable_width() -> None:
    # an LSTM's state is 2 × width: on a grid from 1 the smallest state is 2
    n = [16, 16, 32, 32, 64, 64]  # B24-T3 at p = 32, binary: 0.5, 1 and 2 numbers
    f = theory.fit_growth(n, [128.0] * 6)  # state numbers
    assert theory.verdict("B24-T3", f, alphabet=2, min_width=2).outcome == "vacuous"
    v = theory.verdict("B24-T3", f, alphabet=2, min_width=1)
    assert v.outcome == "consistent" and "where it can bind (N = 64)" in v.reason


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


def test_error_allowed_form_between_the_two_bounds() -> None:
    # at ε = 0.1 on a binary alphabet the bound is 0.531·N/p instead of N/p
    n = np.repeat(NS[3:], 2)  # N = 128..4096: the bounds exceed one unit
    w = np.array([0.8 * theory.min_width("B24-T3", int(x), 32, alphabet=2) for x in n])
    f = theory.fit_growth(n, w)
    exact = theory.verdict("B24-T3", f, alphabet=2)
    average = theory.verdict("B24-T3", f, alphabet=2, success=theory.Success.average(0.9))
    assert exact.outcome == "inconsistent"
    assert average.outcome == "consistent"
    assert "error-allowed form" in average.hypothesis and "ε = 0.1" in average.hypothesis
    # chance-level accuracy allows anything: the bound is 0
    chance = theory.verdict("B24-T3", f, alphabet=2, success=theory.Success.average(0.5))
    assert chance.outcome == "vacuous"


@pytest.mark.parametrize("rid", ["B24-T5", "B24-T11", "B24-T12", "B24-T8", "W24-T"])
def test_no_error_form_means_not_applicable(rid: str) -> None:
    f = fit(np.full(len(NS), 64.0))
    v = theory.verdict(rid, f, success=theory.Success.average(0.9))
    assert v.outcome == "not applicable"
    assert theory.get(rid).error_note in v.reason
    assert theory.verdict(rid, f).outcome in ("consistent", "vacuous", "inconsistent")


def test_tight_h20_checks_both_sides() -> None:
    flat = fit(np.full(len(NS), 8.0))
    v = theory.verdict("H20", flat)
    assert v.outcome == "consistent" and "lower side" in v.reason
    assert "vacuous" in v.reason  # log2(7)/32 units: the grid cannot go below it
    # at p = 1 the lower side needs log2(7) ≈ 2.8 units: width 2 breaks it
    low = theory.verdict("H20", fit(np.full(len(NS), 2.0)), precision_bits=1)
    assert low.outcome == "inconsistent" and low.reason.startswith("checked H20")
    assert theory.verdict("H20", fit(8 + 2 * np.log2(NS))).outcome == "inconsistent"
    avg = theory.verdict("H20", flat, success=theory.Success.average(0.9))
    assert avg.outcome == "consistent" and "not applicable" in avg.reason


# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------


def test_success() -> None:
    assert theory.Success.exact().worst_case and theory.Success.exact().error == 0
    s = theory.Success.average(0.9)
    assert s.sampled and s.error == pytest.approx(0.1) and "0.9" in s.describe()
    with pytest.raises(UserError, match="average"):
        theory.Success(0.9)
    with pytest.raises(UserError, match=r"\(0, 1\]"):
        theory.Success.average(1.5)
    with pytest.raises(UserError, match=r"\(0, 1\]"):
        theory.Success.average(0)


def test_bad_calls() -> None:
    f = fit(NS)
    with pytest.raises(UserError, match="known results"):
        theory.verdict("nope", f)
    with pytest.raises(UserError, match="GrowthFit"):
        theory.verdict("B24-T1", [1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="min_width"):
        theory.verdict("B24-T3", f, min_width=0)
    with pytest.raises(UserError, match="Success"):
        theory.verdict("B24-T3", f, success=0.9)  # type: ignore[arg-type]


def test_outcomes() -> None:
    assert set(theory.OUTCOMES) == {
        "consistent",
        "inconsistent",
        "undecided",
        "vacuous",
        "not applicable",
    }


# ------------------------------------------------------------------------------------------
# the shipped designs
# ------------------------------------------------------------------------------------------

SHIPPED = [n for n in builtin_studies() if n != "smoke"]


@pytest.mark.parametrize("study", SHIPPED)
def test_no_lower_bound_is_consistent_where_it_cannot_bind(study: str) -> None:
    """Every lower bound of a shipped study's tasks, judged as the study measures (average
    accuracy ≥ its threshold, its grid's smallest width, p = 32): where the bound is below the
    grid's minimum at every N, the verdict is vacuous or not applicable — never consistent."""
    spec = load_builtin(study)
    lengths = sorted(spec.lengths)
    seeds = len(spec.seeds)
    success = theory.Success.average(spec.threshold)
    for task_spec, _ in spec.task_labels():
        if task_spec.name not in theory.tasks_covered():
            continue
        for r in theory.for_task(task_spec.name):
            if r.direction == "upper":
                continue
            params = {k: v for k, v in task_spec.params.items() if k in {p.name for p in r.params}}
            for model_spec, _ in spec.model_labels():
                grid = spec.width_for(model_spec)
                n = np.repeat(np.array(lengths, dtype=float), seeds)
                f = theory.fit_growth(n, np.full(len(n), float(grid.min)))
                v = theory.verdict(r.id, f, min_width=grid.min, success=success, **params)
                bounds = [
                    r.error_lower_width(x, 32, error=success.error, **params)
                    if r.error_fn is not None
                    else r.lower_width(x, 32, **params)
                    for x in lengths
                ]
                if all(b is not None and b <= grid.min for b in bounds):
                    assert v.outcome in ("vacuous", "not applicable"), (study, r.id, v)
                if r.error_fn is None:
                    assert v.outcome == "not applicable" or r.direction == "tight", v


def test_a_task_that_fixes_n_evaluates_the_bound_there() -> None:
    """B24-T8 on mqar takes N = 2P (the stored pairs) at every study length: with P = 4 and
    p = 1 the bound is 8/(2·1) = 4 numbers at N = 16, 32 and 64 alike."""
    at_two = theory.fit_growth([16, 32, 64], intervals=[(1, 2)] * 3)
    mqar = {"pairs": 4, "vocab": 64}
    v = theory.verdict("B24-T8", at_two, 1, task="mqar", task_params=mqar)
    assert v.outcome == "inconsistent" and "at N = 2P = 8, p = 1" in v.hypothesis
    assert "below the lower bound 4" in v.reason
    # at p = 2 the bound is 2: cleared; at p = 8 it is 0.5, below the grid's smallest width
    assert theory.verdict("B24-T8", at_two, 2, task="mqar", task_params=mqar).outcome == (
        "consistent"
    )
    assert theory.verdict("B24-T8", at_two, 8, task="mqar", task_params=mqar).outcome == "vacuous"
    # without the task the study's N is the theorem's: 64/(2·1) = 32 at N = 64
    plain = theory.verdict("B24-T8", at_two, 1)
    assert plain.outcome == "inconsistent" and "below the lower bound 32" in plain.reason
    with pytest.raises(UserError, match="task_params lack 'pairs'"):
        theory.verdict("B24-T8", at_two, 1, task="mqar", task_params={})


def test_units_bits_uses_the_bit_form_of_results_stated_in_bits() -> None:
    ns = np.array([8, 16, 32, 64, 128, 256], dtype=float)
    bits = fit(33 * np.ceil(np.log2(ns)) + 43, ns)
    assert theory.verdict("W24-RAG", bits).outcome == "inconsistent"  # packed form: constant
    v = theory.verdict("W24-RAG", bits, units="bits")
    assert v.outcome == "consistent" and "grow no faster than log N" in v.hypothesis
    assert theory.verdict("W24-H", fit(2.0 * ns, ns), units="bits").outcome == "inconsistent"
    with pytest.raises(UserError, match="B24-T1 states no bound in bits"):
        theory.verdict("B24-T1", bits, units="bits")
    with pytest.raises(UserError, match="units must be"):
        theory.verdict("W24-RAG", bits, units="bytes")
