"""A theorem set beside a measured curve: the report's verdict per (result, pair), in words.

:func:`judge` is the one place the report applies :func:`sepbench.theory.verdict`; everything
else here is prose around it: what the outcome means for a *trained* width
(:func:`interpretation`), the bound's value at the largest measured N, censored seeds (a
growth verdict that leaves them out may understate growth), and :func:`combine`, which sums a
pair's verdicts up (inconsistent if any is, else undecided if any is, else consistent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sepbench import theory
from sepbench.errors import UserError
from sepbench.report.bounds import result_params, theorem_length
from sepbench.report.infos import ModelInfo, TaskInfo

OUTCOME_ORDER = ("inconsistent", "undecided", "consistent")
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
    interpretation: str
    """What the outcome means for a trained width (learnability vs representability)."""
    bound_at_max: float | None
    """The theorem's width (lower side for lower/tight results) at ``bound_length``, in the
    searched width's units; None if it could not be evaluated."""
    bound_length: int | None
    """The largest measured N (of the fit)."""


def judge(
    result: theory.Result,
    task: TaskInfo,
    fit: theory.GrowthFit,
    p: int,
    params: dict[str, Any],
) -> theory.Verdict:
    """:func:`sepbench.theory.verdict` of ``result`` on ``fit`` at precision ``p``.

    Where the task fixes the theorem's N from its parameters (``result.task_lengths``: B24-T8
    on mqar, N = 2P) the bound is one number at every study length, not a growth law in the
    study's N: every measured value must then clear it.
    """
    if task.name is not None and task.name in result.task_lengths:
        rule = result.task_lengths[task.name]
        n = theorem_length(result, task, int(max(fit.lengths)))
        bound = result.lower_width(n, p, **params) or 0.0
        worst = min(fit.widths)
        where = f"N = {rule.symbol} = {n}, p = {p}"
        if worst < bound * (1 - 1e-9):
            return theory.Verdict(
                result.id,
                "inconsistent",
                f"width {worst:g} is below the lower bound {bound:.3g} ({where}): "
                "a bug report, not a discovery",
            )
        return theory.Verdict(
            result.id, "consistent", f"every width clears the bound {bound:.3g} ({where})"
        )
    return theory.verdict(result.id, fit, precision_bits=p, **params)


def interpretation(direction: str, outcome: str, reason: str = "") -> str:
    """What a verdict on a *trained* width can and cannot say (theory.md), in a few words."""
    if direction == "lower" or (direction == "tight" and "below the lower bound" in reason):
        if outcome == "inconsistent":
            return (
                "no model can beat a lower bound: check the trial (evaluation, threshold) or "
                "whether the bound's assumptions hold for this task"
            )
        if outcome == "consistent":
            return (
                "above the bound, which binds only at large N: at these N the trained width "
                "measures learnability, not the bound"
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


def verdicts(
    results: Sequence[theory.Result],
    task: TaskInfo,
    model: ModelInfo,
    factor: float,
    fit: theory.GrowthFit | None,
    state_fit: theory.GrowthFit | None,
    fit_note: str,
    censored: int,
    p: int,
) -> list[ResultVerdict]:
    """Every result beside the pair's curve: on the state fit (width × ``factor``) when there
    is one, else on the width fit; ``censored`` seeds left out of the fit turn a consistent
    growth verdict into undecided."""
    out = []
    measured = state_fit if state_fit is not None else fit
    max_n = int(max(measured.lengths)) if measured is not None else None
    for r in results:
        params = result_params(r, task, model)
        bound: float | None = None
        if max_n is not None:
            try:
                n_eval = theorem_length(r, task, max_n)
                low = r.lower_width(n_eval, p, **params)
                bound = r.width_bound(n_eval, p, **params) if low is None else low / factor
            except UserError:
                bound = None
        if measured is None:
            outcome, reason = "undecided", f"no growth fit: {fit_note}"
        else:
            try:
                v = judge(r, task, measured, p, params)
                outcome, reason = v.outcome, v.reason
            except UserError as exc:
                outcome, reason = "undecided", f"verdict not computed: {exc}"
            else:
                if factor != 1.0 and state_fit is not None:
                    reason = f"on the state (= {factor:g} × width): {reason}"
                if censored and r.direction != "lower" and outcome == "consistent":
                    outcome = "undecided"
                    reason = (
                        f"{censored} censored seed(s) (> max width) are left out of the fit, "
                        f"which may then understate growth; without them: {reason}"
                    )
        out.append(
            ResultVerdict(
                result_id=r.id,
                direction=r.direction,
                form=r.form,
                statement=r.statement,
                outcome=outcome,
                reason=reason,
                interpretation=interpretation(r.direction, outcome, reason),
                bound_at_max=bound,
                bound_length=max_n,
            )
        )
    return out


def combine(verdicts: Sequence[ResultVerdict]) -> tuple[str, str]:
    """A pair's outcome and the deciding verdict's reason (:data:`NO_THEOREM`, "" if none)."""
    if not verdicts:
        return NO_THEOREM, ""
    for outcome in OUTCOME_ORDER:
        hits = [v for v in verdicts if v.outcome == outcome]
        if hits:
            v = hits[0]
            return outcome, f"{v.result_id}: {v.reason} — {v.interpretation}"
    raise AssertionError("unknown outcome")  # pragma: no cover
