"""Growth-law fits of a measured width curve w(N): exact points, or grid answers as intervals.

What a measurement is. A width search on a grid does not return the minimal width w* of a
seed; it returns the first grid width that succeeded, ``high``, after the grid width below it,
``low``, failed: w* lies in the interval (low, high] (low = 0 when the grid's smallest width
already succeeded). A search that failed up to the grid maximum is right-censored: w* > max,
the interval (max, +inf). :func:`interval_from_grid` turns a search's answer into that
interval. :func:`fit_growth` takes either exact points (``widths``: deterministic widths, such
as a construction's) or these intervals (``intervals``), and uses what each says — no more.

The model. For every law f_θ (below), each seed's minimal width is w* = f_θ(N)·e^ε with
ε ~ Normal(0, σ²) independent across seeds and lengths: Gaussian errors on **ln w**, for every
law. Why the log scale for all four laws:

* the seed-to-seed spread grows with the width: in the shipped index_lookup study two seeds
  differ by 1–3 units at widths 3–8 and by about 20 at 45–64 (a constant spread on ln w, not
  on w — see docs/theory.md, "Coverage of the exponent's interval");
* the search grid is geometric (n widths per octave), so a grid answer is an interval of
  constant length on ln w;
* widths are positive: Gaussian errors on w would give mass to w ≤ 0;
* one scale for every law makes their likelihoods the likelihoods of the same observations,
  so they can be compared by AIC without a Jacobian correction between laws.

The likelihood of a point is the probability of its interval, Φ(b) − Φ(a) with
a = (ln low − μ)/σ, b = (ln high − μ)/σ, μ = ln f_θ(N) (a censored point: 1 − Φ(a)); an exact
point contributes its density in w, φ(z)/(σ·w). All points are independent.

=========  =====================  ============================================================
law        f(N)                   parameters (fitted by maximum likelihood)
=========  =====================  ============================================================
constant   a                      a > 0
log        a + b·log2 N           a, b with f > 0 at the smallest and largest measured N
linear     a + b·N                a, b with f > 0 at the smallest and largest measured N
power      c·N^α                  c > 0, α (ln f is linear in ln N)
=========  =====================  ============================================================

σ is fitted too and kept ≥ :data:`SIGMA_FLOOR` (a relative spread of 10⁻⁹: exact data then tie
at the floor and the parameter penalty picks the simplest exact law). The constant and power
laws are linear in their parameters on ln w: least squares for exact points, else the
interval-regression maximum of :mod:`~sepbench.theory.censored` (Newton's method on a concave
log-likelihood: the global maximum). The log and linear laws are written as
f = ±e^β·(g(N) − g_z) with the zero g_z outside the measured range (:class:`_Line`): for a
fixed g_z they are the same location model with a known offset, and g_z is maximised in one
dimension (a grid of shapes on both branches, then Brent's method; exact points are polished
by least squares to machine precision).

Model selection: AIC = −2·ln L + 2k with k = the law's parameters + 1 (σ), and
AICc = AIC + 2k(k + 1)/(n − k − 1) (Hurvich & Tsai); AICc whenever it is defined for every law
(n ≥ 5 points), else AIC with a note. Ties go to the earlier law in the order constant, log,
linear, power.

The exponent's confidence interval (``ci``, default 95 %) is a **profile-likelihood
interval**, calibrated for small samples: α is in the interval when
2·(ln L̂ − max over c, σ of ln L(c, α, σ)) ≤ n·ln(1 + t²/(n − 2)), with t the (1 + ci)/2
quantile of Student's t with n − 2 degrees of freedom. With exact points the power law is a
linear regression of ln w on ln N and this interval *is* the classical t-interval, whose
coverage is exact under the model; with intervals the same cutoff is used. (Its large-sample
limit, the χ²₁ quantile, ignores that σ is estimated from 6–12 points and is too narrow
there; the within-N bootstrap this replaces covered about 70 % with 2 seeds.) Its coverage
on the shipped designs — geometric grid, 2–5 seeds, 3–6 lengths, censoring at the grid
maximum, the seed spread measured in the stored study — is measured by
:mod:`sepbench.theory.coverage` and tabulated in docs/theory.md. An end is ±inf
when the profile stays above the cutoff for :data:`ALPHA_SPAN` beyond α̂ (censored seeds
often leave α without an upper limit). Seeds that agree on a coarse grid give an interval of
honest width (the grid cells), never the zero-width interval a bootstrap gives; a zero-width
interval arises only from exact points that lie on a power law exactly, and a note says so.

Censoring. ``n_censored`` counts the right-censored points; ``rests_on_censored`` is True when
the answer depends on them: without them fewer than 3 lengths (or fewer than 2 lengths with a
finite answer) remain, or the best law changes, or the exponent moves outside the full fit's
interval.

Degenerate inputs raise :class:`~sepbench.errors.UserError`, one line each: both or neither of
``widths`` and ``intervals``; sizes that differ; non-finite lengths or N < 1; a width ≤ 0 or
non-finite; an interval with low > high, low < 0, a NaN, high ≤ 0, or a censored point
(high = +inf) without a finite low > 0; fewer than 3 distinct N, or fewer than 2 distinct N
with a finite upper end (no law is identified).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from sepbench.errors import UserError
from sepbench.theory.censored import Estimate, Observations, mle

LAWS: tuple[str, ...] = ("constant", "log", "linear", "power")
_N_PARAMS = {"constant": 1, "log": 2, "linear": 2, "power": 2}

SIGMA_FLOOR = 1e-9
"""Smallest spread σ of ln w a fit may take (relative precision of exact data)."""
ALPHA_SPAN = 10.0
"""The CI search for α stops this far from α̂; an end beyond it is reported as ±inf."""
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def interval_from_grid(answer: float | None, grid: Sequence[float]) -> tuple[float, float]:
    """The interval (low, high] a grid search's answer says the minimal width lies in.

    ``grid`` is the search's grid widths (increasing; e.g. ``sweep.search.Grid.widths()``);
    ``answer`` is the search's width, or None when it was censored (nothing up to the grid's
    maximum worked). The search's bisection ends with the answer's grid predecessor failed,
    so low = that predecessor (0 when the answer is the grid's smallest width: widths below
    the grid were never tried); a censored search gives (grid max, +inf).

    >>> interval_from_grid(11, [1, 2, 3, 4, 6, 8, 11, 16])
    (8.0, 11.0)
    >>> interval_from_grid(1, [1, 2, 3]), interval_from_grid(None, [1, 2, 3])
    ((0.0, 1.0), (3.0, inf))
    """
    widths = [float(w) for w in grid]
    if not widths or any(b <= a for a, b in itertools.pairwise(widths)):
        raise UserError(f"grid must be a non-empty increasing sequence of widths, got {grid!r}")
    if answer is None:
        return widths[-1], math.inf
    if float(answer) not in widths:
        raise UserError(f"width {answer!r} is not on the grid {widths}")
    k = widths.index(float(answer))
    return (widths[k - 1] if k > 0 else 0.0), float(answer)


@dataclass(frozen=True)
class LawFit:
    """One fitted law: its parameters, σ (spread of ln w), log-likelihood and criteria."""

    law: str
    params: dict[str, float]
    loglik: float
    sigma: float
    aic: float
    aicc: float | None
    """None when n ≤ k + 1 (AICc undefined)."""
    n_params: int

    def predict(self, lengths: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """The law's width at the given lengths (the median of w* under the model)."""
        x = np.asarray(lengths, dtype=float)
        q = self.params
        if self.law == "constant":
            return np.full_like(x, q["a"])
        if self.law == "log":
            return q["a"] + q["b"] * np.log2(x)
        if self.law == "linear":
            return q["a"] + q["b"] * x
        return q["c"] * x ** q["alpha"]

    def formula(self) -> str:
        """The fitted law as text, e.g. ``w = 3.1 + 5.02·log2 N``."""
        q = self.params
        if self.law == "constant":
            return f"w = {q['a']:.4g}"
        if self.law == "log":
            return f"w = {q['a']:.4g} {_signed(q['b'])}·log2 N"
        if self.law == "linear":
            return f"w = {q['a']:.4g} {_signed(q['b'])}·N"
        return f"w = {q['c']:.4g}·N^{q['alpha']:.3f}"


