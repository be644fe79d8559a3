"""fit_growth: recovers known laws, bootstraps α honestly, rejects degenerate input."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sepbench import theory
from sepbench.errors import UserError

NS = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dtype=float)


def seeded(ns: np.ndarray, seeds: int) -> np.ndarray:
    return np.repeat(ns, seeds)


def test_exact_log_data_log_law_wins_with_its_parameters() -> None:
    fit = theory.fit_growth(NS, 3 + 5 * np.log2(NS))
    assert fit.best == "log"
    assert fit.laws["log"].params["a"] == pytest.approx(3)
    assert fit.laws["log"].params["b"] == pytest.approx(5)
    assert fit.criterion == "AICc"
    assert fit.alpha is not None and fit.alpha_ci is not None and fit.alpha_ci[1] < 0.5


def test_exact_linear_data_linear_law_wins() -> None:
    fit = theory.fit_growth(NS, 5 + 3 * NS)
    assert fit.best == "linear"
    assert fit.laws["linear"].params["b"] == pytest.approx(3)


def test_exact_power_data_power_law_wins() -> None:
    fit = theory.fit_growth(NS, 2 * NS**0.9)
    assert fit.best == "power"
    assert fit.alpha == pytest.approx(0.9)
    assert fit.alpha_ci == pytest.approx((0.9, 0.9))
    assert fit.laws["power"].params["c"] == pytest.approx(2)
    assert fit.laws["power"].predict(100.0) == pytest.approx(2 * 100**0.9)


def test_constant_data_constant_law_wins() -> None:
    fit = theory.fit_growth(NS, np.full(len(NS), 7.0))
    assert fit.best == "constant"
    assert fit.alpha == pytest.approx(0.0)


def test_noisy_power_law_ci_contains_the_exponent() -> None:
    rng = np.random.default_rng(1)
    n = seeded(NS, 5)
    w = 3 * n**0.9 * np.exp(rng.normal(0, 0.1, size=n.shape))
    fit = theory.fit_growth(n, w)
    assert fit.bootstrap == "within-N"
    assert fit.alpha_ci is not None
    lo, hi = fit.alpha_ci
    assert lo < 0.9 < hi
    assert hi - lo < 0.1  # and it is informative: excludes both log-like and linear
    assert fit.best == "power"


def test_noisy_linear_data() -> None:
    rng = np.random.default_rng(2)
    n = seeded(NS, 4)
    w = 4 * n * (1 + rng.normal(0, 0.05, size=n.shape))
    fit = theory.fit_growth(n, w)
    assert fit.best in ("linear", "power")
    assert fit.alpha_ci is not None and fit.alpha_ci[0] < 1 < fit.alpha_ci[1]


def test_noisy_log_data() -> None:
    rng = np.random.default_rng(3)
    n = seeded(NS, 4)
    w = 10 + 8 * np.log2(n) + rng.normal(0, 1.0, size=n.shape)
    fit = theory.fit_growth(n, w)
    assert fit.best == "log"


def test_single_seed_uses_the_points_bootstrap() -> None:
    fit = theory.fit_growth(NS, 3 + 5 * np.log2(NS))
    assert fit.bootstrap == "points"


def test_a_zero_width_ci_is_flagged_not_presented_as_certainty() -> None:
    # the main job's GRU curve: two seeds agree at N = 2 and 8, differ only at N = 4, and with
    # three equally spaced log-lengths the middle one cannot move the least-squares slope
    fit = theory.fit_growth([2, 2, 4, 4, 8, 8], [8, 8, 11, 16, 45, 45])
    assert fit.alpha_ci is not None and fit.alpha_ci[0] == pytest.approx(fit.alpha_ci[1])
    assert any("zero width" in note for note in fit.notes)
    assert "zero width" in fit.summary()
    spread = theory.fit_growth([2, 2, 4, 4, 8, 8], [6, 8, 11, 16, 40, 45])
    assert spread.alpha_ci is not None and spread.alpha_ci[1] - spread.alpha_ci[0] > 0.01
    assert not any("zero width" in note for note in spread.notes)


def test_the_seed_fixes_the_bootstrap() -> None:
    rng = np.random.default_rng(4)
    n = seeded(NS, 3)
    w = n**0.5 * np.exp(rng.normal(0, 0.2, size=n.shape))
    a = theory.fit_growth(n, w, seed=1)
    assert theory.fit_growth(n, w, seed=1).alpha_ci == a.alpha_ci
    assert theory.fit_growth(n, w, seed=2).alpha_ci != a.alpha_ci
    assert theory.fit_growth(n, w, n_boot=0).alpha_ci is None


def test_small_samples_fall_back_to_aic() -> None:
    fit = theory.fit_growth([16, 64, 256, 1024], [10, 30, 20, 60])
    assert fit.criterion == "AIC"
    assert any("AICc undefined" in note for note in fit.notes)
    assert fit.laws["log"].aicc is None
    assert theory.fit_growth([16, 64, 256, 1024, 4096], [1, 2, 3, 4, 6]).criterion == "AICc"


def test_aicc_is_aic_plus_the_correction() -> None:
    fit = theory.fit_growth(NS, 1 + NS**0.3)
    n = len(NS)
    for law in fit.laws.values():
        k = law.n_params + 1
        assert law.aic == pytest.approx(n * math.log(law.rss / n) + 2 * k)
        assert law.aicc == pytest.approx(law.aic + 2 * k * (k + 1) / (n - k - 1))


def test_zero_widths_only_leave_the_power_law() -> None:
    fit = theory.fit_growth([16, 32, 64, 128, 256], [0, 1, 2, 3, 4])
    assert "power" in fit.laws and fit.alpha is not None
    assert any("zero width" in note for note in fit.notes)
    assert fit.best == "log"
    fit = theory.fit_growth([16, 32, 64, 128], [0, 0, 2, 3])
    assert "power" not in fit.laws and fit.alpha is None and fit.alpha_ci is None
    assert any("power law omitted" in note for note in fit.notes)
    assert math.isinf(fit.score("power"))


@pytest.mark.parametrize(
    ("lengths", "widths", "message"),
    [
        ([16, 32], [1, 2], "3 distinct lengths"),
        ([16, 16, 32, 32, 32], [1, 2, 3, 4, 5], "3 distinct lengths"),
        ([16, 32, 64], [1, 2], "equal size"),
        ([16, 32, 64], [1, float("nan"), 3], "finite"),
        ([16, 32, 64], [1, float("inf"), 3], "finite"),
        ([16, 32, 64], [1, -2, 3], ">= 0"),
        ([0.5, 32, 64], [1, 2, 3], ">= 1"),
        ([[16, 32, 64]], [[1, 2, 3]], "1-D"),
    ],
)
def test_degenerate_inputs_are_user_errors(
    lengths: list[float], widths: list[float], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        theory.fit_growth(lengths, widths)


def test_bad_bootstrap_settings() -> None:
    with pytest.raises(UserError, match="n_boot"):
        theory.fit_growth(NS, NS, n_boot=-1)
    with pytest.raises(UserError, match="ci"):
        theory.fit_growth(NS, NS, ci=1.5)


def test_summary_names_every_law_and_the_best() -> None:
    text = theory.fit_growth(NS, 3 + 5 * np.log2(NS)).summary()
    for law in theory.LAWS:
        assert law in text
    assert "* log" in text and "alpha =" in text


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------

designs = st.lists(st.integers(min_value=2, max_value=16), min_size=3, max_size=8, unique=True).map(
    lambda es: np.array([2.0**e for e in sorted(es)])
)


@st.composite
def noisy_curves(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    ns = draw(designs)
    seeds = draw(st.integers(min_value=1, max_value=3))
    n = np.repeat(ns, seeds)
    alpha = draw(st.floats(min_value=-0.5, max_value=2.0))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    w = 5.0 * n**alpha * np.exp(rng.normal(0, 0.3, size=n.shape))
    return n, w


@given(noisy_curves(), st.floats(min_value=0.5, max_value=100.0))
def test_scaling_widths_leaves_alpha_and_the_best_law_unchanged(
    curve: tuple[np.ndarray, np.ndarray], c: float
) -> None:
    n, w = curve
    a = theory.fit_growth(n, w, n_boot=200)
    b = theory.fit_growth(n, c * w, n_boot=200)
    assert a.alpha is not None and b.alpha is not None
    assert b.alpha == pytest.approx(a.alpha, abs=1e-9)
    assert a.alpha_ci is not None and b.alpha_ci is not None
    assert b.alpha_ci == pytest.approx(a.alpha_ci, abs=1e-9)
    assert b.laws["power"].params["c"] == pytest.approx(c * a.laws["power"].params["c"])
    # scaling shifts every law's AIC by the same n·ln c²: the ranking is unchanged
    deltas = [b.score(law) - a.score(law) for law in theory.LAWS]
    assert np.allclose(deltas, deltas[0], atol=1e-6)
    assert b.best == a.best


@given(noisy_curves(), st.randoms(use_true_random=False))
def test_point_order_does_not_matter(
    curve: tuple[np.ndarray, np.ndarray], rnd: random.Random
) -> None:
    n, w = curve
    order = list(range(len(n)))
    rnd.shuffle(order)
    a = theory.fit_growth(n, w, n_boot=0)
    b = theory.fit_growth(n[order], w[order], n_boot=0)
    assert b.best == a.best
    for law in a.laws:
        assert b.laws[law].rss == pytest.approx(a.laws[law].rss, rel=1e-9, abs=1e-12)
    assert b.alpha == pytest.approx(a.alpha, abs=1e-9)


@given(
    designs,
    st.floats(min_value=0.0, max_value=50.0),
    st.floats(min_value=0.5, max_value=20.0),
)
def test_exact_log_law_is_recovered(ns: np.ndarray, a: float, b: float) -> None:
    fit = theory.fit_growth(ns, a + b * np.log2(ns), n_boot=100)
    assert fit.best == "log"
    assert fit.laws["log"].params["b"] == pytest.approx(b, rel=1e-6)


@given(
    designs,
    st.floats(min_value=0.1, max_value=100.0),
    st.floats(min_value=0.2, max_value=2.0),
)
def test_exact_power_exponent_is_recovered(ns: np.ndarray, c: float, alpha: float) -> None:
    fit = theory.fit_growth(ns, c * ns**alpha, n_boot=100)
    assert fit.alpha == pytest.approx(alpha, abs=1e-9)
    assert fit.alpha_ci is not None
    assert fit.alpha_ci[0] == pytest.approx(alpha, abs=1e-9)
    assert fit.alpha_ci[1] == pytest.approx(alpha, abs=1e-9)
    assume(abs(alpha - 1) > 1e-6)  # at α = 1 the linear law ties with the power law
    assert fit.best == "power"
