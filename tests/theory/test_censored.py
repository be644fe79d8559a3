"""The interval-censored Gaussian MLE: derivatives, the maximum, tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from sepbench.theory.censored import Observations, _terms, log_mass, mle


def _mixed() -> tuple[Observations, np.ndarray, np.ndarray]:
    """Exact points, finite intervals, left- and right-censored points, two regressors."""
    lo = np.array([1.0, 0.5, -np.inf, 2.0, 1.2, 0.7, 2.5])
    hi = np.array([1.0, 0.9, 0.3, np.inf, 1.2, 1.1, np.inf])
    x = np.column_stack([np.ones(7), np.linspace(0, 1, 7)])
    return Observations(lo, hi), x, np.linspace(-0.2, 0.3, 7)


def test_gradient_and_hessian_match_finite_differences() -> None:
    obs, x, off = _mixed()
    theta = np.array([0.4, 0.8, 1.7])
    _, grad, hess = _terms(obs, x, off, theta, True)
    assert hess is not None
    h = 1e-6
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        up, g_up, _ = _terms(obs, x, off, theta + e, False)
        down, g_down, _ = _terms(obs, x, off, theta - e, False)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-6)
        assert hess[:, i] == pytest.approx((g_up - g_down) / (2 * h), rel=1e-4, abs=1e-5)
    # concave: the Hessian is negative definite
    assert np.all(np.linalg.eigvalsh(hess) < 0)


def test_the_maximum_matches_a_derivative_free_search() -> None:
    obs, x, off = _mixed()
    est, _ = mle(obs, x, off, 1e-9, None)

    def nll(v: np.ndarray) -> float:
        beta, s = v[:2], math.exp(v[2])
        theta = np.append(beta / s, 1 / s)
        return -_terms(obs, x, off, theta, False)[0]

    ref = optimize.minimize(nll, np.array([0.5, 0.5, 0.0]), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})  # fmt: skip
    assert est.nll == pytest.approx(ref.fun, abs=1e-7)
    assert est.beta == pytest.approx(ref.x[:2], abs=1e-4)
    assert est.sigma == pytest.approx(math.exp(ref.x[2]), rel=1e-4)


def test_exact_points_give_least_squares() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(12), rng.normal(size=12)])
    y = x @ np.array([1.0, 2.0]) + rng.normal(0, 0.5, 12)
    est, _ = mle(Observations(y, y), x, np.zeros(12), 1e-9, None)
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    assert est.beta == pytest.approx(beta, abs=1e-8)
    assert est.sigma == pytest.approx(math.sqrt(np.mean((y - x @ beta) ** 2)), rel=1e-8)


def test_threaded_intervals_drive_sigma_down_but_stay_finite() -> None:
    # a line through every cell: the likelihood tends to 1 as σ → 0
    lo, hi = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5, 2.5])
    x = np.column_stack([np.ones(3), np.arange(3.0)])
    est, _ = mle(Observations(lo, hi), x, np.zeros(3), 1e-9, None)
    assert est.nll == pytest.approx(0.0, abs=1e-8)
    assert 0 < est.sigma < 0.1 and est.beta[1] == pytest.approx(1.0, abs=0.3)


TAIL_CASES = [(-1.0, 0.5), (3.0, 4.0), (-40.0, -39.0), (38.0, 39.0), (-np.inf, -30.0),
              (30.0, np.inf), (-np.inf, np.inf)]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), TAIL_CASES)
def test_log_mass_is_accurate_in_the_tails(a: float, b: float) -> None:
    got = float(log_mass(np.array([a]), np.array([b]))[0])
    norm = stats.norm
    if a > 0:  # compute the reference on the upper tail, where it does not cancel
        ref = norm.logsf(a) + math.log1p(-math.exp(norm.logsf(b) - norm.logsf(a)))
    else:
        ref = norm.logcdf(b) + math.log1p(-math.exp(norm.logcdf(a) - norm.logcdf(b)))
    assert got == pytest.approx(ref, rel=1e-10, abs=1e-12)
