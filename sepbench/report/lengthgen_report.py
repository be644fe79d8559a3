"""The lengthgen report: report.md, report.json, points.csv and figures of a lengthgen study.

:func:`write_lengthgen_report` reads a lengthgen store (the rules of what it says:
:mod:`sepbench.studies.lengthgen_analysis`), draws the figures (:mod:`.lengthgen_plots`) and
writes, atomically like every report (:func:`sepbench.report.writer.write_atomically`):
``report.md`` (what was run; per bin the max and median ``acc_row`` over seeds, the OOD score's
max and median, k/S seeds ≥ 0.9, the read-out; every length's numbers), ``report.json`` (the
same as data), ``points.csv`` (every stored point, :func:`sepbench.studies.grid.point_rows`) and
``figures/*.png|svg``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepbench import __version__
from sepbench.errors import UserError
from sepbench.report import plots
from sepbench.report.lengthgen_plots import (
    iterations_figure,
    models_figure,
    versus_iterations_figure,
)
from sepbench.report.markdown import _duration, _images, _table
from sepbench.report.writer import MARKER, REPORT_NAME, check_destination, slug, write_atomically
from sepbench.studies.grid import point_rows
from sepbench.studies.lengthgen_analysis import SOLVED, Curve, curves

if TYPE_CHECKING:
    from sepbench.studies.lengthgen import LengthgenSpec
    from sepbench.sweep.store import Store


def write_lengthgen_report(
    store: Store | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = plots.FORMATS,
) -> Path:
    """Write the report directory ``out_dir``; returns the path of its report.md."""
    from sepbench.studies import stored_spec
    from sepbench.sweep.store import Store

    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise UserError(f"figure formats must be among png, svg, pdf; got {list(formats)}")
    dest = Path(out_dir)
    check_destination(dest)

    def read(db: Store) -> tuple[Any, ...]:
        from sepbench.studies.lengthgen import LengthgenSpec

        spec = stored_spec(db)
        if not isinstance(spec, LengthgenSpec):
            raise UserError(f"{db.path} holds a {spec.kind!r} study, not a lengthgen study")
        walls = [r.wall_s for r in db.records()]
        return spec, curves(db, spec), point_rows(db), walls, db.spec_hash

    if isinstance(store, Store):
        spec, found, points, walls, spec_hash = read(store)
    else:
        with Store.open(store) as opened:
            spec, found, points, walls, spec_hash = read(opened)
    write_atomically(
        dest,
        lambda tmp: render_into(tmp, spec, found, points, walls, spec_hash, formats),
    )
    return dest / REPORT_NAME


def render_into(
    directory: Path,
    spec: LengthgenSpec,
    found: Sequence[Curve],
    points: tuple[tuple[str, ...], list[tuple[Any, ...]]],
    walls: Sequence[float],
    spec_hash: str,
    formats: Sequence[str],
) -> None:
    from sepbench.sweep.export import write_rows

    fig_dir = directory / "figures"
    fig_dir.mkdir()
    figures: dict[str, list[str]] = {}

    def emit(key: str, fig: Any, *parts: str) -> None:
        if fig is None:
            return
        paths = plots.save(fig, fig_dir / "__".join(slug(p) for p in parts), formats)
        figures[key] = [str(p.relative_to(directory)) for p in paths]

    task = spec.task.label or spec.task.name
    for length in spec.train_lengths:
        at = [c for c in found if c.train_length == length]
        emit(
            f"models/{length}",
            models_figure(headline(at), f"{task}: trained on ≤ {length}, best R per model"),
            "lengthgen",
            task,
            f"L{length}",
        )
        for model, size in _depth_entries(at):
            mine = [c for c in at if (c.model, c.size) == (model, size)]
            emit(
                f"iterations/{length}/{model}/{size}",
                iterations_figure(mine, f"{task}: {model} ({size}), per R_test"),
                "iterations",
                model,
                f"L{length}",
                slug(size),
            )
            tests = sorted({n for c in mine for n in c.lengths if n > length})
            chosen = [max((n for c in mine for n in c.lengths if n <= length), default=length)]
            chosen = [n for n in chosen if any(n in c.lengths for c in mine)] + tests[-2:]
            emit(
                f"versus/{length}/{model}/{size}",
                versus_iterations_figure(mine, chosen, f"{task}: {model}, acc_row vs R_test"),
                "versus_iterations",
                model,
                f"L{length}",
                slug(size),
            )
    write_rows(*points, directory / "points.csv")
    (directory / REPORT_NAME).write_text(render(spec, found, walls, figures), encoding="utf-8")
    data = {
        "study": spec.name,
        "kind": spec.kind,
        "spec_hash": spec_hash,
        "sepbench": __version__,
        "curves": [c.to_dict() for c in found],
        "figures": figures,
    }
    (directory / "report.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (directory / MARKER).write_text(f"{spec.name} {spec_hash}\n", encoding="utf-8")


def _depth_entries(found: Sequence[Curve]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for c in found:
        if c.iterations is not None and (c.model, c.size) not in out:
            out.append((c.model, c.size))
    return out


def headline(found: Sequence[Curve]) -> list[Curve]:
    """Per (model, size): its training-R curve and, for a depth model, the iteration count with
    the best max OOD score (ties: the smaller count) when that is another count."""
    out: list[Curve] = []
    entries: dict[tuple[str, str], list[Curve]] = {}
    for c in found:
        entries.setdefault((c.model, c.size), []).append(c)
    for group in entries.values():
        if group[0].iterations is None:
            out += group
            continue
        base = [c for c in group if c.iterations == group[0].runs[0].train_iterations]
        best = max(group, key=lambda c: (c.ood.maximum or 0.0, -(c.iterations or 0)))
        out += base + ([best] if best not in base else [])
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _pair(maximum: float | None, median: float | None) -> str:
    return f"{_pct(maximum)} / {_pct(median)}"


def render(
    spec: LengthgenSpec,
    found: Sequence[Curve],
    walls: Sequence[float],
    figures: Mapping[str, Sequence[str]],
) -> str:
    """report.md (module docstring)."""
    ev = spec.evaluation
    task = spec.task.label or spec.task.name
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.task.params.items())) or "defaults"
    prog = (
        "plain loss after R iterations"
        if spec.training.alpha is None
        else f"progressive loss α = {spec.training.alpha:g}"
        + (f", max_backprop = {spec.training.max_backprop}" if spec.training.max_backprop else "")
    )
    lines = [
        f"# {spec.name}: length generalisation on {task}",
        "",
        spec.description,
        "",
        f"Task `{spec.task.name}` ({params}). Trained on a length mixture [L_min, L], one length "
        f"per batch (L = {', '.join(map(str, spec.train_lengths))}); early stopping on held-out "
        f"rows of training lengths (threshold {spec.threshold:g}). Tested at N = "
        f"{', '.join(map(str, ev.lengths))}"
        + (
            f", in distribution at {', '.join(map(str, ev.in_distribution))}"
            if ev.in_distribution
            else ""
        )
        + f"; {ev.rows} rows per length, the same rows for every model (one evaluation seed). "
        f"Recurrent-depth models: {prog}; test-time iterations "
        f"{', '.join(map(str, ev.iterations)) or 'the training R only'} (plus R). "
        f"Seeds: {len(spec.seeds)}. Budget: {spec.budget.steps} steps, batch "
        f"{spec.budget.batch_size}, lr {spec.budget.lr}.",
        "",
        f"Trials: {len(walls)}; summed trial wall time {_duration(sum(walls))} (training and "
        "evaluation; the run's own wall time is printed by `sepbench run`).",
        "",
        "Scores: `acc_row` = every supervised token of a row right (BA22, MC24); each cell is "
        "**max / median over seeds** (lengthgen.md: the max says whether a length-general "
        "solution is reachable at all — DE23 report the best run —, the median what a typical "
        "run does; the gap is fragility). OOD = mean `acc_row` over the test lengths; k/S = "
        f"seeds with OOD ≥ {SOLVED:g}; read-out = largest N where the best seed has `acc_row` ≥ "
        f"{SOLVED:g} (median seed's `acc_row` there).",
        "",
    ]
    for length in spec.train_lengths:
        at = [c for c in found if c.train_length == length]
        if not at:
            continue
        lines += [f"## Trained on lengths [{at[0].train_min}, {length}]", ""]
        lines += _images(figures, f"models/{length}", f"acc_row vs test length, L={length}")
        bins = [b for b, _ in at[0].bins]
        head = ["model", "size", "R", "trained", *(b.label for b in bins), "OOD", "k/S", "read-out"]
        rows = []
        for c in at:
            trained = sum(1 for r in c.runs if r.trained)
            rows.append(
                [
                    c.model,
                    c.size,
                    "—" if c.iterations is None else c.iterations,
                    f"{trained}/{c.seeds}",
                    *(_pair(s.maximum, s.median) for _, s in c.bins),
                    _pair(c.ood.maximum, c.ood.median),
                    f"{c.solved}/{c.seeds}",
                    "—" if c.readout is None else f"{c.readout} ({_pct(c.readout_median)})",
                ]
            )
        lines += [*_table(head, rows), ""]
        lines += ["### acc_row per test length (max / median over seeds)", ""]
        lengths = sorted({n for c in at for n in c.lengths})
        rows = []
        for c in at:
            by = dict(zip(c.lengths, c.by_length, strict=True))
            rows.append(
                [
                    c.label,
                    *(_pair(by[n].maximum, by[n].median) if n in by else "—" for n in lengths),
                ]
            )
        lines += [*_table(["model", *map(str, lengths)], rows), ""]
        for model, size in _depth_entries(at):
            lines += [f"### {model} ({size}): test-time iterations", ""]
            lines += _images(figures, f"iterations/{length}/{model}/{size}", f"{model} per R")
            lines += _images(figures, f"versus/{length}/{model}/{size}", f"{model} vs R")
    lines += [
        "## Reproduce",
        "",
        f"`sepbench run --study {spec.name}` (store and this report under `runs/{spec.name}/`); "
        f"`sepbench export runs/{spec.name}/{spec.name}.sqlite --table points --csv points.csv` "
        "writes every per-length record.",
        "",
    ]
    return "\n".join(lines)
