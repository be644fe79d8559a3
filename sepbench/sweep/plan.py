"""From a study spec to its searches: one per (task, model, length, seed), in a fixed order.

Searches that differ only in their seed form a *cell* (one task, model and length): with the
``ensemble`` trainer a cell's seeds probe together, and with ``start = "previous"`` a cell's
searches start at the answer of the cell at the next shorter length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sepbench.sweep.search import Grid
from sepbench.sweep.spec import StudySpec
from sepbench.sweep.trial import TrialBudget, TrialSpec, derive_seed, digest


@dataclass(frozen=True)
class SearchPlan:
    """One minimal-width search: everything but the width, attempt and seed of its trials."""

    index: int
    task: str
    task_params: dict[str, Any]
    task_label: str
    family: str
    model_options: dict[str, Any]
    model_label: str
    length: int
    replicate: int
    grid: Grid
    reprobes: int
    budget: TrialBudget
    threshold: float
    study_seed: int
    trainer: str = "single"
    previous_length: int | None = None
    """With ``start = "previous"``: the next shorter length of the study, whose cell's answers
    give this search its first width (None: start at the smallest width)."""

    @property
    def cell(self) -> tuple[str, str, int]:
        """(task label, model label, length): the searches that differ only in their seed."""
        return (self.task_label, self.model_label, self.length)

    @property
    def previous_cell(self) -> tuple[str, str, int] | None:
        if self.previous_length is None:
            return None
        return (self.task_label, self.model_label, self.previous_length)

    def _trial(self, width: int, attempt: int, seed: int) -> TrialSpec:
        return TrialSpec(
            task=self.task,
            task_params=self.task_params,
            family=self.family,
            model_options=self.model_options,
            length=self.length,
            width=width,
            replicate=self.replicate,
            attempt=attempt,
            seed=seed,
            threshold=self.threshold,
            budget=self.budget,
            study_seed=self.study_seed,
            task_label=self.task_label,
            model_label=self.model_label,
            trainer=self.trainer,
        )

    @cached_property
    def search_key(self) -> str:
        return digest(self._trial(0, 0, 0).search_config())

    def seed(self, attempt: int) -> int:
        """The training seed of every trial of this search with this attempt number."""
        return derive_seed(self.study_seed, self.search_key, attempt)

    def trial(self, width: int, attempt: int = 0) -> TrialSpec:
        return self._trial(width, attempt, self.seed(attempt))

    def describe(self) -> str:
        return f"{self.task_label} / {self.model_label} N={self.length} seed#{self.replicate}"


def plan_study(spec: StudySpec) -> list[SearchPlan]:
    """The study's searches, ordered task, model, length, seed (the order they are run in)."""
    from sepbench import tasks

    plans: list[SearchPlan] = []
    reference = min(spec.lengths)
    for task_spec, task_label in spec.task_labels():
        params = dict(sorted(tasks.make(task_spec.name, **task_spec.params).params.items()))
        for model_spec, model_label in spec.model_labels():
            width = spec.width_for(model_spec)
            grid = Grid(width.min, width.max, width.resolution, width.per_octave)
            for length in spec.lengths:
                shorter = [n for n in spec.lengths if n < length]
                previous = max(shorter) if shorter and width.start == "previous" else None
                budget = TrialBudget(
                    steps=spec.budget.steps_at(length, reference),
                    batch_size=spec.budget.batch_size,
                    lr=float(spec.budget.lr),
                    options=dict(sorted(spec.budget.options.items())),
                )
                for replicate in spec.seeds:
                    plans.append(
                        SearchPlan(
                            index=len(plans),
                            task=task_spec.name,
                            task_params=params,
                            task_label=task_label,
                            family=model_spec.family,
                            model_options=dict(sorted(model_spec.options.items())),
                            model_label=model_label,
                            length=length,
                            replicate=replicate,
                            grid=grid,
                            reprobes=width.reprobes,
                            budget=budget,
                            threshold=float(spec.threshold),
                            study_seed=spec.seed,
                            trainer=spec.trainer,
                            previous_length=previous,
                        )
                    )
    return plans
