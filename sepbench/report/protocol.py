"""The training protocol in numbers: widths under both success rules, their sensitivity to the
accuracy threshold, and the training examples each trial saw.

Everything comes from the stored probes (:mod:`sepbench.sweep.replay`): under the study's rule
at its threshold they give the searches' answers; under the other rule, or another threshold,
they give the minimal width where they determine it and a bracket ``(low, high]`` where they
do not — the width that would decide it was never probed, or its members' outcomes are unknown
(a probe stops as soon as its own rule is decided). Nothing is extrapolated.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sepbench import rules

if TYPE_CHECKING:
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.store import TrialRecord

THRESHOLDS = (0.8, 0.9, 0.95, 0.99)
"""The thresholds of the sensitivity table (the study's own is added)."""

Cell = tuple[str, str, int]


@dataclass(frozen=True)
class ProtocolTables:
    """The report's protocol section as plain data.

    ``rules``: per (task, model, N), each seed's width under the study's rule and under the
    other one. ``thresholds`` and ``sensitivity``: per (task, model, N), each seed's width at
    each threshold under the study's rule. ``examples``: per N, the budget's examples per
    member (steps × batch), the members per probe K, and the examples the stored trials saw
    per member (median, max). Widths are texts: ``w``, ``>max`` (censored) or a bracket.
    """

    rule: str
    other: str
    members: int
    rules: list[tuple[str, str, int, str, str]]
    thresholds: list[float]
    sensitivity: list[tuple[str, str, int, list[str]]]
    examples: list[tuple[int, int, int, str]]


def trial_examples(record: TrialRecord, batch_size: int) -> int:
    """Training examples a trial's members saw each (recorded, or steps × batch size for
    trials stored before the count was recorded)."""
    details = record.outcome.get("details")
    if isinstance(details, dict) and isinstance(details.get("examples"), int):
        return int(details["examples"])
    return int(record.steps or 0) * batch_size


def protocol_tables(spec: StudySpec, records: Sequence[TrialRecord]) -> ProtocolTables:
    from sepbench.sweep.plan import plan_study
    from sepbench.sweep.replay import bracket

    plans = plan_study(spec)
    by_search: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        by_search[r.search_key].append(r)
    other = next(r for r in rules.RULES if r != spec.rule)
    t = float(spec.threshold)
    thresholds = sorted({*THRESHOLDS, t})
    rule_cells: dict[Cell, tuple[list[str], list[str]]] = {}
    sens_cells: dict[Cell, list[list[str]]] = {}
    for plan in plans:
        trials = by_search.get(plan.search_key, [])
        cell = plan.cell
        own, alt = rule_cells.setdefault(cell, ([], []))
        own.append(_text(bracket(trials, plan.grid, spec.rule, t, t), trials))
        alt.append(_text(bracket(trials, plan.grid, other, t, t), trials))
        per = sens_cells.setdefault(cell, [[] for _ in thresholds])
        for column, threshold in zip(per, thresholds, strict=True):
            column.append(_text(bracket(trials, plan.grid, spec.rule, threshold, t), trials))
    reference = min(spec.lengths)
    examples = []
    k = spec.members
    for n in spec.lengths:
        seen = [
            trial_examples(r, spec.budget.batch_size)
            for plan in plans
            if plan.config.length == n
            for r in by_search.get(plan.search_key, [])
        ]
        budget = spec.budget.steps_at(n, reference) * spec.budget.batch_size
        text = f"{_count(statistics.median(seen))} (max {_count(max(seen))})" if seen else "—"
        examples.append((n, budget, k, text))
    return ProtocolTables(
        rule=spec.rule,
        other=other,
        members=k,
        rules=[
            (c[0], c[1], c[2], " · ".join(a), " · ".join(b)) for c, (a, b) in rule_cells.items()
        ],
        thresholds=thresholds,
        sensitivity=[
            (c[0], c[1], c[2], [" · ".join(col) for col in v]) for c, v in sens_cells.items()
        ],
        examples=examples,
    )


def _text(b: Any, trials: Sequence[TrialRecord]) -> str:
    return b.text() if trials else "?"


def _count(x: float) -> str:
    """An example count, short: 12,800 → 12.8k, 2,500,000 → 2.5M."""
    if x >= 1e6:
        return f"{x / 1e6:.3g}M"
    if x >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.0f}"
