"""What stored probes determine under another success rule or another threshold.

A study's searches decided by its own rule and threshold. The trials keep every member's
outcome and evaluation history, so the same probes can be read again under the other rule
(``best_of`` / ``median``, :mod:`sepbench.rules`) or another accuracy threshold — as far as
they determine it: a member cut short (``stop = "decided"``: its probe's rule was already
decided) has no outcome beyond its last step, and a width the search never probed has none at
all. Such answers are brackets (:class:`~sepbench.sweep.search.Bracket`), never guesses.

**A member at another threshold t'** (the trainer's schedule, :mod:`sepbench.training.fit`,
replayed on its history; t is the threshold it trained under). Training is the same up to the
step at which it stops, so under t' the member passes at the first evaluation step s with
periodic accuracy ≥ t' and confirmation accuracy ≥ t' (at the budget's last step: the
confirmation alone). Its history records a confirmation only where the periodic accuracy
reached t (and at the last step), so:

* **passes** if some step has both accuracies recorded and ≥ t' (or the last step's
  confirmation ≥ t');
* **fails** if it ran to the end of its budget (or diverged) with no such step and no step
  whose periodic accuracy reached t' without a recorded confirmation;
* **unknown** otherwise — a step with periodic accuracy ≥ t' whose confirmation was never
  computed, or a member that stopped before the end (it reached t, or was cut short) without
  evidence of t'.

At t' = t this is the stored outcome itself. A trial under a rule at t' combines its members'
outcomes with :func:`sepbench.rules.combine`; a trial stored before members existed (one
model, its ``TrialResult`` in the details) is one member; a trial with no history (a fake
probe) is known at the study's threshold only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sepbench import rules
from sepbench.sweep.search import Bracket, Grid, determined

PASSED = "reached"
FAILED = frozenset({"budget", "diverged"})


def members_of(details: Any) -> list[dict[str, Any]]:
    """The member records stored in a trial's details: its ``members`` list, or the details
    themselves for a one-model trial (a ``TrialResult``), or none."""
    if not isinstance(details, Mapping):
        return []
    members = details.get("members")
    if isinstance(members, list):
        return [m for m in members if isinstance(m, dict)]
    return [dict(details)] if "stop" in details else []


def member_state(record: Mapping[str, Any]) -> bool | None:
    """A member's outcome under the threshold it trained with: passed, failed, or unknown
    (cut short by its probe's decision)."""
    stop = record.get("stop")
    return True if stop == PASSED else False if stop in FAILED else None


def member_passes(
    record: Mapping[str, Any], threshold: float, trained: float, max_steps: int
) -> bool | None:
    """Whether a member would have passed at ``threshold`` (module docstring), given that it
    trained with threshold ``trained`` and a budget of ``max_steps`` steps."""
    if threshold == trained:
        return member_state(record)
    evals: dict[int, float] = {}
    confirms: dict[int, float] = {}
    for h in record.get("history") or []:
        table = confirms if h.get("kind") == "confirm" else evals
        table[int(h["step"])] = float(h["sequence_accuracy"])
    if not evals and not confirms:
        return None
    unknown = False
    for step in sorted(set(evals) | set(confirms)):
        confirm = confirms.get(step)
        if step >= max_steps:  # the budget's end: the confirmation decides
            if confirm is not None and confirm >= threshold:
                return True
            return None if unknown or confirm is None else False
        if evals.get(step, -1.0) >= threshold:
            if confirm is None:
                unknown = True
            elif confirm >= threshold:
                return True
    if record.get("stop") == "diverged" and not unknown:
        return False
    return None


def trial_passes(
    reached: bool,
    details: Any,
    rule: str,
    threshold: float,
    trained: float,
    max_steps: int,
) -> bool | None:
    """A stored trial's outcome under ``rule`` at ``threshold`` (``reached``: its stored
    outcome, under the study's rule at ``trained``)."""
    members = members_of(details)
    if not members:
        return reached if threshold == trained else None
    return rules.combine(rule, (member_passes(m, threshold, trained, max_steps) for m in members))


def bracket(
    trials: Sequence[Any], grid: Grid, rule: str, threshold: float, trained: float
) -> Bracket:
    """What a search's stored trials (records with ``width``, ``attempt``, ``reached``,
    ``outcome`` and ``config``) determine about its minimal width under ``rule`` at
    ``threshold``; the latest attempt at each width counts, as in the search."""
    latest: dict[int, Any] = {}
    for t in trials:
        if t.width not in latest or t.attempt > latest[t.width].attempt:
            latest[t.width] = t
    outcomes = {
        w: trial_passes(
            t.reached,
            t.outcome.get("details"),
            rule,
            threshold,
            trained,
            int(t.config["budget"]["steps"]),
        )
        for w, t in latest.items()
    }
    return determined(outcomes, grid)
