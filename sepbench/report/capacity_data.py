"""A capacity study's store read into plain records: per trial, per family, per mitigation.

:func:`collect_capacity` reads the stored trials of a ``capacity`` study and applies the
definitions of :mod:`sepbench.studies.capacity_analysis` (the one owner of T_recall,
forgetting, T_forget and the law comparison); nothing here re-derives them. The model facts
(state size, parameters) are the ones each trial recorded.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sepbench.errors import UserError
from sepbench.studies import stored_spec
from sepbench.studies.capacity import CapacitySpec
from sepbench.studies.capacity_analysis import (
    Curves,
    Forgetting,
    LawComparison,
    Recall,
    capacity_points,
    compare_laws,
    curves,
    forgetting,
    min_points,
    t_forget,
    t_recall,
)
from sepbench.studies.grid import plan_grid, trial_columns, trial_points

if TYPE_CHECKING:
    from sepbench.sweep.store import Store

RECALL_FORMS = ("constant", "linear", "power", "exponential")
"""capacity.md: T_recall vs S, SM24's exponential against power and linear (constant: the
null of no growth)."""
FORGET_FORMS = ("constant", "linear", "power")
"""capacity.md: T_forget vs S, SM24's linear against power (constant: no growth)."""


@dataclass
class TrialData:
    """One stored capacity trial and what the definitions make of it."""

    model: str
    family: str
    width: int
    size: str
    state_size: int
    parameters: int | None
    train_length: int
    replicate: int
    trained: bool
    train_accuracy: float | None
    steps: int | None
    examples_seen: int | None
    wall_s: float
    curves: Curves
    traces: dict[str, Any]
    inference: dict[str, Any]
    recall: dict[float, Recall] = field(default_factory=dict)
    """T_recall(θ) of the unmitigated model, per θ."""
    forgetting: Forgetting | None = None


@dataclass(frozen=True)
class MitigationRow:
    """One mitigation against the unmitigated model on the same trials and rows (paired)."""

    name: str
    description: str
    trials: int
    rows: int
    short_none: float
    short: float
    """Mean depth-averaged accuracy over grid L ≤ T_train (the short-context cost)."""
    long_none: float
    long: float
    """Mean depth-averaged accuracy over grid L > T_train."""
    recent_none: float
    recent: float
    """Mean acc_recent over grid L > T_train (the collapse probe)."""
    recall_none: float | None
    recall: float | None
    """Median T_recall(θ) over the trials (on the same rows; below-grid counts as 0)."""
    better: int
    worse: int
    """Trials whose T_recall(θ) rose / fell under the mitigation."""


@dataclass
class FamilyData:
    """One model entry (label) of the study: its trials and the two laws."""

    label: str
    family: str
    trials: list[TrialData]
    capacity: dict[float, list[tuple[int, int, Recall]]]
    """Per θ: (S, replicate, max over T_train of T_recall(θ))."""
    recall_laws: dict[float, LawComparison | None]
    recall_notes: dict[float, str]
    forget: dict[int, int | None]
    """T_forget(S) per state size (None: above the largest T_train)."""
    forget_law: LawComparison | None
    forget_note: str

    @property
    def states(self) -> list[int]:
        return sorted({t.state_size for t in self.trials})


@dataclass
class CapacityData:
    study: str
    spec: CapacitySpec
    spec_hash: str
    store_path: str
    generated: str
    planned: int
    trials: list[TrialData]
    families: list[FamilyData]
    mitigations: list[MitigationRow]

    @property
    def thresholds(self) -> list[float]:
        return list(self.spec.analysis.thresholds)

    @property
    def theta(self) -> float:
        return self.spec.analysis.thresholds[0]


def collect_capacity(store: Store) -> CapacityData:
    """The store of a capacity study as :class:`CapacityData`."""
    spec = stored_spec(store)
    if not isinstance(spec, CapacitySpec):
        raise UserError(f"{store.path} holds a '{spec.kind}' study, not a capacity study")
    analysis = spec.analysis
    trials = []
    for record in store.records():
        cols = trial_columns(record)
        details = record.outcome.get("details") or {}
        c = curves(trial_points(record))
        if "none" not in c.grid:
            continue
        t = TrialData(
            model=record.model,
            family=str(cols["family"]),
            width=record.width,
            size=str(cols["size"]),
            state_size=int(cols["state_size"] or 0),
            parameters=cols["parameters"],
            train_length=record.length,
            replicate=record.replicate,
            trained=record.reached,
            train_accuracy=record.accuracy,
            steps=record.steps,
            examples_seen=details.get("examples_seen"),
            wall_s=record.wall_s,
            curves=c,
            traces=details.get("traces") or {},
            inference=details.get("inference") or {},
        )
        averaged = c.averaged("none")
        t.recall = {theta: t_recall(averaged, theta) for theta in analysis.thresholds}
        recent = c.recent_accuracy("none")
        if recent:
            t.forgetting = forgetting(
                recent, t.train_length, analysis.thresholds[0], analysis.forget_span
            )
        trials.append(t)
    trials.sort(key=lambda t: (t.model, t.state_size, t.train_length, t.replicate))
    families = [_family(label, trials, spec) for label in _labels(spec, trials)]
    return CapacityData(
        study=store.study,
        spec=spec,
        spec_hash=store.spec_hash,
        store_path=str(store.path),
        generated=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        planned=len(plan_grid(spec)),
        trials=trials,
        families=families,
        mitigations=mitigation_rows(trials, spec),
    )