def _signed(v: float) -> str:
    return f"+ {v:.4g}" if v >= 0 else f"− {-v:.4g}"


@dataclass(frozen=True)
class GrowthFit:
    """The result of :func:`fit_growth`. ``laws`` maps law name to :class:`LawFit`.

    Each point i is the interval (``lows[i]``, ``highs[i]``] at N = ``lengths[i]``; an exact
    point has low = high; a censored one high = +inf.
    """

    lengths: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    laws: dict[str, LawFit]
    criterion: str
    """``"AICc"`` or ``"AIC"``: the score used to pick ``best``."""
    best: str
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    """α's confidence interval (ends may be ±inf); None when not computed (``ci=None``)."""
    ci_level: float
    ci_method: str | None
    """``"t"`` (exact points: the classical t-interval) or ``"profile"`` (intervals)."""
    growth_detected: bool
    """α's interval lies above 0 (see :func:`fit_growth`); False when there is no interval."""
    n_censored: int
    rests_on_censored: bool
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.lengths)

    @property
    def widths(self) -> tuple[float, ...]:
        """Each point's measured width: the exact width, or the grid answer ``high``
        (+inf for a censored seed)."""
        return self.highs

    @property
    def exact(self) -> bool:
        """True when every point is exact (no intervals)."""
        return all(lo == hi for lo, hi in zip(self.lows, self.highs, strict=True))

    @property
    def distinct_lengths(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.lengths)))

    @property
    def grid_step(self) -> float:
        """The measurement's resolution as a ratio: the median high/low over the finite
        intervals with low > 0 (about 1.41 on a grid of 2 widths per octave); 1.0 for exact
        points."""
        ratios = [
            hi / lo for lo, hi in zip(self.lows, self.highs, strict=True) if 0 < lo < hi < math.inf
        ]
        return float(np.median(ratios)) if ratios else 1.0

    @property
    def ci_width(self) -> float | None:
        """hi − lo of α's interval (inf when an end is open), None without one."""
        if self.alpha_ci is None:
            return None
        return self.alpha_ci[1] - self.alpha_ci[0]

    def score(self, law: str) -> float:
        """The law's AICc (or AIC, see ``criterion``); +inf for a law that was omitted."""
        fit = self.laws.get(law)
        if fit is None:
            return math.inf
        if self.criterion == "AICc":
            assert fit.aicc is not None
            return fit.aicc
        return fit.aic

    def delta(self, law: str) -> float:
        """score(law) − score(best): 0 for the best law, larger is worse."""
        return self.score(law) - self.score(self.best)

    def summary(self) -> str:
        """A few lines: each law with its formula and score, then α and its CI."""
        d = self.distinct_lengths
        kind = "exact points" if self.exact else "grid intervals"
        lines = [
            f"{self.n} {kind} at {len(d)} lengths ({d[0]:g}..{d[-1]:g}); "
            f"criterion {self.criterion}; errors on ln w"
        ]
        if self.n_censored:
            rest = "the answer rests on them" if self.rests_on_censored else "robust to them"
            lines[0] += f"; {self.n_censored} right-censored ({rest})"
        for law in LAWS:
            if law in self.laws:
                mark = "*" if law == self.best else " "
                lf = self.laws[law]
                lines.append(
                    f" {mark} {law:<8} {lf.formula():<32} σ {lf.sigma:6.3f}  "
                    f"{self.criterion} {self.score(law):10.3f}  Δ {self.delta(law):8.3f}"
                )
        if self.alpha is not None:
            line = f"alpha = {self.alpha:.3f}"
            if self.alpha_ci is not None:
                lo, hi = self.alpha_ci
                line += (
                    f", {self.ci_level:.0%} CI [{lo:.3f}, {hi:.3f}] "
                    f"({'profile likelihood' if self.ci_method == 'profile' else 't-interval'})"
                )
            lines.append(line)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the observations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """The points: N, the intervals in w, and the same on the log scale."""

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    obs: Observations

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def all_exact(self) -> bool:
        return bool(np.all(self.lo == self.hi))

    def subset(self, keep: np.ndarray) -> _Data:
        obs = Observations(self.obs.lo[keep], self.obs.hi[keep])
        return _Data(self.x[keep], self.lo[keep], self.hi[keep], obs)


