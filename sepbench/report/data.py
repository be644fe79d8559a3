"""What a report shows, as plain data: :class:`ReportData` and one :class:`PairData` per
(task, model). :func:`sepbench.report.collect` builds it from a results store;
:mod:`~sepbench.report.plots` draws it and :mod:`~sepbench.report.markdown` writes it out.

Conventions (stated in every report):

* **Model classes.** A model family is set beside the theorems of its theory class (the
  family cards' rule, :mod:`sepbench.models.cards`; each trial records its model's class).
  A family the testbed does not know has no class and no theorem.
* **Width vs state.** The search varies the model's ``width`` (hidden units; the Transformer's
  d_model). RNN theorems bound m, the *numbers in the state*: ``state = s·width`` with s the
  model's state numbers per unit of width (read from the trials' recorded state sizes).
  Plots stay in the searched width: a lower bound on m is drawn as m / s. Verdicts on the
  classes of :data:`sepbench.theory.STATE_CLASSES` are computed on the state (width × s), as
  :func:`sepbench.theory.verdict` expects. Upper bounds (constructions) are already widths.
* **Precision.** Lower bounds on state *bits* become widths with p bits per number, default
  :data:`DEFAULT_PRECISION_BITS` = 32: a float32 has 2^32 bit patterns, and the bounds count
  distinguishable states, so all 32 bits count (24 mantissa bits would undercount sign and
  exponent and make every bound look stronger than it is). The same p evaluates upper bounds
  (it matters only for W24-RAG) and is the default of :func:`sepbench.theory.verdict`. A
  model run at bounded precision (``state_bits`` / ``precision_bits``, docs/precision.md) is
  judged at its own p, read per pair from its trials' facts (:attr:`PairData.precision_bits`);
  the default is for floats only.
* **Grid answers and censored widths.** A search's answer is an interval: the minimal width
  lies between the grid width below the answer (which failed) and the answer; a seed whose
  search found no width up to the maximum is right-censored, (max, ∞). Growth fits take these
  intervals (:mod:`~sepbench.report.fits`); censored seeds are drawn at the maximum with a
  distinct marker, counted, and enter the fit.
* **Success and vacuity.** A trained width "worked" at average accuracy ≥ the study's
  threshold on the task's samples (:attr:`ReportData.success`), so worst-case lower bounds
  are checked in their error-allowed forms or reported *not applicable*; a lower bound below
  the grid's smallest width at every N is *vacuous* (:mod:`~sepbench.report.verdicts`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sepbench import theory
from sepbench.report.bounds import BoundCurve
from sepbench.report.constructions import ConstructionCurve
from sepbench.report.facts import PairFacts
from sepbench.report.infos import ModelInfo, TaskInfo
from sepbench.report.protocol import ProtocolTables
from sepbench.report.verdicts import ResultVerdict

if TYPE_CHECKING:
    from sepbench.report.bits import BitsAxis
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.store import TrialRecord
    from sepbench.sweep.summary import SearchResult, StudySummary, WidthRow

DEFAULT_PRECISION_BITS = 32
"""Bits per number used to turn state-bit lower bounds into widths (float32)."""


@dataclass
class PairData:
    """Everything about one (task, model) pair."""

    task: TaskInfo
    model: ModelInfo
    facts: PairFacts
    rows: list[WidthRow]
    searches: list[SearchResult]
    trials: list[TrialRecord]
    fit: theory.GrowthFit | None
    fit_note: str
    bounds: list[BoundCurve]
    verdicts: list[ResultVerdict]
    outcome: str
    reason: str
    constructions: list[ConstructionCurve]
    length_eval: list[tuple[int, int, list[tuple[int, float]]]] = field(default_factory=list)
    """(trained N, width, [(eval N, sequence accuracy), ...]) per trial that has them."""
    precision_bits: int = DEFAULT_PRECISION_BITS
    """p of this pair's bounds and verdicts: the model's own bits per number where its study
    bounds them (``state_bits`` / ``precision_bits``), else the report's default."""

    @property
    def bounded(self) -> bool:
        """Whether the model's numbers have a bounded precision (its own p, not a float's)."""
        return self.facts.number_bits is not None

    @property
    def model_class(self) -> str | None:
        return self.facts.model_class

    @property
    def state_factor(self) -> float:
        return self.facts.state_factor

    @property
    def state_note(self) -> str:
        return self.facts.state_note

    @property
    def key(self) -> tuple[str, str]:
        return (self.task.label, self.model.label)

    def seed_points(self) -> tuple[list[int], list[float], list[int], list[float]]:
        """(N, width) of finished seeds, then (N, max width) of censored ones."""
        ok = [s for s in self.searches if s.status == "done" and s.width is not None]
        cens = [s for s in self.searches if s.status == "censored"]
        return (
            [s.length for s in ok],
            [float(s.width or 0) for s in ok],
            [s.length for s in cens],
            [float(s.max_width) for s in cens],
        )

    @property
    def censored(self) -> list[SearchResult]:
        return [s for s in self.searches if s.status == "censored"]

    @property
    def violations(self) -> list[SearchResult]:
        return [s for s in self.searches if s.violations]

    def measured_law(self) -> str:
        if self.fit is None:
            return "—"
        return f"{self.fit.best}: {self.fit.laws[self.fit.best].formula()}"

    def alpha_text(self) -> str:
        f = self.fit
        if f is None or f.alpha is None:
            return "—"
        if f.alpha_ci is None:
            return f"{f.alpha:.2f}"
        return f"{f.alpha:.2f} [{f.alpha_ci[0]:.2f}, {f.alpha_ci[1]:.2f}]"


@dataclass
class ReportData:
    """A whole report's content."""

    study: str
    spec_hash: str
    store_path: str
    created: str | None
    generated: str
    spec: StudySpec
    summary: StudySummary
    tasks: list[TaskInfo]
    models: list[ModelInfo]
    pairs: list[PairData]
    records: list[TrialRecord]
    precision_bits: int
    constructions: list[ConstructionCurve]
    success: theory.Success
    """What a width "working" meant for the verdicts (``Success.average(threshold)``)."""
    notes: list[str] = field(default_factory=list)
    protocol: ProtocolTables | None = None
    """Both success rules, the threshold sensitivity and the examples seen
    (:mod:`sepbench.report.protocol`)."""
    bits_axes: list[BitsAxis] = field(default_factory=list)
    """Per task with a bounded-precision pair, its state-bits axis (:mod:`.bits`); empty for
    an unbounded study."""

    def bits_axis_for(self, task_label: str) -> BitsAxis | None:
        return next((a for a in self.bits_axes if a.task.label == task_label), None)

    def pairs_for(self, task_label: str) -> list[PairData]:
        return [p for p in self.pairs if p.task.label == task_label]

    @property
    def trial_wall_s(self) -> float:
        return float(sum(r.wall_s for r in self.records))

    def elapsed_s(self) -> float | None:
        """Seconds from the first to the last stored trial's finish time."""
        stamps = []
        for r in self.records:
            try:
                stamps.append(_dt.datetime.fromisoformat(r.finished_at))
            except ValueError:
                continue
        if len(stamps) < 2:
            return None
        return (max(stamps) - min(stamps)).total_seconds()
