"""What a study found: per-search answers and the width per (task, model, length) over seeds.

Everything here is computed from the stored trials and the stored spec, so a summary of a
store is the same whether the study ran in one go, was resumed, or is still running (then the
unfinished searches are reported as such).

Reporting rule. Each seed's search gives a minimal width or ``> max`` (censored: no width up
to the maximum reached the threshold; kept, never dropped). Per (task, model, length) the
reported width is the median over seeds with censored values counted as +∞ — so the median
itself is censored when at least half the seeds are — and the range is [min, max] over seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sepbench.errors import UserError
from sepbench.sweep.plan import SearchPlan, plan_study
from sepbench.sweep.search import Done, Observation, next_probe

if TYPE_CHECKING:
    from sepbench.sweep.store import Store


@dataclass(frozen=True)
class SearchResult:
    """The outcome of one search; ``status`` is ``done``, ``censored`` or ``incomplete``."""

    task: str
    model: str
    length: int
    replicate: int
    status: str
    width: int | None
    max_width: int
    probes: int
    violations: tuple[tuple[int, int], ...]
    consistent: bool
    search_key: str

    def width_text(self) -> str:
        if self.status == "censored":
            return f">{self.max_width}"
        return "?" if self.width is None else str(self.width)


@dataclass(frozen=True)
class WidthRow:
    """The width one (task, model, length) needs, over its seeds.

    ``median``/``low``/``high`` are None where censored (see ``*_censored``) or where no search
    has finished; ``censored`` counts censored seeds; ``violations`` counts seeds whose search
    saw a monotonicity violation.
    """

    task: str
    model: str
    length: int
    seeds: int
    finished: int
    median: float | None
    low: int | None
    high: int | None
    median_censored: bool
    low_censored: bool
    high_censored: bool
    censored: int
    violations: int
    max_width: int

    def _fmt(self, value: float | None, censored: bool) -> str:
        if censored:
            return f">{self.max_width}"
        if value is None:
            return "?"
        return str(int(value)) if float(value).is_integer() else f"{value:g}"

    def median_text(self) -> str:
        return self._fmt(self.median, self.median_censored)

    def range_text(self) -> str:
        if not self.finished:
            return ""
        low = self._fmt(self.low, self.low_censored)
        return f"[{low}, {self._fmt(self.high, self.high_censored)}]"


@dataclass
class StudySummary:
    """A study's results (``searches`` in plan order, ``rows`` per task, model, length)."""

    study: str
    spec_hash: str
    store_path: str
    searches: list[SearchResult]
    rows: list[WidthRow]
    trials: int
    new_trials: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(s.status != "incomplete" for s in self.searches)

    @property
    def violations(self) -> int:
        return sum(1 for s in self.searches if s.violations)

    def curve(self, task: str, model: str) -> tuple[list[int], list[float], list[bool]]:
        """(lengths, median widths, censored flags) of one curve — the input of a growth fit.

        A censored median is given as the search maximum with its flag set: a lower bound.
        """
        rows = [r for r in self.rows if r.task == task and r.model == model and r.finished]
        lengths = [r.length for r in rows]
        widths = [float(r.max_width) if r.median is None else float(r.median) for r in rows]
        return lengths, widths, [r.median_censored for r in rows]

    def points(
        self, task: str, model: str, censored: str = "drop"
    ) -> tuple[list[int], list[float]]:
        """Per-seed (length, width) pairs of one curve, for ``theory.fit_growth``.

        ``censored="drop"`` leaves censored searches out; ``"cap"`` puts them at the search
        maximum (a lower bound on the true width). Unfinished searches are always left out.
        """
        if censored not in ("drop", "cap"):
            raise UserError(f"censored must be 'drop' or 'cap', got {censored!r}")
        lengths: list[int] = []
        widths: list[float] = []
        for s in self.searches:
            if (s.task, s.model) != (task, model) or s.status == "incomplete":
                continue
            if s.status == "censored" and censored == "drop":
                continue
            lengths.append(s.length)
            widths.append(float(s.max_width if s.width is None else s.width))
        return lengths, widths

    def table(self) -> str:
        """A fixed-width text table of the rows."""
        head = ("task", "model", "N", "width", "range", "seeds", "censored", "violations")
        body = [
            (
                r.task,
                r.model,
                str(r.length),
                r.median_text(),
                r.range_text(),
                f"{r.finished}/{r.seeds}",
                str(r.censored),
                str(r.violations),
            )
            for r in self.rows
        ]
        widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in (head, *body)
        ]
        return "\n".join(lines)


def search_results(
    plans: Sequence[SearchPlan], observations: dict[str, list[Observation]]
) -> list[SearchResult]:
    """Replay the search rule on each plan's stored trials."""
    out = []
    for plan in plans:
        obs = observations.get(plan.search_key, [])
        step = next_probe(obs, plan.grid, plan.reprobes)
        if isinstance(step, Done):
            status = "censored" if step.censored else "done"
            width, probes, viol, ok = step.width, step.probes, step.violations, step.consistent
        else:
            from sepbench.sweep.search import violations

            status, width, probes, viol, ok = "incomplete", None, len(obs), violations(obs), True
        out.append(
            SearchResult(
                task=plan.config.task_label,
                model=plan.config.model_label,
                length=plan.config.length,
                replicate=plan.config.replicate,
                status=status,
                width=width,
                max_width=plan.grid.width(plan.grid.k_max),
                probes=probes,
                violations=viol,
                consistent=ok,
                search_key=plan.search_key,
            )
        )
    return out


def width_rows(results: Sequence[SearchResult]) -> list[WidthRow]:
    """Median and range over seeds per (task, model, length), in first-seen order."""
    groups: dict[tuple[str, str, int], list[SearchResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.model, r.length), []).append(r)
    rows = []
    for (task, model, length), members in groups.items():
        finished = [m for m in members if m.status != "incomplete"]
        values = sorted(
            math.inf if m.status == "censored" else float(m.width or 0) for m in finished
        )
        median = statistics.median(values) if values else None
        low = values[0] if values else None
        high = values[-1] if values else None
        rows.append(
            WidthRow(
                task=task,
                model=model,
                length=length,
                seeds=len(members),
                finished=len(finished),
                median=None if median is None or math.isinf(median) else median,
                low=None if low is None or math.isinf(low) else int(low),
                high=None if high is None or math.isinf(high) else int(high),
                median_censored=median is not None and math.isinf(median),
                low_censored=low is not None and math.isinf(low),
                high_censored=high is not None and math.isinf(high),
                censored=sum(m.status == "censored" for m in finished),
                violations=sum(bool(m.violations) for m in members),
                max_width=max(m.max_width for m in members),
            )
        )
    return rows


def summarize(store: Store, new_trials: int = 0, wall_s: float = 0.0) -> StudySummary:
    """The summary of a store, from its own spec and trials."""
    plans = plan_study(store.spec())
    observations = store.observations()
    results = search_results(plans, observations)
    orphans = set(observations) - {p.search_key for p in plans}
    return StudySummary(
        study=store.study,
        spec_hash=store.spec_hash,
        store_path=str(store.path),
        searches=results,
        rows=width_rows(results),
        trials=store.count(),
        new_trials=new_trials,
        wall_s=wall_s,
        extra={"orphan_trials": sum(len(observations[k]) for k in orphans)} if orphans else {},
    )
