"""A theorem set beside a measured curve: the report's verdict per (result, pair), in words.

:func:`judge` is the one place the report applies :func:`sepbench.theory.verdict`; everything
else here is prose around it: what the outcome means for a *trained* width
(:func:`interpretation`), the bound's value at the largest measured N, and :func:`combine`,
which sums a pair's verdicts up in the order of :data:`sepbench.theory.OUTCOMES`
(inconsistent if any is, else undecided, else consistent, else vacuous, else not applicable).
So a pair is summarised as *consistent* only when some theorem was checked and passed: a
*vacuous* lower bound — one no width on the grid could violate — never makes a pair
consistent.

What a trained width is measured under (:class:`Measurement`): the searched grid's smallest
width (in the fit's units: × the state factor for RNN classes, whose verdicts are on the
state) decides whether a lower bound can bind at all, and the study's success criterion — an
average accuracy ≥ the threshold on the task's own samples, not exact answers on every input
— decides whether a worst-case bound applies, or in which error-allowed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sepbench import theory
from sepbench.errors import UserError
from sepbench.report.bounds import result_params, theorem_length
from sepbench.report.infos import ModelInfo, TaskInfo

NO_THEOREM = "n/a"
"""A pair's outcome when no result of the catalogue concerns it."""


@dataclass(frozen=True)
class ResultVerdict:
    """One theorem set beside one measured curve."""

    result_id: str
    direction: str
    form: str
    statement: str
    outcome: str
    reason: str
    """Starts with the hypothesis checked (``checked …:``), then what was found."""
    hypothesis: str
    """What was checked: the bound or form, at which N and p, under which success criterion."""
    interpretation: str
    """What the outcome means for a trained width (learnability vs representability)."""
    bound_at_max: float | None
    """The theorem's width (lower side for lower/tight results, in the form the verdict
    checked) at ``bound_length``, in the searched width's units; None if it could not be
    evaluated."""
    bound_length: int | None
    """The largest measured N (of the fit)."""


@dataclass(frozen=True)
class Measurement:
    """How a pair's widths were measured, as the verdicts need it.

    ``min_width``: the smallest width the search could report, in the searched width's units
    (the grid's minimum). ``success``: what a width "working" meant — for trained widths
    :meth:`theory.Success.average` of the study's threshold (accuracy on held-out samples of
    the task's sampler); :meth:`theory.Success.exact` for widths verified on every input.
    """

    min_width: float
    success: theory.Success


def judge(
    result: theory.Result,
    task: TaskInfo,
    fit: theory.GrowthFit,
    p: int,
    params: dict[str, Any],
    *,
    min_width: float,
    success: theory.Success,
) -> theory.Verdict:
    """:func:`sepbench.theory.verdict` of ``result`` on ``fit`` at precision ``p``, with the
    measurement's smallest width ``min_width`` (in the fit's units) and success criterion.

    The task is passed on, so where its parameters fix the theorem's N
    (``result.task_lengths``: B24-T8 on mqar, N = 2P) the bound is one number at every study
    length.
    """
    return theory.verdict(
        result.id,
        fit,
        precision_bits=p,
        min_width=min_width,
        success=success,
        task=task.name,
        task_params=task.params,
        **params,
    )


def interpretation(direction: str, outcome: str, reason: str = "") -> str:
    """What a verdict on a *trained* width can and cannot say (theory.md), in a few words."""
    if outcome == "vacuous":
        return (
            "the bound asks for less than the smallest width searched at every N: no measurement "
            "on this grid could contradict it, so it says nothing here (not a 'consistent')"
        )
    if outcome == "not applicable":
        return (
            "the measurement does not meet the theorem's hypotheses (see the reason), so it is "
            "not compared with the bound"
        )
    if direction == "lower" or (direction == "tight" and "below the lower bound" in reason):
        if outcome == "inconsistent":
            return (
                "no model can beat a lower bound: check the trial (evaluation, threshold) or "
                "whether the bound's assumptions hold for this task"
            )
        if outcome == "consistent":
            return (
                "above the bound where it can bind: at these N the trained width measures "
                "learnability, not the bound"
            )
        return "the bound could not be checked"
    if outcome == "consistent":
        return "training found solutions that scale like the theorem's construction"
    if outcome == "inconsistent":
        return (
            "grows faster than the construction: a learnability gap over this range, not a "
            "counterexample (trained widths only bound the minimal width from above)"
        )
    return "the measured range cannot separate the theorem's form from faster growth"


