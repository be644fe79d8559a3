"""Set a measured width curve beside a result: consistent, inconsistent or undecided.

What a verdict can mean. A measured width is an *upper* bound on the true minimal width (some
model of that width worked). So a measurement below a **lower** bound is a contradiction — a
bug in the measurement or the bound, never a discovery (theory.md) — while a measurement above
an **upper** bound contradicts nothing: for trained widths it says the theorem's solution was
not found (learnability), for constructive widths that the construction is wasteful. The
verdict therefore checks values against lower bounds, and for upper bounds checks the *growth
form*: does the curve grow no faster than the theorem's form?

Decision rule (thresholds are module constants; the fit is a :class:`~.fits.GrowthFit`):

1. **Lower bounds** (and the lower side of tight results). The bound is evaluated at every
   measured N with ``precision_bits`` (default 32: float32, the largest precision the
   testbed measures, so the check never blames a float32 measurement for a too-small p).
   *inconsistent* if any single measurement is below it (relative tolerance 1e-9);
   otherwise the lower side is satisfied. For a lower result that is the verdict:
   *consistent*, and the reason says how close the closest point came (a ratio above 10 is
   reported as "does not bind at these N") and, when the best-fitting law falls below the
   bound at some N ≤ 2^40 beyond the measured range, roughly where.
2. **Growth form** (upper and tight results). The form sets a threshold T on the power-law
   exponent α: T = 0.1 for forms constant in N (constant, D log k, log k), 0.5 for log N
   (a + b·log2 N with a, b ≥ 0 has local log-log slope ≤ 1/ln N, below 0.5 from N = 8 on),
   1.25 for linear. Laws are split into *slow* (allowed by the form: the constant law; the log
   law for log and linear forms; the linear law for linear forms; the power law when α̂ < T)
   and *fast* (the rest). Let Δ = best score among fast laws − best among slow laws
   (AICc, or AIC, see :mod:`.fits`), so Δ > 0 favours the form. With D = 4 the decisive
   margin ("considerably less support", Burnham & Anderson):

   * AIC decisive for the form (Δ ≥ D): *consistent*, unless α's CI lies entirely above T
     (then *undecided*, conflicting evidence);
   * AIC decisive against (Δ ≤ −D): *inconsistent*, unless α's CI lies entirely below T
     (then *undecided*);
   * AIC indecisive: *consistent* if α's CI lies entirely below T, *inconsistent* if
     entirely above, *undecided* if it straddles T (or there is no CI) — the measured range
     cannot tell the form from faster growth.

   "Inconsistent" for an upper bound means "grows faster than the theorem's form over the
   measured range": for trained widths a learnability gap, for constructive widths a bug.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sepbench.errors import UserError
from sepbench.theory.catalogue import Result, get
from sepbench.theory.fits import LAWS, GrowthFit

Outcome = Literal["consistent", "inconsistent", "undecided"]

MEASUREMENT_PRECISION = 32
"""Default p for verdicts: float32's 32 bits per number."""
DECISIVE_DELTA = 4.0
"""AIC(c) difference treated as decisive."""
FORM_THRESHOLDS: dict[str, float] = {
    "constant": 0.1,
    "D log k": 0.1,
    "log k": 0.1,
    "log": 0.5,
    "linear": 1.25,
}
"""Exponent α separating each form from faster growth."""
NOT_BINDING_RATIO = 10.0
_TOL = 1e-9
_CROSSING_MAX = 2.0**40


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a fitted curve with a result, and a one-line reason."""

    result_id: str
    outcome: Outcome
    reason: str

    def __str__(self) -> str:
        return f"{self.result_id}: {self.outcome} — {self.reason}"


def _slow_laws(form: str, fit: GrowthFit) -> tuple[list[str], list[str]]:
    threshold = FORM_THRESHOLDS[form]
    slow = ["constant"]
    if threshold >= FORM_THRESHOLDS["log"]:
        slow.append("log")
    if threshold >= FORM_THRESHOLDS["linear"]:
        slow.append("linear")
    if "power" in fit.laws and fit.alpha is not None and fit.alpha < threshold:
        slow.append("power")
    fast = [law for law in LAWS if law in fit.laws and law not in slow]
    return slow, fast


def _form_verdict(result: Result, fit: GrowthFit) -> tuple[Outcome, str]:
    threshold = FORM_THRESHOLDS[result.form]
    slow, fast = _slow_laws(result.form, fit)
    best_slow = min(slow, key=fit.score)
    delta = math.inf if not fast else fit.score(min(fast, key=fit.score)) - fit.score(best_slow)
    ci = fit.alpha_ci
    ci_below = ci is not None and ci[1] < threshold
    ci_above = ci is not None and ci[0] > threshold
    ci_text = (
        f"α = {fit.alpha:.2f}, {fit.ci_level:.0%} CI [{ci[0]:.2f}, {ci[1]:.2f}]"
        if ci is not None and fit.alpha is not None
        else "no CI for α"
    )
    form = f"the {result.form} form" if result.form != "log" else "log N"
    if delta >= DECISIVE_DELTA:
        aic_text = f"{fit.criterion} prefers {best_slow} by {_fmt(delta)}"
        if ci_above:
            return "undecided", f"conflicting: {aic_text} but {ci_text} lies above {threshold}"
        return "consistent", f"{aic_text} over faster growth; {ci_text} (threshold {threshold})"
    if delta <= -DECISIVE_DELTA:
        best_fast = min(fast, key=fit.score)
        aic_text = f"{fit.criterion} prefers {best_fast} by {_fmt(-delta)} over {form}"
        if ci_below:
            return "undecided", f"conflicting: {aic_text} but {ci_text} lies below {threshold}"
        return "inconsistent", f"grows faster than {form}: {aic_text}; {ci_text}"
    aic_text = f"{fit.criterion} indecisive (Δ = {_fmt(delta)})"
    if ci_below:
        return "consistent", f"{ci_text} below {threshold}; {aic_text}"
    if ci_above:
        return "inconsistent", f"grows faster than {form}: {ci_text} above {threshold}; {aic_text}"
    return "undecided", (
        f"{ci_text} straddles {threshold} and {aic_text}: the measured range "
        f"{_range(fit)} cannot separate {form} from faster growth"
    )


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.1f}"


def _range(fit: GrowthFit) -> str:
    d = fit.distinct_lengths
    return f"N = {d[0]:g}..{d[-1]:g}"


def _lower_check(
    result: Result, fit: GrowthFit, precision_bits: int, params: dict[str, Any]
) -> tuple[bool, str]:
    """(ok, text): whether every measurement clears the lower bound, and how closely."""
    worst_ratio, worst_n, worst_w, worst_b = math.inf, 0.0, 0.0, 0.0
    for n_val, w in zip(fit.lengths, fit.widths, strict=True):
        bound = result.lower_width(int(n_val), precision_bits, **params)
        assert bound is not None
        if bound <= 0:
            continue
        ratio = w / bound
        if ratio < worst_ratio:
            worst_ratio, worst_n, worst_w, worst_b = ratio, n_val, w, bound
    if math.isinf(worst_ratio):
        return True, "the bound is 0 at every measured N"
    if worst_ratio < 1 - _TOL:
        return False, (
            f"width {worst_w:g} at N = {worst_n:g} is below the lower bound {worst_b:.3g} "
            f"(p = {precision_bits}): a bug report, not a discovery"
        )
    text = f"every width clears the bound (closest: {worst_ratio:.3g}× at N = {worst_n:g})"
    if worst_ratio > NOT_BINDING_RATIO:
        text += "; the bound does not bind at these N"
    return True, text


def _crossing(
    result: Result, fit: GrowthFit, precision_bits: int, params: dict[str, Any]
) -> float | None:
    """First N beyond the measured range where the best law drops below the lower bound."""
    law = fit.laws[fit.best]
    start = max(fit.lengths)
    grid = np.unique(np.round(np.geomspace(start, _CROSSING_MAX, 200))).astype(np.int64)
    for n_val in grid[1:]:
        bound = result.lower_width(int(n_val), precision_bits, **params)
        assert bound is not None
        if float(law.predict(float(n_val))) < bound:
            return float(n_val)
    return None


def verdict(
    result_id: str, fit: GrowthFit, precision_bits: int | None = None, **params: Any
) -> Verdict:
    """Compare ``fit`` (from :func:`~.fits.fit_growth`) with result ``result_id``.

    ``precision_bits`` (default :data:`MEASUREMENT_PRECISION` = 32) and ``params`` (the
    result's parameters, e.g. ``alphabet=4``) are used to evaluate lower bounds. For RNN lower
    bounds pass the *state size* as the width (e.g. 2 × hidden for an LSTM: h and c). The rule
    is stated in full in the module docstring.
    """
    result = get(result_id)
    if not isinstance(fit, GrowthFit):
        raise UserError(f"verdict needs a GrowthFit from fit_growth, got {type(fit).__name__}")
    p = MEASUREMENT_PRECISION if precision_bits is None else precision_bits
    result.resolve(int(max(fit.lengths)), **params)  # reject unknown parameters up front
    if result.direction in ("lower", "tight"):
        ok, text = _lower_check(result, fit, p, params)
        if not ok:
            return Verdict(result_id, "inconsistent", text)
        if result.direction == "lower":
            crossing = _crossing(result, fit, p, params)
            if crossing is not None:
                text += f"; the fitted {fit.best} law would fall below it near N ≈ {crossing:.3g}"
            return Verdict(result_id, "consistent", text)
        outcome, form_text = _form_verdict(result, fit)
        return Verdict(result_id, outcome, f"{form_text}; lower side: {text}")
    outcome, form_text = _form_verdict(result, fit)
    return Verdict(result_id, outcome, form_text)