def _labels(spec: CapacitySpec, trials: Sequence[TrialData]) -> list[str]:
    present = {t.model for t in trials}
    return [label for _, label in spec.model_labels() if label in present]


def _quantum(spec: CapacitySpec) -> str:
    lengths = spec.evaluation.lengths
    return f"T_recall takes only the {len(lengths)} grid values {lengths[0]}…{lengths[-1]}"


def _family(label: str, all_trials: Sequence[TrialData], spec: CapacitySpec) -> FamilyData:
    trials = [t for t in all_trials if t.model == label]
    capacity: dict[float, list[tuple[int, int, Recall]]] = {}
    laws: dict[float, LawComparison | None] = {}
    notes: dict[float, str] = {}
    for theta in spec.analysis.thresholds:
        points = capacity_points((t.state_size, t.replicate, t.recall[theta]) for t in trials)
        capacity[theta] = points
        laws[theta], notes[theta] = _fit(
            [(s, r.value) for s, _, r in points if r.value is not None and r.censored is None],
            len(points),
            RECALL_FORMS,
            _quantum(spec),
        )
    theta = spec.analysis.thresholds[0]
    forget: dict[int, int | None] = {}
    for state in sorted({t.state_size for t in trials}):
        scores: dict[int, list[float]] = {}
        for t in trials:
            if t.state_size == state and t.forgetting is not None:
                scores.setdefault(t.train_length, []).append(t.forgetting.score)
        if scores:
            forget[state] = t_forget(scores, theta)
    quantum = f"T_forget takes only the training lengths {sorted(spec.train_lengths)}"
    forget_law, forget_note = _fit(
        [(s, v) for s, v in forget.items() if v is not None], len(forget), FORGET_FORMS, quantum
    )
    family = trials[0].family if trials else ""
    return FamilyData(label, family, trials, capacity, laws, notes, forget, forget_law, forget_note)


def _fit(
    points: list[tuple[int, int]], total: int, forms: Sequence[str], quantum: str
) -> tuple[LawComparison | None, str]:
    """A law comparison of the uncensored points, or None and the reason in words."""
    left = total - len(points)
    dropped = f"; {left} censored point(s) left out" if left else ""
    states = {s for s, _ in points}
    need = min_points(forms)
    if len(states) < 3 or len(points) < need:
        return None, (
            f"no fit: {len(points)} uncensored point(s) at {len(states)} state size(s) (at least "
            f"3 sizes and {need} points are needed to score every form by AICc){dropped}"
        )
    law = compare_laws([s for s, _ in points], [v for _, v in points], forms, quantum)
    return law, law.decision + dropped


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else math.nan


def mitigation_rows(trials: Sequence[TrialData], spec: CapacitySpec) -> list[MitigationRow]:
    """Each mitigation against the unmitigated model, paired on the same trials and rows."""
    theta = spec.analysis.thresholds[0]
    k = spec.evaluation.mitigation_rows
    out = []
    for m in spec.evaluation.mitigations:
        sets: dict[str, list[float]] = {
            key: [] for key in ("sn", "s", "ln", "l", "rn", "r", "tn", "t")
        }
        better = worse = used = 0
        for t in trials:
            if m.name not in t.curves.grid:
                continue
            used += 1
            base, mit = t.curves.averaged("none", k), t.curves.averaged(m.name, k)
            for n, acc in base.items():
                (sets["sn"] if n <= t.train_length else sets["ln"]).append(acc)
                (sets["s"] if n <= t.train_length else sets["l"]).append(mit.get(n, math.nan))
            rb, rm = t.curves.recent_accuracy("none", k), t.curves.recent_accuracy(m.name, k)
            sets["rn"] += [a for n, a in rb.items() if n > t.train_length]
            sets["r"] += [a for n, a in rm.items() if n > t.train_length]
            before, after = t_recall(base, theta), t_recall(mit, theta)
            sets["tn"].append(float(before.value or 0))
            sets["t"].append(float(after.value or 0))
            better += (after.value or 0) > (before.value or 0)
            worse += (after.value or 0) < (before.value or 0)
        if not used:
            continue
        out.append(
            MitigationRow(
                name=m.name,
                description=m.describe(),
                trials=used,
                rows=k,
                short_none=_mean(sets["sn"]),
                short=_mean(sets["s"]),
                long_none=_mean(sets["ln"]),
                long=_mean(sets["l"]),
                recent_none=_mean(sets["rn"]),
                recent=_mean(sets["r"]),
                recall_none=statistics.median(sets["tn"]) if sets["tn"] else None,
                recall=statistics.median(sets["t"]) if sets["t"] else None,
                better=better,
                worse=worse,
            )
        )
    return out