def _bound_at(
    r: theory.Result,
    task: TaskInfo,
    params: dict[str, Any],
    n: int,
    p: int,
    factor: float,
    success: theory.Success,
) -> float | None:
    """The theorem's width at the study's N = ``n`` in the searched width's units: the lower
    side in the form the verdict checks (error-allowed under an average-accuracy success,
    where one is derived), else the construction's width."""
    try:
        n_eval = theorem_length(r, task, n)
        low = r.lower_width(n_eval, p, **params)
        if low is not None and not success.worst_case and r.error_fn is not None:
            low = r.error_lower_width(n_eval, p, error=success.error, **params)
        return r.width_bound(n_eval, p, **params) if low is None else low / factor
    except UserError:
        return None


def verdicts(
    results: Sequence[theory.Result],
    task: TaskInfo,
    model: ModelInfo,
    factor: float,
    fit: theory.GrowthFit | None,
    state_fit: theory.GrowthFit | None,
    fit_note: str,
    p: int,
    measurement: Measurement,
    answers: tuple[Sequence[int], Sequence[tuple[float, float]]] | None = None,
) -> list[ResultVerdict]:
    """Every result beside the pair's curve: on the state fit (width × ``factor``, with the
    smallest width scaled alike) when there is one, else on the width fit. Without a fit, a
    lower bound is still checked on ``answers`` (each finished search's N and interval, in
    the state's units: :func:`sepbench.theory.lower_verdict`) — one seed below the bound
    refutes it and every seed above meets it, with or without a law."""
    out = []
    on_state = state_fit is not None
    measured = state_fit if state_fit is not None else fit
    floor = measurement.min_width * (factor if on_state else 1.0)
    max_n = int(max(measured.lengths)) if measured is not None else None
    for r in results:
        params = result_params(r, task, model)
        bound = (
            None
            if max_n is None
            else _bound_at(r, task, params, max_n, p, factor, measurement.success)
        )
        hypothesis = f"{r.id} ({r.direction} bound: {r.statement})"
        if measured is None and r.direction == "lower" and answers and answers[0]:
            try:
                v = theory.lower_verdict(
                    r.id,
                    answers[0],
                    answers[1],
                    p,
                    min_width=measurement.min_width * factor,
                    success=measurement.success,
                    task=task.name,
                    task_params=task.params,
                    **params,
                )
            except UserError as exc:
                outcome, reason = "undecided", f"{hypothesis} not checked: {exc}"
            else:
                outcome, reason, hypothesis = v.outcome, f"{v.reason} ({fit_note})", v.hypothesis
                if factor != 1.0:
                    reason = f"on the state (= {factor:g} × width): {reason}"
        elif measured is None:
            outcome, reason = "undecided", f"{hypothesis} not checked: {fit_note}"
        else:
            try:
                v = judge(
                    r, task, measured, p, params, min_width=floor, success=measurement.success
                )
            except UserError as exc:
                outcome, reason = "undecided", f"{hypothesis} not checked: {exc}"
            else:
                outcome, reason, hypothesis = v.outcome, v.reason, v.hypothesis
                if on_state:
                    reason = f"on the state (= {factor:g} × width): {reason}"
        out.append(
            ResultVerdict(
                result_id=r.id,
                direction=r.direction,
                form=r.form,
                statement=r.statement,
                outcome=outcome,
                reason=reason,
                hypothesis=hypothesis,
                interpretation=interpretation(r.direction, outcome, reason),
                bound_at_max=bound,
                bound_length=max_n,
            )
        )
    return out


def combine(verdicts: Sequence[ResultVerdict]) -> tuple[str, str]:
    """A pair's outcome and the deciding verdict's reason (:data:`NO_THEOREM`, "" if none):
    the first outcome of :data:`sepbench.theory.OUTCOMES` that some verdict has."""
    if not verdicts:
        return NO_THEOREM, ""
    for outcome in theory.OUTCOMES:
        hits = [v for v in verdicts if v.outcome == outcome]
        if hits:
            v = hits[0]
            return outcome, f"{v.result_id}: {v.reason} — {v.interpretation}"
    raise AssertionError(f"unknown outcome(s) {[v.outcome for v in verdicts]}")
