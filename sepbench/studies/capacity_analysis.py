"""Capacity, forgetting and growth laws from a capacity study's point records (no torch).

The one owner of capacity.md's definitions:

* **depth-averaged accuracy** acc(L): the correct rows over all depths at context L, divided
  by the rows (every depth has the same number of rows, so this is the mean over depths);
* **capacity** T_recall(θ) (:func:`t_recall`): the largest grid L whose depth-averaged
  accuracy is ≥ θ there *and at every smaller grid L*. ``None`` with ``below`` when already
  the smallest L fails; the largest L with ``above`` when every L passes (a lower bound);
* **forgetting** (:func:`forgetting`): a model *forgets* when its recent-key accuracy
  acc_recent(L) ≥ θ at every grid L ≤ min(largest L, span·T_train) (capacity.md: span 32);
  the forgetting score is the smallest of those accuracies, and the *collapse length* is the
  first grid L > T_train where acc_recent < θ in a model that recalls recent keys at every
  grid L ≤ T_train (falling acc_recent is collapse: the key is as near the query as in
  training, so the long context itself broke recall);
* **T_forget(S)** (:func:`t_forget`): the smallest T_train at which the median seed forgets
  (the median over seeds of the forgetting score is ≥ θ); ``None`` when no trained length
  does (T_forget is then above the largest T_train);
* **a family's capacity curve** (:func:`capacity_points`): per (S, seed), the largest
  T_recall(θ) over the training lengths — the longest context any training length made that
  state recall (SM24 measures T_recall on models trained past T_forget).

Growth laws (:func:`compare_laws`): capacity.md asks T_recall vs S as SM24's exponential
b·(a^S − 1) + c against a power law and a linear law, and T_forget vs S as linear (SM24)
against a power law. Every form is fitted here by least squares in T-space — the constant
(the mean), the linear law (ordinary least squares), the power law (c, α from the log-log
regression over the positive T, as the first width fits did) and the exponential, by profiling
its rate r = ln a (for fixed r the law is linear in b and c: least squares; r by a bounded
search of the residual sum of squares over r ∈ [1e−4, 50]/max S). These are measured points,
not censored widths, so :func:`sepbench.theory.fit_growth` (interval-censored, log-space) is
not the right model for them. All forms are scored on the same residuals with the same
information criteria (AIC = n·ln(RSS/n) + 2k, k = parameters + 1; AICc when every form has
n > k + 1). :attr:`LawComparison.decision` states in words what the data can
and cannot decide (ΔAICc < 2 between two forms: not told apart).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sepbench.errors import UserError

RATE_RANGE = (1e-4, 50.0)
"""The exponential's rate r is searched in [1e−4, 50] / max S (a^S from nearly linear to a
factor e^50 over the range)."""
UNDECIDED = 2.0
"""ΔAIC(c) below which two forms are not told apart (the usual rule of thumb)."""


# ---------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Cell:
    """Rows scored at one point: how many, how many correct, and each row's outcome."""

    rows: int
    correct: int
    hits: str = ""

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else math.nan

    def first(self, k: int) -> Cell:
        """The same point restricted to its first ``k`` rows (needs ``hits``)."""
        if k >= self.rows:
            return self
        if len(self.hits) != self.rows:
            raise UserError("a point record without per-row hits cannot be restricted to rows")
        part = self.hits[:k]
        return Cell(k, part.count("1"), part)


