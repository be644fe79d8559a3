"""Maximum likelihood for a Gaussian linear model observed through intervals (numpy, scipy).

The model: y*_i = o_i + x_iᵀβ + σ·ε_i with ε_i ~ Normal(0, 1) independent, known offsets o_i,
and each y*_i observed only as an interval y_lo,i < y*_i ≤ y_hi,i (either end may be infinite:
left- or right-censored) or exactly (y_lo,i = y_hi,i). This is the "interval regression"
(Tobit-type) model. :func:`mle` maximises

    ln L = Σ_intervals ln(Φ(b_i) − Φ(a_i)) + Σ_exact [ln τ − z_i²/2 − ½·ln 2π − y_i]

written in Olsen's parameters γ = β/σ, τ = 1/σ, where a_i = τ(y_lo,i − o_i) − x_iᵀγ,
b_i = τ(y_hi,i − o_i) − x_iᵀγ, z_i = τ(y_i − o_i) − x_iᵀγ. (The −y_i makes an exact point's
term its density in w = e^y, so that likelihoods of different laws stay comparable; it does
not depend on the parameters.)

Why Newton converges to the global maximum. In (γ, τ) the log-likelihood is concave: an exact
point's term is ln τ minus a convex quadratic; an interval's term is the log of
∫ 1{τ·l − xᵀγ < t ≤ τ·u − xᵀγ}·φ(t) dt, the integral over t of a function that is log-concave
jointly in (t, γ, τ) (a log-concave density times the indicator of a convex set), and such
marginals are log-concave (Prékopa's theorem). So Newton's method with a backtracking line
search, from any start, converges to the maximum; the Hessian below is exact. The iteration
stops when the Newton decrement gᵀH⁻¹g falls below 2·10⁻¹⁰ (ln L within about 10⁻¹⁰ of its
supremum).

σ is kept ≥ ``floor`` (τ ≤ 1/floor): when a law threads every interval the likelihood rises
towards 1 as σ → 0, and the floor stops the march there (its effect on ln L is below 10⁻⁶).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LN2 = math.log(2.0)
_MAX_ITER = 200


@dataclass(frozen=True)
class Observations:
    """Intervals (lo, hi] on the log scale; exact points have lo == hi."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def exact(self) -> np.ndarray:
        return np.asarray(self.lo == self.hi)

    @property
    def n(self) -> int:
        return len(self.lo)

    def centres(self) -> np.ndarray:
        """A point estimate per observation, used only to start the iteration."""
        half = _LN2 / 4  # a quarter octave: the half-width of a grid cell at 2 per octave
        flo, fhi = np.isfinite(self.lo), np.isfinite(self.hi)
        mid = np.where(flo & fhi, (np.where(flo, self.lo, 0) + np.where(fhi, self.hi, 0)) / 2, 0)
        mid = np.where(~flo & fhi, np.where(fhi, self.hi, 0) - half, mid)
        return np.asarray(np.where(flo & ~fhi, np.where(flo, self.lo, 0) + half, mid))


@dataclass(frozen=True)
class Estimate:
    """The maximum: −ln L, β and σ."""

    nll: float
    beta: np.ndarray
    sigma: float


def _log1mexp(d: np.ndarray) -> np.ndarray:
    """ln(1 − e^d) for d ≤ 0, accurately (switching at −ln 2)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(np.where(d > -_LN2, np.log(-np.expm1(d)), np.log1p(-np.exp(d))))


def log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(Φ(b) − Φ(a)) for a < b (either may be infinite), without cancellation."""
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    la, lb = special.log_ndtr(lo), special.log_ndtr(hi)
    with np.errstate(invalid="ignore"):
        return np.asarray(lb + _log1mexp(la - lb))


