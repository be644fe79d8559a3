"""Collecting a report: a results store in, :class:`~sepbench.report.data.ReportData` out.

:func:`collect` reads one open :class:`~sepbench.sweep.Store` — its spec, its trials and their
summary — and assembles each (task, model) pair from the concerns of the other modules: the
model's facts (:mod:`.facts`), growth fits (:mod:`.fits`), bound curves (:mod:`.bounds`),
verdicts (:mod:`.verdicts`), construction curves (:mod:`.constructions`) and length
generalisation (:mod:`.lengths`). Finding the store (a file, or a study directory holding
one) is the caller's: ``sepbench report`` resolves paths (:mod:`sepbench.cli.report`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sepbench import theory
from sepbench.errors import UserError
from sepbench.report.bits import bits_axis
from sepbench.report.bounds import BoundCurve, anchor_form_only, bound_curves, merge_bounds
from sepbench.report.constructions import ConstructionCurve, construction_curves
from sepbench.report.data import DEFAULT_PRECISION_BITS, PairData, ReportData
from sepbench.report.facts import CARDS, PairFacts, pair_facts
from sepbench.report.fits import answers, growth_fits
from sepbench.report.infos import ModelInfo, TaskInfo
from sepbench.report.lengths import length_eval
from sepbench.report.protocol import protocol_tables
from sepbench.report.verdicts import NO_THEOREM, Measurement, combine, verdicts

if TYPE_CHECKING:
    from sepbench.sweep.search import Grid
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.store import Store, TrialRecord
    from sepbench.sweep.summary import StudySummary


def collect(
    store: Store,
    constructions: Any = None,
    *,
    precision_bits: int = DEFAULT_PRECISION_BITS,
    n_boot: int | None = None,
) -> ReportData:
    """Gather a report's content from an open results store.

    ``constructions``: construction widths to draw (see
    :func:`~sepbench.report.constructions.construction_curves`); ``precision_bits``: p used to
    turn state-bit lower bounds into widths for models of unbounded precision (floats) — a
    model run with ``state_bits`` / ``precision_bits`` is judged at its own p
    (:func:`pair_precision`); ``n_boot=0`` fits without the exponent's interval
    (faster; any other value is ignored — the name survives from the bootstrap interval that
    the profile-likelihood interval replaced).

    Trained widths are judged with the study's success criterion,
    ``theory.Success.average(spec.threshold)`` (accuracy on held-out samples of the task's
    sampler, not exact answers on every input), and each pair's grid minimum as the smallest
    width a search could report (see :mod:`~sepbench.report.verdicts`).
    """
    from sepbench.sweep.store import Store
    from sepbench.sweep.summary import summarize

    if not isinstance(store, Store):
        raise UserError(
            f"collect needs an open results store (sepbench.sweep.Store), got "
            f"{type(store).__name__}; open a store file with Store.open(path)"
        )
    if (
        isinstance(precision_bits, bool)
        or not isinstance(precision_bits, int)
        or not (1 <= precision_bits <= 128)
    ):
        raise UserError(
            f"precision must be an integer number of bits in 1..128, got {precision_bits!r}"
        )
    curves = construction_curves(constructions)
    spec = store.spec()
    success = theory.Success.average(spec.threshold)
    summary = summarize(store)
    records = store.records()
    task_infos, model_infos = _infos(spec)
    pairs = [
        _pair(task, model, summary, records, curves, precision_bits, n_boot, success)
        for task in task_infos
        for model in model_infos
    ]
    return ReportData(
        study=summary.study,
        spec_hash=summary.spec_hash,
        store_path=summary.store_path,
        created=store.meta.get("created"),
        generated=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        spec=spec,
        summary=summary,
        tasks=task_infos,
        models=model_infos,
        pairs=pairs,
        records=records,
        precision_bits=precision_bits,
        constructions=curves,
        success=success,
        notes=_fact_notes(pairs),
        protocol=protocol_tables(spec, records),
        bits_axes=[a for t in task_infos if (a := bits_axis(t, pairs, success)) is not None],
    )


def _infos(spec: StudySpec) -> tuple[list[TaskInfo], list[ModelInfo]]:
    from sepbench import tasks
    from sepbench.sweep.plan import plan_study

    task_infos = []
    for t, label in spec.task_labels():
        try:
            params = dict(tasks.make(t.name, **t.params).params)
        except ValueError:
            params = dict(t.params)
        task_infos.append(TaskInfo(label, t.name, params))
    grids = {plan.config.model_label: plan.grid for plan in plan_study(spec)}
    model_infos = []
    for i, (m, label) in enumerate(spec.model_labels()):
        grid = grids[label]
        model_infos.append(
            ModelInfo(label, m.family, dict(m.options), i, tuple(grid.widths()), _grid_text(grid))
        )
    return task_infos, model_infos


def _grid_text(grid: Grid) -> str:
    """The searched widths in words: ``1..64 step 1``, or a geometric grid with its widths."""
    if not grid.per_octave:
        return f"{grid.minimum}..{grid.maximum} step {grid.resolution}"
    widths = ", ".join(map(str, grid.widths()))
    return f"{grid.minimum}..{grid.maximum}, geometric, {grid.per_octave} per octave ({widths})"


def _fact_notes(pairs: Sequence[PairData]) -> list[str]:
    notes = [problem for p in pairs for problem in p.facts.problems]
    from_cards = [p for p in pairs if p.facts.source == CARDS and p.trials]
    if from_cards:
        notes.append(
            f"The trials of {len(from_cards)} of {len(pairs)} (task, model) pair(s) do not record "
            "their model's facts (a store written before sepbench recorded them, or a probe "
            "that builds no model): their theory class and state numbers come from the family "
            "cards (sepbench.models.cards)."
        )
    return notes


def _pair(
    task: TaskInfo,
    model: ModelInfo,
    summary: StudySummary,
    records: Sequence[TrialRecord],
    curves: Sequence[ConstructionCurve],
    p: int,
    n_boot: int | None,
    success: theory.Success,
) -> PairData:
    rows = [r for r in summary.rows if r.task == task.label and r.model == model.label]
    searches = [s for s in summary.searches if s.task == task.label and s.model == model.label]
    # by search key, not label: two labels of one configuration share their searches' trials
    keys = {s.search_key for s in searches}
    trials = [t for t in records if t.search_key in keys]
    facts = pair_facts(task, model, trials)
    cls, factor, note = facts.model_class, facts.state_factor, facts.state_note
    p = pair_precision(facts, p)
    fit, state_fit, fit_note = growth_fits(searches, model.grid, factor, n_boot)
    results: list[theory.Result] = []
    reason = ""
    if cls is None:
        reason = f"model family {model.family!r} has no theory model class"
    elif task.name is None or task.name not in theory.tasks_covered():
        reason = f"no result in the catalogue concerns task {task.name or task.label!r}"
    else:
        results = theory.for_task(task.name, cls)
        if not results:
            reason = f"no result in the catalogue for {task.name} with {cls}"
    lengths = [r.length for r in rows] or [s.length for s in searches]
    bounds: list[BoundCurve] = []
    notes = []
    for r in results:
        got, problem = bound_curves(r, task, model, factor, note, lengths, p)
        bounds += got
        if problem:
            notes.append(problem)
    bounds = merge_bounds(anchor_form_only(bounds, rows))
    measurement = Measurement(float(model.grid[0]), success)
    judged = verdicts(
        results,
        task,
        model,
        factor,
        fit,
        state_fit,
        fit_note,
        p,
        measurement,
        answers(searches, model.grid, factor),
    )
    outcome, combined = combine(judged)
    if outcome == NO_THEOREM:
        combined = reason
    if notes:
        fit_note = "; ".join([fit_note, *notes]) if fit_note else "; ".join(notes)
    mine = [c for c in curves if c.task == task.name and cls is not None and cls in c.model_classes]
    return PairData(
        task=task,
        model=model,
        facts=facts,
        rows=rows,
        searches=searches,
        trials=trials,
        fit=fit,
        fit_note=fit_note,
        bounds=bounds,
        verdicts=judged,
        outcome=outcome,
        reason=combined,
        constructions=mine,
        length_eval=length_eval(trials),
        precision_bits=p,
    )


def pair_precision(facts: PairFacts, default: int) -> int:
    """The p a pair's bounds and verdicts use: its model's own bits per number (the study's
    ``state_bits`` / ``precision_bits`` option, read from the trials' facts), else — for an
    unbounded model, whose numbers are floats — the report's ``default``."""
    return default if facts.number_bits is None else int(facts.number_bits)
