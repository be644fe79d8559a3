"""Set a measured width curve beside a result: a verdict that could have come out otherwise.

What a measurement can say. A measured width is an *upper* bound on the true minimal width
(some model of that width worked; a grid answer says the minimal width is at most ``high``).
So a measurement below a **lower** bound is a contradiction — a bug in the measurement or the
bound, never a discovery (theory.md) — while a measurement above an **upper** bound
contradicts nothing: for trained widths it says the theorem's solution was not found
(learnability), for constructive widths that the construction is wasteful. Lower bounds are
therefore checked value by value; upper bounds (and H20's upper side) by *growth form*: does
the curve grow no faster than the theorem's form over the measured N?

Outcomes (:data:`OUTCOMES`): ``consistent``, ``inconsistent``, ``undecided`` (the data cannot
tell), ``vacuous`` (a lower bound that no measurement on this grid could violate — never a
"consistent") and ``not applicable`` (the measurement does not meet the theorem's
hypotheses). Every verdict names the hypothesis it checked (:attr:`Verdict.hypothesis`, also
the start of :attr:`Verdict.reason`).

**Lower bounds** (and the lower side of H20), evaluated with ``precision_bits`` (default 32,
float32's bit patterns) at every measured N:

1. *Applicability.* The catalogue's lower bounds are for exact answers on every input. A
   measurement whose :class:`Success` is an average accuracy θ on the task's samples meets
   that only through an error-allowed form (:attr:`Result.error_fn`, evaluated at ε = 1 − θ;
   derived for B24-T3, B24-P9 and W24-R, whose samplers are checked against the derivation's
   hypotheses); without one the verdict is ``not applicable`` and gives the catalogue's
   reason (:attr:`Result.error_note`).
2. *Vacuity.* A point violates the bound when its ``high`` (the width that worked) is below
   it. No ``high`` can be below the grid's smallest width ``min_width``, so where the bound is
   ≤ ``min_width`` the check cannot fail; if that holds at every measured N the verdict is
   ``vacuous`` (e.g. B24-T3 at p = 32 asks for at most one number for N ≤ 32 on a binary
   alphabet, and the grid starts at 1).
3. *The check.* ``inconsistent`` if some point's ``high`` is below the bound (relative
   tolerance 1e-9), else ``consistent``, naming the N at which the bound could bind and how
   close the closest point came; where the best-fitting law would cross the bound beyond
   the measured N (up to 2^40) is added.

**Growth form** (upper and tight results). Let F be the form's family (constant for
constant, D log k and log k; log; linear) and classify the fitted laws (:mod:`.fits`):
*fast* = the laws whose fitted curve grows over the measured range faster than F allows
(form constant: log, linear, power that increase; form log: linear and power that increase;
form linear: power with α > 1), *slow* = the rest. Two pieces of evidence:

* **Likelihood** (shape): Δ = best AICc among fast laws − best among slow laws (+∞ if no
  law is fast). Δ ≥ :data:`DECISIVE_DELTA` favours F decisively, Δ ≤ −D the faster law. This
  is what separates an exact log law from a power law on N = 2..32, where the slopes cannot.
  With AICc undefined (n ≤ 4 points: a 3-parameter law's small-sample penalty is infinite)
  only "no fitted law grows faster than the form" counts; plain AIC never decides.
  The form *wins* on shape when Δ ≥ D and its best law also fits at least as well as the best
  faster law (ln L, not only a smaller penalty: a constant law beating a power law on
  parameter count alone is Occam, not evidence about the shape), or when no fitted law grows
  faster and a law of the form fits the points exactly (σ ≤ 10⁻⁶: deterministic data such as
  a construction's; noisy data whose fitted slopes happen to fall do not count).
* **Slope** (rate): T_F is the largest log-log least-squares slope any law of the form with
  non-negative coefficients has over the measured lengths — 0 for constant forms, 1 for
  linear, and for log the slope of w = log2 N itself (a + b·log2 N with a ≥ 0 has a smaller
  one: its local slopes fall as a grows), e.g. 0.56 on N = 2..32 and 0.33 on N = 2..1024.
  δ = ln(grid step)/ln(N_max/N_min) (:func:`resolution_slope`) is the exponent of a rise of
  one grid step over the range, growth the grid cannot resolve (0 for exact points). α's
  interval (a usable one: present and of non-zero width — a zero-width interval never
  decides) is *too steep* if it lies entirely above T_F + δ, *flat enough* if no growth is
  detected (:attr:`GrowthFit.growth_detected`) and it lies entirely below T_F + δ.

Decision: *inconsistent* if Δ ≤ −D or too steep; *consistent* if the form wins on shape or
the curve is flat enough; *undecided* when both or neither hold. So a curve that shows
growth is consistent with a growing form only when its shape decisively favours the form; a
curve that shows no growth is consistent with a form when its interval excludes any growth
beyond the form's steepest slope plus one grid step; and noisy data never make a constant
form consistent by parameter count alone.

"Inconsistent" for an upper bound means "grows faster than the theorem's form over the
measured range": for trained widths a learnability gap, for constructive widths a bug.

**Units.** A width counts numbers (of p bits), and ``form`` is a growth in numbers at fixed
p. W24-RAG and W24-H are statements in *bits* at p = Θ(log n) (O(log n) bits: a constant
number of numbers at fixed p ≥ log2 n); a network that keeps one bit per unit realises the bit
count, whose width grows like log n. Such a width is judged with ``units="bits"`` against the
result's :attr:`~sepbench.theory.catalogue.Result.bits_form` (log), the same O(log n)-bit
statement; results without one refuse ``units="bits"``.

**Task-fixed N.** Where a task's parameters fix the theorem's N (B24-T8 on mqar: N = 2P),
``task`` and ``task_params`` make every lower-side bound that one number at every measured N.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sepbench.errors import UserError
from sepbench.theory.catalogue import Result, get, results
from sepbench.theory.fits import LAWS, GrowthFit

Outcome = Literal["consistent", "inconsistent", "undecided", "vacuous", "not applicable"]
OUTCOMES: tuple[str, ...] = ("inconsistent", "undecided", "consistent", "vacuous", "not applicable")
"""Every outcome, the most pressing first (the order a summary should pick in)."""

MEASUREMENT_PRECISION = 32
"""Default p for verdicts: float32's 32 bits per number."""
DEFAULT_MIN_WIDTH = 1.0
"""``min_width`` when none is given: no model has fewer than one number of width."""
DECISIVE_DELTA = 4.0
"""AIC(c) difference treated as decisive (Burnham & Anderson: "considerably less support")."""
FORM_FAMILY: dict[str, str] = {
    "constant": "constant",
    "D log k": "constant",
    "log k": "constant",
    "log": "log",
    "linear": "linear",
}
"""The growth in N of each catalogue form."""
NOT_BINDING_RATIO = 10.0
_TOL = 1e-9
_GROWS = 1e-6
"""A fitted law "grows" when it rises by more than this fraction over the measured range."""
_CROSSING_MAX = 2.0**40
_EXACT_SIGMA = 1e-6
"""A law whose spread σ of ln w is below this fits the points exactly (deterministic data)."""