def _as_1d(values: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D sequence, got shape {arr.shape}")
    return arr


def _check_interval(i: int, n_val: float, a: float, b: float) -> None:
    where = f"interval {i} (N = {n_val:g})"
    if math.isnan(a) or math.isnan(b):
        raise UserError(f"{where} contains NaN: give (low, high) with low <= high")
    if a > b:
        raise UserError(
            f"{where}: low {a:g} exceeds high {b:g}; an interval (low, high] needs low <= high"
        )
    if math.isinf(b) and not (math.isfinite(a) and a > 0):
        raise UserError(
            f"{where} is censored (high = inf) but has no finite low bound > 0: give the "
            "largest width that failed (the grid maximum)"
        )
    if a < 0:
        raise UserError(f"{where}: low {a:g} is negative; widths are >= 0")
    if b <= 0:
        raise UserError(f"{where}: high {b:g} must be > 0")


def _prepare(lengths: object, widths: object, intervals: object) -> _Data:
    if (widths is None) == (intervals is None):
        raise UserError(
            "give either widths (exact points) or intervals ((low, high] grid answers), "
            + ("not both" if widths is not None else "got neither")
        )
    x = _as_1d(lengths, "lengths")
    if not np.all(np.isfinite(x)):
        raise UserError("lengths must be finite")
    if np.any(x < 1):
        raise UserError(f"lengths must be >= 1, got {x[x < 1][:3].tolist()}")
    if widths is not None:
        w = _as_1d(widths, "widths")
        if w.shape != x.shape:
            raise UserError(f"lengths and widths must have equal size, got {x.size} and {w.size}")
        if not np.all(np.isfinite(w)):
            raise UserError(
                "widths must be finite (pass a censored search as the interval (max, inf) "
                "through intervals=)"
            )
        if np.any(w <= 0):
            raise UserError(
                f"widths must be > 0 (the fit works on ln w), got {w[w <= 0][:3].tolist()}"
            )
        lo, hi = w, w
    else:
        try:
            pairs = np.asarray(intervals, dtype=float)
        except (TypeError, ValueError):
            raise UserError(
                f"intervals must be a sequence of (low, high) pairs, got {intervals!r}"
            ) from None
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise UserError(
                f"intervals must be a sequence of (low, high) pairs, got shape {pairs.shape}"
            )
        if len(pairs) != len(x):
            raise UserError(
                f"lengths and intervals must have equal size, got {len(x)} and {len(pairs)}"
            )
        lo, hi = pairs[:, 0].copy(), pairs[:, 1].copy()
        for i in range(len(x)):
            _check_interval(i, float(x[i]), float(lo[i]), float(hi[i]))
    if len(np.unique(x)) < 3:
        raise UserError(
            f"need measurements at >= 3 distinct lengths to compare growth laws, got "
            f"{len(np.unique(x))} ({sorted(set(x.tolist()))})"
        )
    finite = np.isfinite(hi)
    if len(np.unique(x[finite])) < 2:
        raise UserError(
            "need a finite answer (not censored) at >= 2 distinct lengths to fit a law, got "
            f"{len(np.unique(x[finite]))}"
        )
    with np.errstate(divide="ignore"):
        obs = Observations(np.log(lo), np.log(hi))
    return _Data(x, lo, hi, obs)


# --------------------------------------------------------------------------------------------
# fitting one law
# --------------------------------------------------------------------------------------------

_SHAPES = (-8.0, -5.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0)
"""Starting grid for the shape q of the log and linear laws (see :class:`_Line`)."""
_SHAPE_BOUND = 12.0


def _location_scale(
    d: _Data, design: np.ndarray, offset: np.ndarray, start: np.ndarray | None = None
) -> tuple[Estimate, np.ndarray | None]:
    """The MLE of ln w = offset + design·β + σε: least squares for exact points, else Newton."""
    if d.all_exact:
        y = d.obs.lo - offset
        beta = np.linalg.lstsq(design, y, rcond=None)[0]
        resid = y - design @ beta
        sigma = max(math.sqrt(float(np.mean(resid**2))), SIGMA_FLOOR)
        z = resid / sigma
        nll = float(np.sum(0.5 * z * z + math.log(sigma) + _HALF_LOG_2PI + d.obs.lo))
        return Estimate(nll, beta, sigma), None
    est, theta = mle(d.obs, design, offset, SIGMA_FLOOR, start)
    return est, theta


class _Line:
    """The log and linear laws, f = a + b·g(N) with g = log2 N or N, positive over the
    measured range [g0, g1].

    Written as f = ±e^β·(g − g_z) with the zero g_z outside the range: g_z = g0 − e^q·(g1 − g0)
    (increasing, b > 0) or g_z = g1 + e^q·(g1 − g0) (decreasing, b < 0). For a fixed shape q,
    ln f = β + ln|g − g_z| is the location model with a known offset, fitted exactly by
    :func:`_location_scale`; the shape q is then maximised in one dimension (a grid, then
    Brent's method), on both branches. q → ∞ approaches the constant law.
    """

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.g = np.log2(x) if name == "log" else x.astype(float)
        self.g0, self.g1 = float(self.g.min()), float(self.g.max())
        self.span = self.g1 - self.g0

    def zero(self, q: float, sign: float) -> float:
        step = math.exp(q) * self.span
        return self.g0 - step if sign > 0 else self.g1 + step

    def offset(self, q: float, sign: float) -> np.ndarray:
        return np.asarray(np.log(np.abs(self.g - self.zero(q, sign))))

    def fit(self, d: _Data) -> tuple[float, dict[str, float], float]:
        ones = np.ones((d.n, 1))
        best: tuple[float, float, float, Estimate] | None = None
        for sign in (1.0, -1.0):
            warm: list[np.ndarray | None] = [None]

            def nll(q: float, sign: float = sign, warm: list[np.ndarray | None] = warm) -> float:
                est, theta = _location_scale(d, ones, self.offset(q, sign), warm[0])
                warm[0] = theta
                return est.nll

            values = [nll(q) for q in _SHAPES]
            i = int(np.argmin(values))
            lo_q = _SHAPES[i - 1] if i > 0 else -_SHAPE_BOUND
            hi_q = _SHAPES[i + 1] if i < len(_SHAPES) - 1 else _SHAPE_BOUND
            res = optimize.minimize_scalar(
                nll, bounds=(lo_q, hi_q), method="bounded", options={"xatol": 1e-7}
            )
            q = float(res.x) if res.fun <= values[i] else _SHAPES[i]
            est, _ = _location_scale(d, ones, self.offset(q, sign))
            if d.all_exact:
                q, est = self._polish(d, q, sign, est)
            if best is None or est.nll < best[0]:
                best = (est.nll, q, sign, est)
        assert best is not None
        _, q, sign, est = best
        b = sign * math.exp(float(est.beta[0]))
        return est.nll, {"a": -b * self.zero(q, sign), "b": b}, est.sigma

    def _polish(self, d: _Data, q: float, sign: float, est: Estimate) -> tuple[float, Estimate]:
        """Exact points: least squares in (β, q) jointly, to machine precision."""
        y = d.obs.lo

        def resid(v: np.ndarray) -> np.ndarray:
            return np.asarray(v[0] + self.offset(float(v[1]), sign) - y)

        res = optimize.least_squares(
            resid,
            np.array([float(est.beta[0]), q]),
            bounds=([-np.inf, -_SHAPE_BOUND], [np.inf, _SHAPE_BOUND]),
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        q_new = float(res.x[1])
        polished, _ = _location_scale(d, np.ones((d.n, 1)), self.offset(q_new, sign))
        return (q_new, polished) if polished.nll <= est.nll else (q, est)


def _fit_law(law: str, d: _Data) -> tuple[float, dict[str, float], float]:
    """(−ln L, parameters, σ) of one law at its maximum likelihood."""
    lx = np.log(d.x)
    if law == "constant":
        est, _ = _location_scale(d, np.ones((d.n, 1)), np.zeros(d.n))
        return est.nll, {"a": math.exp(float(est.beta[0]))}, est.sigma
    if law == "power":
        est, _ = _location_scale(d, np.column_stack([np.ones(d.n), lx]), np.zeros(d.n))
        return (
            est.nll,
            {"c": math.exp(float(est.beta[0])), "alpha": float(est.beta[1])},
            (est.sigma),
        )
    return _Line(law, d.x).fit(d)


def _criteria(nll: float, n: int, n_params: int) -> tuple[float, float | None]:
    k = n_params + 1
    aic = 2 * nll + 2 * k
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else None
    return aic, aicc


def _fit_all(d: _Data) -> tuple[dict[str, LawFit], str]:
    laws: dict[str, LawFit] = {}
    for name in LAWS:
        nll, params, sigma = _fit_law(name, d)
        aic, aicc = _criteria(nll, d.n, _N_PARAMS[name])
        laws[name] = LawFit(name, params, -nll, sigma, aic, aicc, _N_PARAMS[name])
    criterion = "AICc" if all(f.aicc is not None for f in laws.values()) else "AIC"
    return laws, criterion


def _best(laws: dict[str, LawFit], criterion: str) -> str:
    def score(f: LawFit) -> float:
        return f.aicc if criterion == "AICc" and f.aicc is not None else f.aic

    low = min(score(f) for f in laws.values())
    return next(name for name in LAWS if score(laws[name]) <= low + 1e-9)


# --------------------------------------------------------------------------------------------
# the exponent's interval
# --------------------------------------------------------------------------------------------


def _cutoff(n: int, level: float) -> float:
    """n·ln(1 + t²/(n − 2)): the profile cutoff on 2·Δln L that is the exact t-interval."""
    df = n - 2
    t = float(stats.t.ppf((1 + level) / 2, df))
    return n * math.log1p(t * t / df)


def _t_interval(d: _Data, level: float) -> tuple[float, float]:
    """The classical t-interval of the slope of ln w on ln N (exact points)."""
    lx, y = np.log(d.x), d.obs.lo
    design = np.column_stack([np.ones_like(lx), lx])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    resid = y - design @ beta
    df = d.n - 2
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    half = float(stats.t.ppf((1 + level) / 2, df)) * math.sqrt(float(np.sum(resid**2)) / df / sxx)
    return float(beta[1]) - half, float(beta[1]) + half


@dataclass(frozen=True)
class Exponent:
    """α̂, its interval and the direct test of growth (see :func:`exponent`)."""

    alpha: float
    ci: tuple[float, float]
    level: float
    method: str
    """``"t"`` (exact points) or ``"profile"`` (intervals)."""
    growth_detected: bool


def exponent(
    lengths: Sequence[float] | np.ndarray,
    widths: Sequence[float] | np.ndarray | None = None,
    *,
    intervals: Sequence[tuple[float, float]] | np.ndarray | None = None,
    ci: float = 0.95,
) -> Exponent:
    """The power law's exponent with its interval, alone (the inputs of :func:`fit_growth`,
    without the other laws: what :mod:`~sepbench.theory.coverage` simulates)."""
    if isinstance(ci, bool) or not isinstance(ci, int | float) or not 0 < ci < 1:
        raise UserError(f"ci must be in (0, 1), got {ci!r}")
    return _exponent(_prepare(lengths, widths, intervals), float(ci))


def _exponent(d: _Data, level: float) -> Exponent:
    """α̂; its interval — the t-interval for exact points, else the t-calibrated profile
    interval; and ``growth_detected``: α̂ > 0 and 2·(ln L_power − ln L_constant) above the
    cutoff, the test behind the interval's lower end evaluated at α = 0 itself (the constant
    law is the power law at α = 0), so it does not depend on where a root finder stops near a
    steep profile. Where the two disagree — only when the end found lies within the root
    finder's tolerance (1e-5) of 0 — the end is set to 0."""
    lx = np.log(d.x)
    power, theta_hat = _location_scale(d, np.column_stack([np.ones(d.n), lx]), np.zeros(d.n))
    flat, _ = _location_scale(d, np.ones((d.n, 1)), np.zeros(d.n))
    alpha_hat = float(power.beta[1])
    growth = bool(alpha_hat > 0 and 2 * (flat.nll - power.nll) > _cutoff(d.n, level))
    if d.all_exact:
        lo, hi = _t_interval(d, level)
        method = "t"
    else:
        assert theta_hat is not None
        lo, hi = _profile_interval(d, alpha_hat, power.nll, theta_hat, level)
        method = "profile"
    if alpha_hat > 0 and (lo > 0) != growth:
        lo = 0.0
    return Exponent(alpha_hat, (lo, hi), level, method, growth)


def _profile_interval(
    d: _Data, alpha_hat: float, nll_hat: float, theta_hat: np.ndarray, level: float
) -> tuple[float, float]:
    """α's profile-likelihood interval with the t-calibrated cutoff (module docstring)."""
    lx = np.log(d.x)
    ones = np.ones((d.n, 1))
    half_cut = _cutoff(d.n, level) / 2
    start0 = np.array([theta_hat[0], theta_hat[2]])  # (γ0, τ) of the power law's maximum

    def excess(alpha: float, warm: list[np.ndarray]) -> float:
        est, theta = mle(d.obs, ones, alpha * lx, SIGMA_FLOOR, warm[0])
        warm[0] = theta
        return est.nll - nll_hat - half_cut

    def end(direction: float) -> float:
        warm = [start0.copy()]
        inside, step = alpha_hat, 0.05
        while True:
            if step > ALPHA_SPAN:
                return direction * math.inf
            trial = alpha_hat + direction * step
            if excess(trial, warm) > 0:
                break
            inside, step = trial, step * 2
        lo, hi = sorted((inside, trial))
        return float(optimize.brentq(lambda a: excess(a, warm), lo, hi, xtol=1e-5))

    return end(-1.0), end(1.0)


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


def fit_growth(
    lengths: Sequence[float] | np.ndarray,
    widths: Sequence[float] | np.ndarray | None = None,
    *,
    intervals: Sequence[tuple[float, float]] | np.ndarray | None = None,
    ci: float | None = 0.95,
    n_boot: int | None = None,
    seed: int | None = None,
) -> GrowthFit:
    """Fit constant, log, linear and power laws to a width curve; pick the AIC(c)-best.

    ``lengths`` has one entry per point (repeat an N once per seed). Give either ``widths``
    (exact points) or ``intervals``: one (low, high) pair per point, the minimal width lying
    in (low, high] — a grid answer (:func:`interval_from_grid`), (max, inf) for a censored
    seed, or (w, w) for an exact one. ``ci`` is the confidence level of α's interval (None:
    no interval). The fit is deterministic: same inputs, same result. The module docstring
    states the model, the selection rule, the interval and the errors.

    ``growth_detected`` is the test behind the interval's lower end, evaluated at α = 0
    itself (see :func:`exponent`); False without an interval.

    ``n_boot`` and ``seed`` belonged to the bootstrap interval this replaces; they are
    accepted so that callers written for it keep working (``n_boot=0`` still means "no
    interval") and are otherwise ignored.
    """
    if ci is not None and (isinstance(ci, bool) or not 0 < ci < 1):
        raise UserError(f"ci must be in (0, 1) or None, got {ci!r}")
    if n_boot is not None and (
        isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0
    ):
        raise UserError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    del seed  # deterministic: nothing is drawn
    d = _prepare(lengths, widths, intervals)
    laws, criterion = _fit_all(d)
    notes: list[str] = []
    if criterion == "AIC":
        notes.append(f"AICc undefined with n = {d.n} points; models compared by AIC")
    best = _best(laws, criterion)
    alpha = laws["power"].params["alpha"]
    alpha_ci: tuple[float, float] | None = None
    method: str | None = None
    growth = False
    level = 0.95 if ci is None else float(ci)
    if ci is not None and n_boot != 0:
        exp = _exponent(d, level)
        alpha, alpha_ci, method, growth = exp.alpha, exp.ci, exp.method, exp.growth_detected
        if alpha_ci[1] - alpha_ci[0] <= 1e-9 * max(1.0, abs(alpha)):
            notes.append(
                "α's interval has zero width: the points lie exactly on a power law (exact, "
                "deterministic data); a verdict never rests on a zero-width interval"
            )
    censored = ~np.isfinite(d.hi)
    n_censored = int(censored.sum())
    rests = False
    if n_censored:
        rests = _rests_on(d, censored, best, alpha_ci)
        notes.append(
            f"{n_censored} right-censored point(s) enter the likelihood as (max, inf); "
            + ("the answer rests on them" if rests else "the answer does not rest on them")
        )
    return GrowthFit(
        lengths=tuple(d.x.tolist()),
        lows=tuple(d.lo.tolist()),
        highs=tuple(d.hi.tolist()),
        laws=laws,
        criterion=criterion,
        best=best,
        alpha=alpha,
        alpha_ci=alpha_ci,
        ci_level=level,
        ci_method=method,
        growth_detected=growth,
        n_censored=n_censored,
        rests_on_censored=rests,
        notes=tuple(notes),
    )


def _rests_on(
    d: _Data, censored: np.ndarray, best: str, alpha_ci: tuple[float, float] | None
) -> bool:
    """Whether dropping the censored points changes the answer (see the module docstring)."""
    keep = ~censored
    if len(np.unique(d.x[keep])) < 3:
        return True
    laws, criterion = _fit_all(d.subset(keep))
    if _best(laws, criterion) != best:
        return True
    if alpha_ci is None:
        return False
    alpha = laws["power"].params["alpha"]
    return not alpha_ci[0] <= alpha <= alpha_ci[1]