@dataclass
class Curves:
    """One trial's points by mitigation: ``grid[m][(L, depth)]`` and ``recent[m][L]``."""

    grid: dict[str, dict[tuple[int, float], Cell]] = field(default_factory=dict)
    recent: dict[str, dict[int, Cell]] = field(default_factory=dict)

    @property
    def mitigations(self) -> list[str]:
        return sorted(self.grid, key=lambda m: (m != "none", m))

    def averaged(self, mitigation: str = "none", rows: int | None = None) -> dict[int, float]:
        """Depth-averaged accuracy per L (on the first ``rows`` rows of each point)."""
        pooled: dict[int, list[int]] = {}
        for (n, _), cell in self.grid.get(mitigation, {}).items():
            c = cell.first(rows) if rows is not None else cell
            total = pooled.setdefault(n, [0, 0])
            total[0] += c.correct
            total[1] += c.rows
        return {n: c / r for n, (c, r) in sorted(pooled.items()) if r}

    def recent_accuracy(
        self, mitigation: str = "none", rows: int | None = None
    ) -> dict[int, float]:
        out = {}
        for n, cell in sorted(self.recent.get(mitigation, {}).items()):
            c = cell.first(rows) if rows is not None else cell
            if c.rows:
                out[n] = c.accuracy
        return out

    def heatmap(self, mitigation: str = "none") -> tuple[list[int], list[float], np.ndarray]:
        """(lengths, depths, accuracy [depths, lengths]) of one mitigation."""
        cells = self.grid.get(mitigation, {})
        lengths = sorted({n for n, _ in cells})
        depths = sorted({d for _, d in cells})
        acc = np.full((len(depths), len(lengths)), np.nan)
        for (n, d), cell in cells.items():
            acc[depths.index(d), lengths.index(n)] = cell.accuracy
        return lengths, depths, acc


def curves(points: Iterable[Mapping[str, Any]]) -> Curves:
    """A trial's :class:`Curves` from its point records (``probe`` grid / recent)."""
    out = Curves()
    for p in points:
        m = str(p.get("mitigation", "none"))
        cell = Cell(int(p["rows"]), int(p["correct"]), str(p.get("hits", "")))
        if p.get("probe") == "recent":
            out.recent.setdefault(m, {})[int(p["length"])] = cell
        else:
            out.grid.setdefault(m, {})[(int(p["length"]), float(p["depth"]))] = cell
    return out


# ---------------------------------------------------------------------------------- capacity
@dataclass(frozen=True)
class Recall:
    """T_recall(θ): ``value`` (None below the grid) and whether it is censored."""

    value: int | None
    censored: str | None = None
    """``below`` (the smallest L already fails), ``above`` (every L passes), or None."""

    def text(self) -> str:
        if self.value is None:
            return "—"
        return f"≥ {self.value}" if self.censored == "above" else str(self.value)


def t_recall(averaged: Mapping[int, float], theta: float) -> Recall:
    """The largest grid L with accuracy ≥ θ there and at every smaller grid L."""
    if not averaged:
        raise UserError("t_recall: no accuracies given")
    best: int | None = None
    for n in sorted(averaged):
        if not averaged[n] >= theta:
            return Recall(best, "below" if best is None else None)
        best = n
    return Recall(best, "above")


@dataclass(frozen=True)
class Forgetting:
    """The forgetting rule's result for one trial (module docstring)."""

    forgets: bool
    score: float
    """The smallest acc_recent over the judged lengths (nan: none judged)."""
    span_end: int
    """min(largest grid L, span·T_train): the longest L judged."""
    collapse_length: int | None
    """The first grid L > T_train with acc_recent < θ, for a model whose acc_recent is ≥ θ at
    every grid L ≤ T_train (None: no such L, or the model does not recall where it was
    trained — nothing to collapse from)."""


def forgetting(
    recent: Mapping[int, float], train_length: int, theta: float, span: int = 32
) -> Forgetting:
    if not recent:
        raise UserError("forgetting: no recent-key accuracies (evaluation.recent_rows = 0?)")
    end = min(max(recent), span * train_length)
    judged = [recent[n] for n in sorted(recent) if n <= end]
    score = min(judged) if judged else math.nan
    within = [recent[n] for n in sorted(recent) if n <= train_length]
    collapse = None
    if within and min(within) >= theta:  # it recalls recent keys where it was trained
        collapse = next((n for n in sorted(recent) if n > train_length and recent[n] < theta), None)
    return Forgetting(bool(judged) and score >= theta, score, end, collapse)


def t_forget(scores: Mapping[int, Sequence[float]], theta: float) -> int | None:
    """Smallest T_train whose median forgetting score over seeds is ≥ θ (None: none)."""
    for t in sorted(scores):
        values = [s for s in scores[t] if not math.isnan(s)]
        if values and statistics.median(values) >= theta:
            return t
    return None


