"""Issue 9's defects, each as a test that failed on the old verdict rules and fits.

Items 2–6 of the issue: the log-form test over the shipped lengths, zero-width intervals that
decided verdicts, lower bounds that could not fail, theorems applied outside their
hypotheses, the W24 catalogue mismatches. Designs are the shipped studies' (lengths, seeds,
grids, thresholds from sepbench/sweep/studies/*.toml).
"""

from __future__ import annotations

import numpy as np
import pytest

from sepbench import theory
from sepbench.sweep.spec import load_builtin

MAIN = load_builtin("index_lookup")  # N = 2..64, 2 seeds, grid 1..64 (2 per octave)
MAIN_N = np.array(sorted(MAIN.lengths), dtype=float)


def test_an_exact_log_law_on_the_shipped_lengths_is_consistent_with_log() -> None:
    # w = 4·log2 N at N = 2..64, both seeds: it fits α = 0.49 (0.56 over the first version's
    # N = 2..32); AICc prefers log by a wide margin (the old rule called it "undecided:
    # conflicting")
    n = np.repeat(MAIN_N, len(MAIN.seeds))
    fit = theory.fit_growth(n, 4 * np.log2(n))
    assert fit.alpha == pytest.approx(0.494, abs=1e-3)
    assert theory.verdict("B24-T1", fit).outcome == "consistent"


@pytest.mark.parametrize("alpha", [0.2, 0.3, 0.45])
def test_a_power_law_below_one_half_does_not_pass_as_log(alpha: float) -> None:
    n = 2.0 ** np.arange(1, 11)  # N = 2..1024
    v = theory.verdict("B24-T1", theory.fit_growth(n, 3 * n**alpha))
    assert v.outcome != "consistent"
    assert v.outcome == "inconsistent"


def test_a_noisy_log_law_is_rarely_called_inconsistent_with_log() -> None:
    # the issue measured 14 % with 15 % seed noise on the shipped design; the rule now
    # rejects a true log law about as often as a 5 % test may
    rng = np.random.default_rng(2024)
    n = np.repeat(MAIN_N, len(MAIN.seeds))
    outcomes = []
    for _ in range(200):
        w = 4 * np.log2(n) * np.exp(rng.normal(0, 0.15, size=n.shape))
        outcomes.append(theory.verdict("B24-T1", theory.fit_growth(n, w)).outcome)
    assert outcomes.count("inconsistent") <= 10
    assert outcomes.count("consistent") >= 100  # and it still says something


def test_seeds_that_agree_do_not_decide_a_log_verdict() -> None:
    # (4, 4), (4, 4), (6, 6) at N = 4, 8, 16: the fit is indecisive and leans linear
    fit = theory.fit_growth([4, 4, 8, 8, 16, 16], [4, 4, 4, 4, 6, 6])
    assert fit.alpha_ci is not None and fit.alpha_ci[1] - fit.alpha_ci[0] > 0.1
    assert theory.verdict("B24-T1", fit).outcome == "undecided"


def test_one_grid_step_is_not_inconsistent_with_a_constant() -> None:
    # widths 11, 11, 11, 16 at N = 8..64: one step of the geometric grid
    fit = theory.fit_growth([8, 16, 32, 64], [11, 11, 11, 16])
    assert theory.verdict("B24-E", fit).outcome != "inconsistent"


def test_rnn_lower_bounds_cannot_bind_at_the_shipped_lengths() -> None:
    # the stored GRU widths (finite answers) and a flat curve: at p = 32 every RNN lower
    # bound asks for at most one unit at N <= 32, and the grid starts at 1 (the main job's
    # lengths up to 32; at N = 64 the exact-answer bound asks for 2)
    gru = theory.fit_growth([2, 2, 4, 4, 8, 8], [8, 8, 11, 16, 45, 45])
    upto32 = MAIN_N[MAIN_N <= 32]
    flat = theory.fit_growth(np.repeat(upto32, 2), np.ones(2 * len(upto32)))
    for fit in (gru, flat):
        for rid in ("B24-T3", "W24-R"):
            v = theory.verdict(rid, fit, alphabet=2)
            assert v.outcome == "vacuous", v
            assert "could fall below it" in v.reason


def test_a_worst_case_bound_does_not_judge_an_average_accuracy() -> None:
    fit = theory.fit_growth([4, 8, 16, 32], [45, 45, 64, 64])
    success = theory.Success.average(MAIN.threshold)
    v = theory.verdict("B24-T11", fit, success=success)
    assert v.outcome == "not applicable"
    assert "average accuracy ≥ 0.9" in v.reason and "hash" in v.reason


def test_w24_rag_form_quantity_and_formula_agree() -> None:
    r = theory.get("W24-RAG")
    widths = {theory.min_width("W24-RAG", n, 32) for n in (4, 64, 4096, 2**20)}
    assert widths == {3.0} and r.form == "constant" and r.quantity == "width"


def test_w24_h_does_not_borrow_b24_t1s_formula() -> None:
    r = theory.get("W24-H")
    assert "γ" not in r.formula and not r.exact and r.form == "constant"
    assert theory.min_width("W24-H", 256) != theory.min_width("B24-T1", 256) + 1
    assert theory.min_width("W24-H", 16) == theory.min_width("W24-H", 4096)
