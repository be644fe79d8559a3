"""fit_growth: exact points and grid intervals, the likelihood's laws, α's interval, errors."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sepbench import theory
from sepbench.errors import UserError
from sepbench.sweep.search import Grid
from sepbench.theory import fits

NS = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dtype=float)
GRID = [float(w) for w in Grid(1, 64, per_octave=2).widths()]


def answers(widths: list[int | None], grid: list[float] = GRID) -> list[tuple[float, float]]:
    return [theory.interval_from_grid(w, grid) for w in widths]


# ------------------------------------------------------------------------------------------
# exact points
# ------------------------------------------------------------------------------------------


def test_exact_log_data_log_law_wins_with_its_parameters() -> None:
    fit = theory.fit_growth(NS, 3 + 5 * np.log2(NS))
    assert fit.best == "log"
    assert fit.laws["log"].params["a"] == pytest.approx(3)
    assert fit.laws["log"].params["b"] == pytest.approx(5)
    assert fit.criterion == "AICc" and fit.exact and fit.ci_method == "t"


def test_exact_linear_data_linear_law_wins() -> None:
    fit = theory.fit_growth(NS, 5 + 3 * NS)
    assert fit.best == "linear"
    assert fit.laws["linear"].params["b"] == pytest.approx(3)
    assert fit.laws["linear"].params["a"] == pytest.approx(5)


def test_exact_decreasing_line_is_found_on_its_branch() -> None:
    n = np.array([2.0, 4, 8, 16, 32])
    fit = theory.fit_growth(n, 40 - 6 * np.log2(n))
    assert fit.best == "log"
    assert fit.laws["log"].params["b"] == pytest.approx(-6)


def test_exact_power_data_power_law_wins_with_a_zero_width_interval() -> None:
    fit = theory.fit_growth(NS, 2 * NS**0.9)
    assert fit.best == "power"
    assert fit.alpha == pytest.approx(0.9)
    assert fit.alpha_ci == pytest.approx((0.9, 0.9))
    assert fit.laws["power"].params["c"] == pytest.approx(2)
    assert fit.laws["power"].predict(100.0) == pytest.approx(2 * 100**0.9)
    assert any("zero width" in note for note in fit.notes)


def test_constant_data_constant_law_wins() -> None:
    fit = theory.fit_growth(NS, np.full(len(NS), 7.0))
    assert fit.best == "constant"
    assert fit.alpha == pytest.approx(0.0, abs=1e-12)
    assert not fit.growth_detected


def test_exact_points_give_the_classical_t_interval() -> None:
    # ln w = ln 3 + 0.7 ln N + noise: the slope's t-interval, computed here independently
    rng = np.random.default_rng(7)
    n = np.repeat(NS[:6], 2)
    w = 3 * n**0.7 * np.exp(rng.normal(0, 0.2, size=n.shape))
    fit = theory.fit_growth(n, w)
    x, y = np.log(n), np.log(w)
    slope, icept = np.polyfit(x, y, 1)
    s = math.sqrt(np.sum((y - icept - slope * x) ** 2) / (len(x) - 2))
    half = 2.2281388519649385 * s / math.sqrt(np.sum((x - x.mean()) ** 2))  # t(0.975, 10)
    assert fit.alpha == pytest.approx(slope)
    assert fit.alpha_ci == pytest.approx((slope - half, slope + half))


def test_loglik_is_the_lognormal_density_and_aicc_adds_the_correction() -> None:
    fit = theory.fit_growth(NS, 1 + NS**0.3)
    n = len(NS)
    y = np.log(1 + NS**0.3)
    for law in fit.laws.values():
        mu = np.log(law.predict(NS))
        s = law.sigma
        expect = np.sum(-0.5 * ((y - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi) - y)
        assert law.loglik == pytest.approx(expect, rel=1e-9, abs=1e-9)
        k = law.n_params + 1
        assert law.aic == pytest.approx(-2 * law.loglik + 2 * k)
        assert law.aicc == pytest.approx(law.aic + 2 * k * (k + 1) / (n - k - 1))


def test_small_samples_fall_back_to_aic() -> None:
    fit = theory.fit_growth([16, 64, 256, 1024], [10, 30, 20, 60])
    assert fit.criterion == "AIC"
    assert any("AICc undefined" in note for note in fit.notes)
    assert fit.laws["log"].aicc is None
    assert theory.fit_growth([16, 64, 256, 1024, 4096], [1, 2, 3, 4, 6]).criterion == "AICc"


def test_no_interval_when_asked() -> None:
    fit = theory.fit_growth(NS, NS, ci=None)
    assert fit.alpha_ci is None and fit.alpha == pytest.approx(1.0)
    assert theory.fit_growth(NS, NS, n_boot=0).alpha_ci is None  # the old switch still works


# ------------------------------------------------------------------------------------------
# grid intervals and censoring
# ------------------------------------------------------------------------------------------


def test_interval_from_grid() -> None:
    assert theory.interval_from_grid(11, GRID) == (8.0, 11.0)
    assert theory.interval_from_grid(1, GRID) == (0.0, 1.0)
    assert theory.interval_from_grid(None, GRID) == (64.0, math.inf)
    with pytest.raises(UserError, match="not on the grid"):
        theory.interval_from_grid(10, GRID)
    with pytest.raises(UserError, match="increasing"):
        theory.interval_from_grid(2, [1, 3, 2])


def test_exact_pairs_through_intervals_match_exact_points() -> None:
    rng = np.random.default_rng(3)
    n = np.repeat(NS[:5], 2)
    w = 4 * n**0.4 * np.exp(rng.normal(0, 0.3, size=n.shape))
    a = theory.fit_growth(n, w)
    b = theory.fit_growth(n, intervals=list(zip(w, w, strict=True)))
    for law in theory.LAWS:
        assert b.laws[law].loglik == pytest.approx(a.laws[law].loglik, rel=1e-7)
    assert b.best == a.best and b.exact


def test_wide_intervals_widen_the_exponent_interval() -> None:
    n = [4, 4, 8, 8, 16, 16, 32, 32]
    exact = theory.fit_growth(n, [4, 4, 6, 6, 8, 8, 11, 11])
    grid = theory.fit_growth(n, intervals=answers([4, 4, 6, 6, 8, 8, 11, 11]))
    assert exact.ci_width is not None and grid.ci_width is not None
    assert grid.ci_width > exact.ci_width > 0
    assert grid.alpha_ci is not None and grid.alpha_ci[0] < 0.5 < grid.alpha_ci[1]
    assert grid.ci_method == "profile" and not grid.exact


def test_seeds_that_agree_on_a_coarse_grid_give_an_honest_interval() -> None:
    # the bootstrap gave [α̂, α̂] here; the grid cells leave α between about 0 and 0.43
    fit = theory.fit_growth([4, 4, 8, 8, 16, 16], intervals=answers([4, 4, 4, 4, 6, 6]))
    assert fit.alpha_ci is not None
    lo, hi = fit.alpha_ci
    assert hi - lo > 0.3
    assert lo <= 0.05 and 0.38 < hi < 0.5
    assert not any("zero width" in note for note in fit.notes)


def test_censored_seeds_enter_the_likelihood() -> None:
    # the stored GRU curve: 8, 8 | 11, 16 | 45, 45 | > 64 at N = 16 and 32
    n = [2, 2, 4, 4, 8, 8, 16, 16, 32, 32]
    fit = theory.fit_growth(n, intervals=answers([8, 8, 11, 16, 45, 45, None, None, None, None]))
    assert fit.n_censored == 4
    assert math.isinf(fit.widths[-1]) and fit.widths[0] == 8
    assert fit.best == "power" and fit.alpha > 1
    assert fit.alpha_ci is not None and fit.alpha_ci[0] > 0.9
    without = theory.fit_growth(n[:6], intervals=answers([8, 8, 11, 16, 45, 45]))
    # the censored seeds say the width kept growing: they cannot lower the exponent
    assert fit.alpha >= without.alpha - 1e-6
    assert any("right-censored" in note for note in fit.notes)
    assert "right-censored" in fit.summary()


def test_an_answer_that_rests_on_censored_points_says_so() -> None:
    n = [2, 2, 4, 4, 8, 8, 16, 16, 32, 32]
    flat = answers([6, 6, 6, 8, 6, 6, None, None, None, None])
    fit = theory.fit_growth(n, intervals=flat)
    assert fit.rests_on_censored  # without them the curve is flat; with them it jumps
    steady = answers([6, 6, 11, 11, 23, 23, 45, 45, None, None])
    assert not theory.fit_growth(n, intervals=steady).rests_on_censored


def test_growth_detected_agrees_with_the_interval() -> None:
    up = theory.fit_growth([4, 4, 8, 8, 16, 16], intervals=answers([4, 4, 6, 6, 11, 11]))
    assert up.growth_detected and up.alpha_ci is not None and up.alpha_ci[0] >= 0
    flat = theory.fit_growth([4, 4, 8, 8, 16, 16], intervals=answers([4, 6, 4, 6, 4, 6]))
    assert not flat.growth_detected and flat.alpha_ci is not None and flat.alpha_ci[0] < 0


def test_exponent_alone_matches_the_fit() -> None:
    n = [2, 2, 4, 4, 8, 8, 16, 16]
    iv = answers([3, 4, 4, 6, 8, 8, 11, 16])
    e = theory.exponent(n, intervals=iv)
    fit = theory.fit_growth(n, intervals=iv)
    assert (e.alpha, e.ci, e.growth_detected) == (fit.alpha, fit.alpha_ci, fit.growth_detected)


def test_the_fit_is_deterministic() -> None:
    n = [2, 2, 4, 4, 8, 8, 16, 16]
    iv = answers([3, 4, 4, 6, 8, 8, 11, 16])
    a, b = theory.fit_growth(n, intervals=iv), theory.fit_growth(n, intervals=iv)
    assert a == b
    assert theory.fit_growth(n, intervals=iv, seed=5, n_boot=7) == a  # accepted, ignored


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "widths", "message"),
    [
        ([16, 32], [1, 2], "3 distinct lengths"),
        ([16, 16, 32, 32, 32], [1, 2, 3, 4, 5], "3 distinct lengths"),
        ([16, 32, 64], [1, 2], "equal size"),
        ([16, 32, 64], [1, float("nan"), 3], "finite"),
        ([16, 32, 64], [1, float("inf"), 3], "finite"),
        ([16, 32, 64], [1, -2, 3], "> 0"),
        ([16, 32, 64], [1, 0, 3], "> 0"),
        ([0.5, 32, 64], [1, 2, 3], ">= 1"),
        ([[16, 32, 64]], [[1, 2, 3]], "1-D"),
    ],
)
def test_degenerate_exact_inputs_are_user_errors(
    lengths: list[float], widths: list[float], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        theory.fit_growth(lengths, widths)


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        ([(2, 3), (6, 4), (8, 11)], r"interval 1 \(N = 8\): low 6 exceeds high 4"),
        ([(2, 3), (4, 6), (float("inf"), float("inf"))], "censored .* no finite low"),
        ([(2, 3), (4, 6), (0, float("inf"))], "censored .* no finite low"),
        ([(2, 3), (4, 6), (float("nan"), 8)], "NaN"),
        ([(2, 3), (-1, 6), (8, 11)], "negative"),
        ([(2, 3), (0, 0), (8, 11)], "must be > 0"),
        ([(2, 3), (4, 6)], "equal size"),
        ([2, 3, 4], "pairs"),
        ([(2, 3), (64, float("inf")), (64, float("inf"))], "finite answer .* >= 2"),
    ],
)
def test_bad_intervals_are_one_line_user_errors(
    intervals: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(UserError, match=message) as err:
        theory.fit_growth([4, 8, 16], intervals=intervals)
    assert "\n" not in str(err.value)


def test_widths_and_intervals_are_exclusive() -> None:
    with pytest.raises(UserError, match="not both"):
        theory.fit_growth([4, 8, 16], [1, 2, 3], intervals=[(0, 1), (1, 2), (2, 3)])
    with pytest.raises(UserError, match="neither"):
        theory.fit_growth([4, 8, 16])


def test_bad_settings() -> None:
    with pytest.raises(UserError, match="n_boot"):
        theory.fit_growth(NS, NS, n_boot=-1)
    with pytest.raises(UserError, match="ci"):
        theory.fit_growth(NS, NS, ci=1.5)
    with pytest.raises(UserError, match="ci"):
        theory.exponent(NS, NS, ci=0)


def test_summary_names_every_law_and_the_best() -> None:
    text = theory.fit_growth(NS, 3 + 5 * np.log2(NS)).summary()
    for law in theory.LAWS:
        assert law in text
    assert "* log" in text and "alpha =" in text and "t-interval" in text


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------

designs = st.lists(st.integers(min_value=1, max_value=12), min_size=3, max_size=6, unique=True).map(
    lambda es: np.array([2.0**e for e in sorted(es)])
)


@st.composite
def noisy_curves(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    ns = draw(designs)
    seeds = draw(st.integers(min_value=1, max_value=3))
    n = np.repeat(ns, seeds)
    alpha = draw(st.floats(min_value=-0.5, max_value=1.5))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    w = 5.0 * n**alpha * np.exp(rng.normal(0, 0.3, size=n.shape))
    return n, w


@settings(max_examples=40, deadline=None)
@given(noisy_curves(), st.floats(min_value=0.5, max_value=100.0))
def test_scaling_widths_leaves_alpha_and_the_ranking_unchanged(
    curve: tuple[np.ndarray, np.ndarray], c: float
) -> None:
    n, w = curve
    a = theory.fit_growth(n, w)
    b = theory.fit_growth(n, c * w)
    assert b.alpha == pytest.approx(a.alpha, abs=1e-7)
    assert a.alpha_ci is not None and b.alpha_ci is not None
    assert b.alpha_ci == pytest.approx(a.alpha_ci, abs=1e-7)
    assert b.laws["power"].params["c"] == pytest.approx(c * a.laws["power"].params["c"])
    # scaling shifts every law's log-likelihood by the same −n·ln c (the density in w)
    shifts = [b.laws[law].loglik - a.laws[law].loglik for law in theory.LAWS]
    assert np.allclose(shifts, -len(n) * math.log(c), atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(noisy_curves(), st.randoms(use_true_random=False))
def test_point_order_does_not_matter(
    curve: tuple[np.ndarray, np.ndarray], rnd: random.Random
) -> None:
    n, w = curve
    order = list(range(len(n)))
    rnd.shuffle(order)
    a = theory.fit_growth(n, w, ci=None)
    b = theory.fit_growth(n[order], w[order], ci=None)
    for law in a.laws:
        assert b.laws[law].loglik == pytest.approx(a.laws[law].loglik, rel=1e-7, abs=1e-7)
    assert b.alpha == pytest.approx(a.alpha, abs=1e-9)


@settings(max_examples=12, deadline=None)
@given(noisy_curves())
def test_grid_intervals_contain_the_exact_fit_in_their_likelihood(
    curve: tuple[np.ndarray, np.ndarray],
) -> None:
    # widening every exact point into its grid cell can only raise each law's likelihood
    # relative to the cell's probability under the exact fit: the interval MLE is at least
    # the probability the exact fit's law gives the cells
    n, w = curve
    w = np.clip(w, 1.01, 60.0)
    iv = [fits.interval_from_grid(float(GRID[int(np.searchsorted(GRID, x))]), GRID) for x in w]
    grid_fit = theory.fit_growth(n, intervals=iv, ci=None)
    exact_fit = theory.fit_growth(n, w, ci=None)
    from sepbench.theory.censored import log_mass

    for law in theory.LAWS:
        lf = exact_fit.laws[law]
        mu = np.log(lf.predict(n))
        s = max(lf.sigma, 1e-3)
        lo, hi = np.log([a for a, _ in iv]), np.log([b for _, b in iv])
        with np.errstate(divide="ignore"):
            at_exact = float(np.sum(log_mass((lo - mu) / s, (hi - mu) / s)))
        assert grid_fit.laws[law].loglik >= at_exact - 1e-6


@settings(max_examples=30, deadline=None)
@given(designs, st.floats(min_value=0.0, max_value=50.0), st.floats(min_value=0.5, max_value=20.0))
def test_exact_log_law_is_recovered(ns: np.ndarray, a: float, b: float) -> None:
    assume(a + b * np.log2(ns).min() > 0.5)
    fit = theory.fit_growth(ns, a + b * np.log2(ns), ci=None)
    assert fit.best in ("log", "constant") if len(ns) < 4 else fit.best == "log"
    assert fit.laws["log"].params["b"] == pytest.approx(b, rel=1e-5)


@settings(max_examples=30, deadline=None)
@given(designs, st.floats(min_value=0.1, max_value=100.0), st.floats(min_value=0.2, max_value=2.0))
def test_exact_power_exponent_is_recovered(ns: np.ndarray, c: float, alpha: float) -> None:
    fit = theory.fit_growth(ns, c * ns**alpha)
    assert fit.alpha == pytest.approx(alpha, abs=1e-9)
    assert fit.alpha_ci is not None
    assert fit.alpha_ci == pytest.approx((alpha, alpha), abs=1e-7)
    assume(abs(alpha - 1) > 1e-6)  # at α = 1 the linear law ties with the power law
    assert fit.best == "power"