def capacity_points(
    trials: Iterable[tuple[int, int, Recall]],
) -> list[tuple[int, int, Recall]]:
    """(S, replicate, T_recall) per (S, seed): the largest value over the training lengths
    (censored ``above`` if any of them is; None only if all are below the grid)."""
    best: dict[tuple[int, int], Recall] = {}
    for state, replicate, recall in trials:
        key = (state, replicate)
        old = best.get(key)
        if old is None or _rank(recall) > _rank(old):
            best[key] = recall
    return [(s, r, v) for (s, r), v in sorted(best.items())]


def _rank(r: Recall) -> tuple[int, int]:
    if r.value is None:
        return (-1, 0)
    return (r.value, 1 if r.censored == "above" else 0)


# ---------------------------------------------------------------------------------- laws
@dataclass(frozen=True)
class FormFit:
    """One fitted form: parameters, residual sum of squares, information criteria."""

    form: str
    params: dict[str, float]
    rss: float
    aic: float
    aicc: float | None
    formula: str

    def predict(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        s = np.asarray(x, dtype=float)
        q = self.params
        if self.form == "constant":
            return np.full_like(s, q["a"])
        if self.form == "linear":
            return q["a"] + q["b"] * s
        if self.form == "power":
            return q["c"] * s ** q["alpha"]
        if self.form == "log":
            return q["a"] + q["b"] * np.log2(s)
        return q["b"] * np.expm1(q["r"] * s) + q["c"]


@dataclass(frozen=True)
class LawComparison:
    """Forms fitted to (S, T) points, the best by the criterion, and what it decides."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    fits: dict[str, FormFit]
    criterion: str
    best: str
    decision: str
    notes: tuple[str, ...] = ()

    def delta(self, form: str) -> float:
        return self.score(form) - self.score(self.best)

    def score(self, form: str) -> float:
        fit = self.fits[form]
        return fit.aicc if self.criterion == "AICc" and fit.aicc is not None else fit.aic


def _criteria(rss: float, n: int, n_params: int, floor: float) -> tuple[float, float | None]:
    """AIC and AICc as :func:`sepbench.theory.fit_growth` computes them (k = params + 1)."""
    k = n_params + 1
    aic = n * math.log(max(rss, floor) / n) + 2 * k
    return aic, (aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else None)


def fit_exponential(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], float]:
    """Least squares of y = b·(e^{r·x} − 1) + c with r > 0 (a = e^r): (params, RSS)."""
    from scipy.optimize import minimize_scalar

    top = float(np.max(x))

    def solve(r: float) -> tuple[float, float, float]:
        design = np.column_stack([np.expm1(r * x), np.ones_like(x)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((y - design @ coef) ** 2))
        return rss, float(coef[0]), float(coef[1])

    lo, hi = math.log(RATE_RANGE[0] / top), math.log(RATE_RANGE[1] / top)
    grid = np.linspace(lo, hi, 61)
    values = [solve(math.exp(g))[0] for g in grid]
    i = int(np.argmin(values))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    found = minimize_scalar(lambda g: solve(math.exp(g))[0], bounds=(a, b), method="bounded")
    g = float(found.x) if found.fun <= values[i] else float(grid[i])
    rss, bb, cc = solve(math.exp(g))
    return {"b": bb, "r": math.exp(g), "c": cc}, rss


def _fit_simple(
    form: str, x: np.ndarray, y: np.ndarray
) -> tuple[dict[str, float], float, str] | None:
    """Least squares of the constant, linear or power form: (params, RSS in T-space, formula);
    None for a power law with fewer than 3 distinct S at positive T."""
    ones = np.ones_like(x)
    if form == "constant":
        a = float(y.mean())
        return {"a": a}, float(np.sum((y - a) ** 2)), f"T = {a:.4g}"
    if form == "linear":
        coef, *_ = np.linalg.lstsq(np.column_stack([ones, x]), y, rcond=None)
        a, b = float(coef[0]), float(coef[1])
        return {"a": a, "b": b}, float(np.sum((y - a - b * x) ** 2)), f"T = {a:.4g} {_signed(b)}·S"
    if form != "power":
        raise UserError(
            f"unknown growth form {form!r}; known: constant, linear, power, exponential"
        )
    pos = y > 0
    if len(np.unique(x[pos])) < 3:
        return None
    coef, *_ = np.linalg.lstsq(
        np.column_stack([ones[pos], np.log(x[pos])]), np.log(y[pos]), rcond=None
    )
    c, alpha = math.exp(float(coef[0])), float(coef[1])
    rss = float(np.sum((y - c * x**alpha) ** 2))
    return {"c": c, "alpha": alpha}, rss, f"T = {c:.4g}·S^{alpha:.3f}"


def min_points(forms: Sequence[str]) -> int:
    """Fewest points at which AICc is defined for every form: n > k + 1 with k = the form's
    parameters + 1 (the exponential has three parameters, the others at most two)."""
    params = max(3 if f == "exponential" else 1 if f == "constant" else 2 for f in forms)
    return params + 3


def compare_laws(
    x: Sequence[float],
    y: Sequence[float],
    forms: Sequence[str] = ("constant", "linear", "power", "exponential"),
    quantum: str = "",
) -> LawComparison:
    """Fit ``forms`` to the points (S, T) and say what the comparison decides.

    Needs ≥ 3 distinct S (UserError otherwise). ``quantum``: a phrase on how the measured T
    are quantised (e.g. the doubling grid of L), repeated in the decision."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if len(np.unique(xs)) < 3:
        raise UserError(
            f"need points at >= 3 distinct S to compare growth laws, got {len(np.unique(xs))}"
        )
    n = len(xs)
    floor = n * (1e-9 * max(1.0, float(np.max(np.abs(ys))))) ** 2
    fits: dict[str, FormFit] = {}
    notes: list[str] = []
    for form in forms:
        if form == "exponential":
            params, rss = fit_exponential(xs, ys)
            if params["r"] <= RATE_RANGE[0] / float(np.max(xs)) * (1 + 1e-6):
                notes.append(
                    "the exponential's rate sits at its search's lower bound: on these points "
                    "it degenerates to the linear form (b·r·S + c)"
                )
            formula = f"T = {params['b']:.4g}·(e^({params['r']:.3g}·S) − 1) {_signed(params['c'])}"
        else:
            fitted = _fit_simple(form, xs, ys)
            if fitted is None:
                notes.append(f"{form} form omitted: fewer than 3 distinct S with a positive T")
                continue
            params, rss, formula = fitted
        aic, aicc = _criteria(rss, n, len(params), floor)
        fits[form] = FormFit(form, params, rss, aic, aicc, formula)
    criterion = "AICc" if all(f.aicc is not None for f in fits.values()) else "AIC"
    if criterion == "AIC" and not any("AICc undefined" in note for note in notes):
        notes.append(f"AICc undefined with n = {n} points for some form; compared by AIC")

    def score(form: str) -> float:
        f = fits[form]
        return f.aicc if criterion == "AICc" and f.aicc is not None else f.aic

    best = min(fits, key=lambda f: (score(f), list(fits).index(f)))
    close = [f for f in fits if f != best and score(f) - score(best) < UNDECIDED]
    distinct_x = len(set(xs.tolist()))
    where = f"{n} points at {distinct_x} state sizes"
    if quantum:
        where += f"; {quantum}"
    if close:
        decision = (
            f"undecided: {best} is best by {criterion} but "
            + ", ".join(f"{f} (Δ = {score(f) - score(best):.2f})" for f in close)
            + f" lie within {UNDECIDED:g} of it ({where})"
        )
    else:
        runner = min((f for f in fits if f != best), key=score, default=None)
        gap = (
            f" by Δ{criterion} = {score(runner) - score(best):.2f} over {runner}" if runner else ""
        )
        decision = f"{best} is preferred{gap} ({where})"
    if "constant" in fits and best != "constant" and "constant" in close:
        decision += "; the data cannot even tell growth from a constant"
    if notes:
        decision += "; " + "; ".join(notes)
    return LawComparison(
        tuple(xs.tolist()), tuple(ys.tolist()), fits, criterion, best, decision, tuple(notes)
    )


def _signed(v: float) -> str:
    return f"+ {v:.4g}" if v >= 0 else f"− {-v:.4g}"
