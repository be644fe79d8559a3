"""From a study spec to its searches: one per (task, model, length, seed), in a fixed order.

Searches that differ only in their seed form a *cell* (one task, model and length): with the
``ensemble`` trainer a cell's seeds probe together, and with ``start = "previous"`` a cell's
searches start at the answer of the cell at the next shorter length.
"""

from __future__ import annotations

from dataclasses import dataclass

from sepbench.sweep.search import Grid
from sepbench.sweep.spec import StudySpec
from sepbench.sweep.trial import SearchConfig, TrialSpec


@dataclass(frozen=True)
class SearchPlan:
    """One minimal-width search: its configuration (what its trials refer to) and how the
    driver runs it (its place in the study, its grid, re-probes and start)."""

    index: int
    config: SearchConfig
    grid: Grid
    reprobes: int
    previous_length: int | None = None
    """With ``start = "previous"``: the next shorter length of the study, whose cell's answers
    give this search its first width (None: start at the smallest width)."""

    @property
    def search_key(self) -> str:
        return self.config.key

    @property
    def cell(self) -> tuple[str, str, int]:
        """(task label, model label, length): the searches that differ only in their seed."""
        return (self.config.task_label, self.config.model_label, self.config.length)

    @property
    def previous_cell(self) -> tuple[str, str, int] | None:
        if self.previous_length is None:
            return None
        return (self.config.task_label, self.config.model_label, self.previous_length)

    def seed(self, attempt: int) -> int:
        """The training seed of every trial of this search with this attempt number."""
        return self.config.seed(attempt)

    def trial(self, width: int, attempt: int = 0) -> TrialSpec:
        return self.config.trial(width, attempt)

    def describe(self) -> str:
        return self.config.describe()


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
                budget = spec.budget.at(length, reference)
                for replicate in spec.seeds:
                    config = SearchConfig(
                        task=task_spec.name,
                        task_params=params,
                        family=model_spec.family,
                        model_options=dict(sorted(model_spec.options.items())),
                        length=length,
                        replicate=replicate,
                        threshold=float(spec.threshold),
                        budget=budget,
                        study_seed=spec.seed,
                        task_label=task_label,
                        model_label=model_label,
                        trainer=spec.trainer,
                        restarts=spec.restarts,
                        rule=spec.rule,
                    )
                    plans.append(SearchPlan(len(plans), config, grid, width.reprobes, previous))
    return plans