def _terms(
    obs: Observations, x: np.ndarray, off: np.ndarray, theta: np.ndarray, hessian: bool
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """ln L, its gradient and (optionally) Hessian in θ = (γ, τ)."""
    k = x.shape[1]
    gamma, tau = theta[:k], theta[k]
    eta = x @ gamma
    ex = obs.exact
    ll = 0.0
    grad = np.zeros(k + 1)
    hess = np.zeros((k + 1, k + 1)) if hessian else None
    if ex.any():
        y = obs.lo[ex]
        v = y - off[ex]
        xe = x[ex]
        z = tau * v - eta[ex]
        ll += float(np.sum(math.log(tau) - 0.5 * z * z - _HALF_LOG_2PI - y))
        grad[:k] += xe.T @ z
        grad[k] += float(np.sum(1.0 / tau - z * v))
        if hess is not None:
            hess[:k, :k] -= xe.T @ xe
            hess[:k, k] += xe.T @ v
            hess[k, k] -= float(np.sum(1.0 / tau**2 + v * v))
    r = ~ex
    if r.any():
        xr = x[r]
        lo, hi = obs.lo[r] - off[r], obs.hi[r] - off[r]
        flo, fhi = np.isfinite(lo), np.isfinite(hi)
        lo0, hi0 = np.where(flo, lo, 0.0), np.where(fhi, hi, 0.0)
        a = np.where(flo, tau * lo0 - eta[r], -np.inf)
        b = np.where(fhi, tau * hi0 - eta[r], np.inf)
        logp = log_mass(a, b)
        ll += float(np.sum(logp))
        with np.errstate(invalid="ignore", over="ignore"):
            la = np.where(flo, np.exp(-0.5 * a * a - _HALF_LOG_2PI - logp), 0.0)
            lb = np.where(fhi, np.exp(-0.5 * b * b - _HALF_LOG_2PI - logp), 0.0)
        a0, b0 = np.where(flo, a, 0.0), np.where(fhi, b, 0.0)
        # d ln P / da = −λa, d ln P / db = λb; da = (−x, lo), db = (−x, hi)
        grad[:k] += xr.T @ (la - lb)
        grad[k] += float(np.sum(lb * hi0 - la * lo0))
        if hess is not None:
            haa = a0 * la - la * la
            hbb = -b0 * lb - lb * lb
            hab = la * lb
            # H = Σ haa·da daᵀ + hbb·db dbᵀ + hab·(da dbᵀ + db daᵀ)
            cxx = haa + hbb + 2 * hab
            hess[:k, :k] += (xr * cxx[:, None]).T @ xr
            cxt = -(haa * lo0 + hbb * hi0 + hab * (lo0 + hi0))
            hess[:k, k] += xr.T @ cxt
            hess[k, k] += float(np.sum(haa * lo0**2 + hbb * hi0**2 + 2 * hab * lo0 * hi0))
    if hess is not None:
        hess[k, :k] = hess[:k, k]
    return ll, grad, hess


def mle(
    obs: Observations, x: np.ndarray, offset: np.ndarray, floor: float, start: np.ndarray | None
) -> tuple[Estimate, np.ndarray]:
    """The maximum-likelihood (β, σ) and the optimal θ = (γ, τ) (a warm start for a next call).

    ``x`` is the n×k design, ``offset`` the o_i, ``floor`` the smallest σ, ``start`` a θ to
    start from (None: least squares on the interval centres).
    """
    k = x.shape[1]
    tau_max = 1.0 / floor
    if start is None:
        yc = obs.centres() - offset
        beta = np.linalg.lstsq(x, yc, rcond=None)[0]
        resid = yc - x @ beta
        s = max(float(np.sqrt(np.mean(resid**2))), 0.05)
        theta = np.append(beta / s, 1.0 / s)
    else:
        theta = np.asarray(start, dtype=float).copy()
        theta[k] = min(max(theta[k], 1e-8), tau_max)
    ll, grad, hess = _terms(obs, x, offset, theta, True)
    for _ in range(_MAX_ITER):
        assert hess is not None
        free = np.ones(k + 1, dtype=bool)
        if theta[k] >= tau_max and grad[k] > 0:
            free[k] = False  # σ sits on its floor
        h = -hess[np.ix_(free, free)]
        g = grad[free]
        try:
            step_f = np.linalg.solve(h + 1e-12 * np.eye(len(g)) * max(1.0, np.abs(h).max()), g)
        except np.linalg.LinAlgError:
            step_f = g
        if not np.all(np.isfinite(step_f)) or float(g @ step_f) <= 0:
            step_f = g  # fall back to the gradient (never expected: the problem is concave)
        decrement = float(g @ step_f)
        if decrement < 2e-10:
            break  # Newton decrement: ln L is within ~1e-10 of its supremum
        step = np.zeros(k + 1)
        step[free] = step_f
        t = 1.0
        improved = False
        while t > 1e-12:
            trial = theta + t * step
            if trial[k] <= 0:
                t /= 2
                continue
            trial[k] = min(float(trial[k]), tau_max)
            ll_t = _terms(obs, x, offset, trial, False)[0]
            if np.isfinite(ll_t) and ll_t >= ll + 1e-4 * t * float(g @ step_f):
                improved = True
                break
            t /= 2
        if not improved:
            break
        theta = trial
        ll, grad, hess = _terms(obs, x, offset, theta, True)
    tau = float(theta[k])
    return Estimate(-ll, theta[:k] / tau, 1.0 / tau), theta