@dataclass(frozen=True)
class Success:
    """What "success" meant for a measured width: the criterion a lower bound is checked
    against.

    ``accuracy``: the fraction of answers that had to be right (1.0: all). ``sampled``: True
    when that fraction was measured on inputs drawn from the task's own sampler (an
    average-case criterion, as a study's threshold on held-out examples is); False when every
    input of length N was answered correctly (worst case, the theorems' hypothesis; a
    construction verified on every input). :meth:`exact` and :meth:`average` build the two
    usual cases.
    """

    accuracy: float = 1.0
    sampled: bool = False

    def __post_init__(self) -> None:
        a = self.accuracy
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 < a <= 1:
            raise UserError(f"success accuracy must be a number in (0, 1], got {a!r}")
        if not isinstance(self.sampled, bool):
            raise UserError(f"success sampled must be True or False, got {self.sampled!r}")
        if a < 1 and not self.sampled:
            raise UserError(
                "an accuracy below 1 is an average over sampled inputs: use "
                f"Success.average({a:g}) (sampled=True)"
            )

    @classmethod
    def exact(cls) -> Success:
        """Every input of length N answered correctly (the worst case)."""
        return cls(1.0, False)

    @classmethod
    def average(cls, accuracy: float) -> Success:
        """Average accuracy ≥ ``accuracy`` on inputs drawn from the task's sampler."""
        return cls(accuracy, True)

    @property
    def worst_case(self) -> bool:
        return not self.sampled

    @property
    def error(self) -> float:
        """The allowed average error ε = 1 − accuracy."""
        return 1.0 - self.accuracy

    def describe(self) -> str:
        if self.worst_case:
            return "exact answers on every input"
        return f"average accuracy ≥ {self.accuracy:g} on the task's samples"


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a fitted curve with a result.

    ``hypothesis`` is what was checked (the bound or form, and the success criterion it was
    taken under); ``reason`` starts with it and says what was found.
    """

    result_id: str
    outcome: Outcome
    reason: str
    hypothesis: str = ""

    def __str__(self) -> str:
        return f"{self.result_id}: {self.outcome} — {self.reason}"


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.1f}"


def _range(fit: GrowthFit | _Answers) -> str:
    d = fit.distinct_lengths
    return f"N = {d[0]:g}..{d[-1]:g}"


# --------------------------------------------------------------------------------------------
# growth form
# --------------------------------------------------------------------------------------------


def form_slope(form: str, lengths: tuple[float, ...] | list[float] | np.ndarray) -> float:
    """T_F: the largest log-log least-squares slope of a law of ``form`` with non-negative
    coefficients over these lengths (with multiplicity; see the module docstring)."""
    family = FORM_FAMILY[form]
    if family == "constant":
        return 0.0
    if family == "linear":
        return 1.0
    x = np.asarray(lengths, dtype=float)
    if x.min() <= 1:
        return math.inf  # w = b·log2 N vanishes at N = 1: no finite steepest slope
    lx, ly = np.log(x), np.log(np.log2(x))
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    return float(np.sum((lx - lx.mean()) * (ly - ly.mean())) / sxx)


def resolution_slope(fit: GrowthFit) -> float:
    """δ = ln(grid step)/ln(N_max/N_min): the exponent of a curve that rises by one grid step
    over the measured range — growth the measurement cannot resolve (0 for exact points)."""
    span = math.log(fit.distinct_lengths[-1] / fit.distinct_lengths[0])
    return math.log(fit.grid_step) / span


def _grows(fit: GrowthFit, law: str) -> bool:
    lo, hi = fit.distinct_lengths[0], fit.distinct_lengths[-1]
    start, end = fit.laws[law].predict(np.array([lo, hi]))
    return bool(start > 0 and end / start - 1 > _GROWS)


def _fast_laws(family: str, fit: GrowthFit) -> list[str]:
    if family == "linear":
        return ["power"] if fit.laws["power"].params["alpha"] > 1 + _GROWS else []
    candidates = ("log", "linear", "power") if family == "constant" else ("linear", "power")
    return [law for law in candidates if _grows(fit, law)]


def _usable_ci(fit: GrowthFit) -> tuple[float, float] | None:
    ci = fit.alpha_ci
    if ci is None or fit.alpha is None:
        return None
    if ci[1] - ci[0] <= 1e-9 * max(1.0, abs(fit.alpha)):
        return None  # a zero-width interval never decides
    return ci


def _form_verdict(result: Result, fit: GrowthFit, units: str) -> tuple[Outcome, str, str]:
    """(outcome, hypothesis, finding) of the growth-form check (``units="bits"``: against
    :attr:`Result.bits_form`, on a width that counts bits)."""
    form_name = result.bits_form if units == "bits" else result.form
    family = FORM_FAMILY[form_name]
    form = {"constant": "a constant", "log": "log N", "linear": "linear"}[family]
    if form_name in ("D log k", "log k"):
        form = f"{form_name} (constant in N)"
    quantity = "the state bits (one per unit)" if units == "bits" else "the width"
    hypothesis = (
        f"{result.id} ({result.direction} bound: {result.statement}): {quantity} grow"
        f"{'' if units == 'bits' else 's'} no faster than {form} over {_range(fit)}"
    )
    fast = _fast_laws(family, fit)
    slow = [law for law in LAWS if law in fit.laws and law not in fast]
    best_slow = min(slow, key=fit.score)
    delta = math.inf if not fast else fit.score(min(fast, key=fit.score)) - fit.score(best_slow)
    slope = form_slope(form_name, fit.lengths)
    margin = resolution_slope(fit)
    ci = _usable_ci(fit)
    too_steep = ci is not None and ci[0] > slope + margin
    flat_enough = ci is not None and not fit.growth_detected and ci[1] < slope + margin
    # with AICc undefined (n ≤ k + 1 for a law) its penalty is infinite: no likelihood
    # comparison between the laws is decisive, only "no law grows faster" is; and a
    # preference for the form must come from its fit, not from a smaller penalty alone
    small = fit.criterion != "AICc"
    fast_wins = bool(fast) and not small and delta <= -DECISIVE_DELTA
    shape = bool(fast) and fit.laws[best_slow].loglik >= max(fit.laws[f].loglik for f in fast)
    exact_form = not fast and fit.laws[best_slow].sigma <= _EXACT_SIGMA
    slow_wins = exact_form or (not small and shape and delta >= DECISIVE_DELTA)

    if fast:
        best_fast = min(fast, key=fit.score)
        lik = (
            f"{fit.criterion}: best faster law {best_fast} vs best law within the form "
            f"{best_slow}, Δ = {_fmt(delta)}"
        )
    else:
        lik = f"{fit.criterion}: no fitted law grows faster than the form (best {best_slow}"
        lik += ", exact)" if exact_form else ")"
    if small and fast:
        lik += f" (AICc undefined with {fit.n} points: the likelihood does not decide)"
    if fit.alpha_ci is None or fit.alpha is None:
        rate = "no interval for α"
    else:
        lo, hi = fit.alpha_ci
        rate = f"α = {fit.alpha:.2f}, {fit.ci_level:.0%} CI [{lo:.2f}, {hi:.2f}]"
        if ci is None:
            rate += " (zero width: not used)"
        else:
            rate += f" vs the form's steepest {slope:.2f}"
            rate += f" + {margin:.2f} (one grid step)" if margin > 0 else ""
        if ci is not None and fit.growth_detected:
            rate += ", growth detected"
    evidence = f"{lik}; {rate}"
    if fit.n_censored:
        evidence += f"; {fit.n_censored} censored seed(s) in the fit" + (
            " (the answer rests on them)" if fit.rests_on_censored else ""
        )

    against, for_ = fast_wins or too_steep, slow_wins or flat_enough
    if against and for_:
        return "undecided", hypothesis, f"conflicting evidence: {evidence}"
    if against:
        why = "a faster law fits decisively better" if fast_wins else "α lies above the form"
        return "inconsistent", hypothesis, f"grows faster ({why}): {evidence}"
    if for_:
        why = "the shape decisively favours the form" if slow_wins else "no growth beyond it"
        return "consistent", hypothesis, f"{why}: {evidence}"
    return (
        "undecided",
        hypothesis,
        (
            f"the measured range {_range(fit)} cannot separate the form from faster growth: "
            f"{evidence}"
        ),
    )


# --------------------------------------------------------------------------------------------
# lower bounds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Length:
    """The theorem's N at a measured N: the N itself, or the one value a task fixes
    (:attr:`Result.task_lengths`: B24-T8 on mqar, N = 2P)."""

    task: str | None
    task_params: Mapping[str, Any]

    def of(self, result: Result, n: int) -> int:
        if self.task is None:
            return n
        try:
            return result.theorem_length(self.task, n, self.task_params)
        except KeyError as exc:
            raise UserError(
                f"{result.id} on task {self.task}: task_params lack {exc}, which fixes the "
                "theorem's N; pass the task's full parameters"
            ) from None

    def text(self, result: Result, n: int) -> str:
        """`` at N = 2P = 8`` where the task fixes N, else ``""``."""
        if self.task is None or self.task not in result.task_lengths:
            return ""
        return f" at N = {result.task_lengths[self.task].symbol} = {self.of(result, n)}"


@dataclass(frozen=True)
class _Answers:
    """Per-seed answers without a growth law: what :func:`lower_verdict` judges. A lower
    bound's check reads only the answers (each seed's interval at its N), never a law, so it
    needs no fit; the crossing of a fitted law with the bound is then not stated."""

    lengths: tuple[float, ...]
    highs: tuple[float, ...]

    @property
    def distinct_lengths(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.lengths)))


def _lower_verdict(
    result: Result,
    fit: GrowthFit | _Answers,
    p: int,
    params: dict[str, Any],
    success: Success,
    min_width: float,
    length: _Length,
) -> tuple[Outcome, str, str]:
    """(outcome, hypothesis, finding) of the lower-bound check (see the module docstring)."""
    where_n = length.text(result, int(max(fit.lengths)))
    at = f"{where_n}, p = {p}" if where_n else f" at p = {p}"
    base = f"{result.id} lower bound {result.formula_of('lower')}{at}"
    if success.worst_case:
        hypothesis = f"{base}, for exact answers on every input (the theorem's hypothesis)"

        def bound(n: int) -> float:
            value = result.lower_width(length.of(result, n), p, **params)
            assert value is not None
            return value

    elif result.error_fn is not None:
        eps = success.error
        hypothesis = (
            f"{result.id} lower bound in its error-allowed form {result.error_formula}"
            f"{where_n + ',' if where_n else ' at'} ε = {eps:g}, p = {p} ({success.describe()})"
        )

        def bound(n: int) -> float:
            value = result.error_lower_width(length.of(result, n), p, error=eps, **params)
            assert value is not None
            return value

    else:
        hypothesis = f"{base}, for exact answers on every input"
        return (
            "not applicable",
            hypothesis,
            (
                f"the measurement's success is {success.describe()}, not the bound's hypothesis; "
                f"{result.error_note}"
            ),
        )

    lengths = fit.distinct_lengths
    bounds = {n: bound(int(n)) for n in lengths}
    binding = [n for n in lengths if bounds[n] * (1 - _TOL) > min_width]
    if not binding:
        top = max(bounds.values())
        return (
            "vacuous",
            hypothesis,
            (
                f"the bound asks for at most {top:.3g} numbers at every measured N "
                f"({_range(fit)}) and the grid's smallest width is {min_width:g}: no "
                "measurement could fall below it"
            ),
        )
    worst: tuple[float, float, float] | None = None  # (ratio, N, high)
    for n_val, high in zip(fit.lengths, fit.highs, strict=True):
        if n_val not in binding or math.isinf(high):
            continue
        ratio = high / bounds[n_val]
        if worst is None or ratio < worst[0]:
            worst = (ratio, n_val, high)
    where = f"N = {binding[0]:g}" + (f"..{binding[-1]:g}" if len(binding) > 1 else "")
    if worst is not None and worst[0] < 1 - _TOL:
        _, n_val, high = worst
        return (
            "inconsistent",
            hypothesis,
            (
                f"a seed at N = {n_val:g} succeeded at width {high:g}, below the lower bound "
                f"{bounds[n_val]:.3g}: a bug report, not a discovery"
            ),
        )
    text = f"every seed clears the bound where it can bind ({where})"
    if worst is None:
        text += "; every seed there is censored (> max)"
    else:
        text += f"; closest {worst[0]:.3g}× at N = {worst[1]:g}"
        if worst[0] > NOT_BINDING_RATIO:
            text += " (far from binding)"
    # a fixed N: the bound never moves; no law (lower_verdict): nothing to extrapolate
    crossing = None if where_n or not isinstance(fit, GrowthFit) else _crossing(fit, bound)
    if crossing is not None and isinstance(fit, GrowthFit) and result.direction == "lower":
        text += f"; the fitted {fit.best} law would fall below it near N ≈ {crossing:.3g}"
    return "consistent", hypothesis, text


def _crossing(fit: GrowthFit, bound: Any) -> float | None:
    """First N beyond the measured range where the best law drops below the lower bound."""
    law = fit.laws[fit.best]
    start = max(fit.lengths)
    grid = np.unique(np.round(np.geomspace(start, _CROSSING_MAX, 200))).astype(np.int64)
    for n_val in grid[1:]:
        if float(law.predict(float(n_val))) < bound(int(n_val)):
            return float(n_val)
    return None


# --------------------------------------------------------------------------------------------
# the verdict
# --------------------------------------------------------------------------------------------


def verdict(
    result_id: str,
    fit: GrowthFit,
    precision_bits: int | None = None,
    *,
    min_width: float | None = None,
    success: Success | None = None,
    task: str | None = None,
    task_params: Mapping[str, Any] | None = None,
    units: str = "numbers",
    **params: Any,
) -> Verdict:
    """Compare ``fit`` (from :func:`~.fits.fit_growth`) with result ``result_id``.

    ``precision_bits`` (default :data:`MEASUREMENT_PRECISION` = 32) and ``params`` (the
    result's parameters, e.g. ``alphabet=2``) evaluate lower bounds; for RNN lower bounds the
    fit must be on the *state size* (e.g. 2 × hidden for an LSTM). ``min_width`` is the
    smallest width the measurement could have reported, in the fit's units (the grid's
    minimum × the state factor; default :data:`DEFAULT_MIN_WIDTH`): it decides ``vacuous``.
    ``success`` is the measurement's success criterion (default :meth:`Success.exact`, what
    a construction verified on every input meets; a trained study passes
    ``Success.average(threshold)``): it decides ``not applicable`` and the error-allowed
    form. ``task`` and ``task_params`` (the task's full parameters) name the measured task
    where its parameters fix the theorem's N (:attr:`Result.task_lengths`: B24-T8 on mqar is
    evaluated at N = 2P at every measured length); elsewhere they change nothing. ``units``:
    ``"numbers"`` (default: the width counts numbers, compared with :attr:`Result.form`) or
    ``"bits"`` (every unit holds one bit, so the width counts state bits: compared with the
    upper result's :attr:`Result.bits_form`, its growth in bits at p = Θ(log N)). The rule is
    stated in full in the module docstring.
    """
    result = get(result_id)
    if not isinstance(fit, GrowthFit):
        raise UserError(f"verdict needs a GrowthFit from fit_growth, got {type(fit).__name__}")
    if success is None:
        success = Success.exact()
    elif not isinstance(success, Success):
        raise UserError(
            f"success must be a theory.Success (Success.exact() or Success.average(θ)), got "
            f"{success!r}"
        )
    floor = DEFAULT_MIN_WIDTH if min_width is None else min_width
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 < floor < math.inf:
        raise UserError(f"min_width must be a positive number, got {min_width!r}")
    if units not in ("numbers", "bits"):
        raise UserError(f"units must be 'numbers' or 'bits', got {units!r}")
    if units == "bits" and not (result.direction == "upper" and result.bits_form):
        with_bits = ", ".join(r.id for r in results() if r.bits_form)
        raise UserError(
            f"{result.id} states no bound in bits (units='bits' applies to {with_bits})"
        )
    p = MEASUREMENT_PRECISION if precision_bits is None else precision_bits
    result.resolve(int(max(fit.lengths)), **params)  # reject unknown parameters up front
    length = _Length(task, dict(task_params or {}))
    if result.direction == "lower":
        outcome, hypothesis, text = _lower_verdict(result, fit, p, params, success, floor, length)
        return Verdict(result_id, outcome, f"checked {hypothesis}: {text}", hypothesis)
    outcome, hypothesis, text = _form_verdict(result, fit, units)
    if result.direction == "tight":
        low_outcome, low_hyp, low_text = _lower_verdict(
            result, fit, p, params, success, floor, length
        )
        if low_outcome == "inconsistent":
            outcome, text = "inconsistent", f"lower side: {low_text}; upper side: {text}"
        else:
            text = f"{text}; lower side ({low_hyp}): {low_outcome} — {low_text}"
        hypothesis = f"{hypothesis}, and {low_hyp}"
    return Verdict(result_id, outcome, f"checked {hypothesis}: {text}", hypothesis)


def lower_verdict(
    result_id: str,
    lengths: Sequence[float],
    intervals: Sequence[tuple[float, float]],
    precision_bits: int | None = None,
    *,
    min_width: float | None = None,
    success: Success | None = None,
    task: str | None = None,
    task_params: Mapping[str, Any] | None = None,
    **params: Any,
) -> Verdict:
    """The lower-bound check of :func:`verdict` on the per-seed answers alone, for a curve
    with too few finite answers to fit a law (e.g. every seed censored above one N).

    A lower bound is refuted by a single seed that succeeded below it and is met when every
    seed that can be compared clears it; neither needs a growth law, so the check is the
    same as :func:`verdict`'s lower side (``vacuous`` / ``not applicable`` / ``inconsistent``
    / ``consistent``, same arguments), minus the fitted law's crossing. ``intervals``: each
    seed's (low, high] at ``lengths[i]`` (high = ∞ for a censored seed). Upper and tight
    results need a law: UserError."""
    result = get(result_id)
    if result.direction != "lower":
        raise UserError(
            f"{result.id} is a{'n' if result.direction == 'upper' else ''} {result.direction} "
            "bound: its form needs a growth fit (verdict); lower_verdict checks lower bounds"
        )
    if len(lengths) != len(intervals) or not lengths:
        raise UserError(
            f"lower_verdict needs one interval per length, got {len(lengths)} length(s) and "
            f"{len(intervals)} interval(s)"
        )
    for n_val, (lo, hi) in zip(lengths, intervals, strict=True):
        if not (n_val >= 1 and 0 <= lo <= hi):
            raise UserError(
                f"each answer needs N >= 1 and 0 <= low <= high, got N = {n_val!r}, "
                f"({lo!r}, {hi!r}]"
            )
    if success is None:
        success = Success.exact()
    floor = DEFAULT_MIN_WIDTH if min_width is None else min_width
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 < floor < math.inf:
        raise UserError(f"min_width must be a positive number, got {min_width!r}")
    p = MEASUREMENT_PRECISION if precision_bits is None else precision_bits
    result.resolve(int(max(lengths)), **params)
    answers = _Answers(tuple(float(n) for n in lengths), tuple(float(h) for _, h in intervals))
    length = _Length(task, dict(task_params or {}))
    outcome, hypothesis, text = _lower_verdict(result, answers, p, params, success, floor, length)
    text += "; judged on the per-seed answers (too few finite answers for a growth fit)"
    return Verdict(result_id, outcome, f"checked {hypothesis}: {text}", hypothesis)
