"""Growth-law fits of a measured width curve w(N), with model selection and a bootstrap CI.

:func:`fit_growth` fits four laws to points (N_i, w_i) — several seeds per N allowed:

=========  =====================  =========================================================
law        model                  fitted by
=========  =====================  =========================================================
constant   w = a                  least squares (a = mean w)
log        w = a + b·log2 N       least squares (b = units per doubling of N)
linear     w = a + b·N            least squares
power      w = c·N^α              least squares of ln w on ln N (points with w > 0 only)
=========  =====================  =========================================================

Model selection. Every law is scored on the same data, in w-space, under i.i.d. Gaussian
errors: AIC = n·ln(RSS/n) + 2k with k = (number of law parameters) + 1 (the error variance),
and AICc = AIC + 2k(k + 1)/(n − k − 1) (Hurvich & Tsai's small-sample correction). AICc is
the criterion whenever it is defined for every law (n ≥ 5 points); otherwise plain AIC is used
and a note says so. The power law's RSS is that of its log-log fit evaluated in w-space, so all
four laws are compared on the same residuals. RSS is floored at n·(1e-9·max(1, max|w|))² so that
exact fits tie and the parameter penalty picks the simplest exact law; remaining ties go to the
earlier law in the order constant, log, linear, power.

Exponent CI. α's confidence interval is a percentile bootstrap (``n_boot`` resamples,
default 95 %): when some N has repeated measurements (seeds) the points are resampled *within
each N* (stratified: every resample keeps the design); when every N has a single point the
(N, w) pairs themselves are resampled, and resamples with fewer than two distinct N are redrawn.

Degenerate inputs: fewer than 3 points or 3 distinct N, non-finite values, N < 1 or negative
widths raise :class:`~sepbench.errors.UserError`. Zero widths are kept for the constant, log
and linear laws but cannot enter a log-log fit: the power law (and α) uses the positive points
only, and is omitted (``power``/``alpha`` None, with a note) when those span fewer than 3
distinct N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sepbench.errors import UserError

LAWS: tuple[str, ...] = ("constant", "log", "linear", "power")
_N_PARAMS = {"constant": 1, "log": 2, "linear": 2, "power": 2}
_REDRAWS = 100


@dataclass(frozen=True)
class LawFit:
    """One fitted law: its parameters, residual sum of squares and information criteria."""

    law: str
    params: dict[str, float]
    rss: float
    aic: float
    aicc: float | None
    """None when n ≤ k + 1 (AICc undefined)."""
    n_params: int

    def predict(self, lengths: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """The law's width at the given lengths."""
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
    """The result of :func:`fit_growth`. ``laws`` maps law name to :class:`LawFit`."""

    lengths: tuple[float, ...]
    widths: tuple[float, ...]
    laws: dict[str, LawFit]
    criterion: str
    """``"AICc"`` or ``"AIC"``: the score used to pick ``best``."""
    best: str
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    ci_level: float
    bootstrap: str | None
    """``"within-N"``, ``"points"``, or None (no CI)."""
    n_boot: int
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.lengths)

    @property
    def distinct_lengths(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.lengths)))

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
        lines = [
            f"{self.n} points at {len(self.distinct_lengths)} lengths "
            f"({self.distinct_lengths[0]:g}..{self.distinct_lengths[-1]:g}); "
            f"criterion {self.criterion}"
        ]
        for law in LAWS:
            if law in self.laws:
                mark = "*" if law == self.best else " "
                lines.append(
                    f" {mark} {law:<8} {self.laws[law].formula():<32} "
                    f"{self.criterion} {self.score(law):10.3f}  Δ {self.delta(law):8.3f}"
                )
        if self.alpha is not None:
            ci = (
                f", {self.ci_level:.0%} CI [{self.alpha_ci[0]:.3f}, {self.alpha_ci[1]:.3f}] "
                f"({self.bootstrap} bootstrap, {self.n_boot} resamples)"
                if self.alpha_ci is not None
                else ""
            )
            lines.append(f"alpha = {self.alpha:.3f}{ci}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _ols(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return np.asarray(coef, dtype=float)


def _criteria(rss: float, n: int, n_params: int, floor: float) -> tuple[float, float | None]:
    k = n_params + 1
    aic = n * math.log(max(rss, floor) / n) + 2 * k
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else None
    return aic, aicc


def _slopes(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Row-wise least-squares slope of ly on lx (arrays of shape [B, n])."""
    mx = lx.mean(axis=1, keepdims=True)
    my = ly.mean(axis=1, keepdims=True)
    sxx = ((lx - mx) ** 2).sum(axis=1)
    sxy = ((lx - mx) * (ly - my)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sxy / sxx, dtype=float)


def _bootstrap_alpha(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int
) -> tuple[np.ndarray, str]:
    """Bootstrap replicates of the log-log slope (see the module docstring for the scheme)."""
    rng = np.random.default_rng(seed)
    lx, ly = np.log(x), np.log(y)
    n = len(x)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if counts.max() >= 2:
        idx = np.empty((n_boot, n), dtype=np.int64)
        col = 0
        for g in range(len(uniq)):
            members = np.flatnonzero(inverse == g)
            draws = rng.integers(0, len(members), size=(n_boot, len(members)))
            idx[:, col : col + len(members)] = members[draws]
            col += len(members)
        return _slopes(lx[idx], ly[idx]), "within-N"
    idx = rng.integers(0, n, size=(n_boot, n))
    for _ in range(_REDRAWS):
        bad = np.flatnonzero(np.ptp(lx[idx], axis=1) == 0)
        if len(bad) == 0:
            break
        idx[bad] = rng.integers(0, n, size=(len(bad), n))
    slopes = _slopes(lx[idx], ly[idx])
    return slopes[np.isfinite(slopes)], "points"


def fit_growth(
    lengths: Sequence[float] | np.ndarray,
    widths: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> GrowthFit:
    """Fit constant, log, linear and power laws to the width curve; pick the AICc-best.

    ``lengths`` and ``widths`` are parallel sequences (repeat an N once per seed). See the
    module docstring for the fitting, the selection rule, the bootstrap and degenerate inputs.
    The same inputs and ``seed`` give the same result.
    """
    x = np.asarray(lengths, dtype=float)
    y = np.asarray(widths, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise UserError(
            f"lengths and widths must be 1-D sequences of equal size, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UserError(
            "lengths and widths must be finite (drop failed width searches, or cap them)"
        )
    if np.any(x < 1):
        raise UserError(f"lengths must be >= 1, got {x[x < 1][:3].tolist()}")
    if np.any(y < 0):
        raise UserError(f"widths must be >= 0, got {y[y < 0][:3].tolist()}")
    if len(np.unique(x)) < 3:
        raise UserError(
            f"need measurements at >= 3 distinct lengths to compare growth laws, got "
            f"{len(np.unique(x))} ({sorted(set(x.tolist()))})"
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise UserError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if not 0 < ci < 1:
        raise UserError(f"ci must be in (0, 1), got {ci!r}")

    n = len(x)
    floor = n * (1e-9 * max(1.0, float(np.max(np.abs(y))))) ** 2
    notes: list[str] = []
    laws: dict[str, LawFit] = {}

    def add(law: str, params: dict[str, float], pred: np.ndarray) -> None:
        rss = float(np.sum((y - pred) ** 2))
        aic, aicc = _criteria(rss, n, _N_PARAMS[law], floor)
        laws[law] = LawFit(law, params, rss, aic, aicc, _N_PARAMS[law])

    ones = np.ones_like(x)
    a = float(y.mean())
    add("constant", {"a": a}, np.full_like(y, a))
    a, b = _ols(np.column_stack([ones, np.log2(x)]), y)
    add("log", {"a": float(a), "b": float(b)}, a + b * np.log2(x))
    a, b = _ols(np.column_stack([ones, x]), y)
    add("linear", {"a": float(a), "b": float(b)}, a + b * x)

    pos = y > 0
    alpha: float | None = None
    alpha_ci: tuple[float, float] | None = None
    scheme: str | None = None
    if len(np.unique(x[pos])) >= 3:
        if not pos.all():
            notes.append(
                f"{int((~pos).sum())} zero width(s) excluded from the power law's log-log fit"
            )
        lc, alpha_hat = _ols(np.column_stack([ones[pos], np.log(x[pos])]), np.log(y[pos]))
        alpha = float(alpha_hat)
        c = float(math.exp(lc))
        add("power", {"c": c, "alpha": alpha}, c * x**alpha)
        if n_boot > 0:
            reps, scheme = _bootstrap_alpha(x[pos], y[pos], int(n_boot), seed)
            if len(reps) > 0:
                lo, hi = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2])
                alpha_ci = (float(lo), float(hi))
                if hi - lo <= 1e-9 * max(1.0, abs(alpha)):
                    notes.append(
                        "the bootstrap CI of α has zero width: no resample moves the slope "
                        "(e.g. the seeds agree at the lengths that determine it); it shows no "
                        "seed-to-seed spread, not certainty — more seeds would widen it"
                    )
            else:  # pragma: no cover - needs >= 2 distinct N, guaranteed above
                scheme = None
    else:
        notes.append("power law omitted: fewer than 3 distinct lengths with a positive width")

    criterion = "AICc" if all(fit.aicc is not None for fit in laws.values()) else "AIC"
    if criterion == "AIC":
        notes.append(f"AICc undefined with n = {n} points; models compared by AIC")

    def score(law: str) -> float:
        fit = laws[law]
        return fit.aicc if criterion == "AICc" and fit.aicc is not None else fit.aic

    best_score = min(score(law) for law in laws)
    best = next(law for law in LAWS if law in laws and score(law) <= best_score + 1e-9)
    return GrowthFit(
        lengths=tuple(x.tolist()),
        widths=tuple(y.tolist()),
        laws=laws,
        criterion=criterion,
        best=best,
        alpha=alpha,
        alpha_ci=alpha_ci,
        ci_level=ci,
        bootstrap=scheme,
        n_boot=int(n_boot),
        notes=tuple(notes),
    )
