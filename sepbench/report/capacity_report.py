"""The capacity report: report.md, report.json, points.csv and figures of a capacity study.

:func:`write_capacity_report` reads a capacity store (:func:`collect_capacity`), draws the
figures (:mod:`sepbench.report.capacity_plots`) and writes, atomically like the width report
(:func:`sepbench.report.writer.write_atomically`): ``report.md`` (what was run, the capacity
and forgetting tables, the law comparisons and what they decide, the collapse diagnosis, the
mitigations against none with numbers, SM24 beside our scale), ``report.json`` (the same
numbers as data), ``points.csv`` (every stored point, :func:`sepbench.studies.grid.point_rows`)
and ``figures/*.png|svg``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepbench import __version__
from sepbench.errors import UserError
from sepbench.report import plots
from sepbench.report.capacity_data import CapacityData, FamilyData, collect_capacity
from sepbench.report.capacity_plots import (
    capacity_figure,
    collapse_figure,
    forget_figure,
    heatmap_figure,
    mitigation_figure,
)
from sepbench.report.markdown import _duration, _images, _table
from sepbench.report.writer import MARKER, REPORT_NAME, check_destination, slug, write_atomically
from sepbench.studies.grid import point_rows

if TYPE_CHECKING:
    from sepbench.sweep.store import Store

SM24_SCALE = (
    "SM24 (Mamba-2 130M–1.3B, state x = layers·(d_inner·d_state + conv cache) ≈ 4.85M floats at "
    "130M, 12.9M at 370M; trained on RedPajama at 4K–64K tokens): T_forget = 5.172·x − 4.469 "
    "(K tokens, x in millions; linear), T_recall of a 5-digit passkey exponential in x (a fit "
    "b·(a^x − 1) + c; its constants are not re-checked here), collapse with a few exploding "
    "state channels past the training length, and three training-free mitigations"
)


def write_capacity_report(
    store: Store | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = plots.FORMATS,
) -> Path:
    """Write the report directory ``out_dir``; returns the path of its report.md."""
    from sepbench.sweep.store import Store

    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise UserError(f"figure formats must be among png, svg, pdf; got {list(formats)}")
    dest = Path(out_dir)
    check_destination(dest)
    if isinstance(store, Store):
        data, points = collect_capacity(store), point_rows(store)
    else:
        with Store.open(store) as opened:
            data, points = collect_capacity(opened), point_rows(opened)
    write_atomically(dest, lambda tmp: render_into(tmp, data, points, formats))
    return dest / REPORT_NAME


def render_into(
    directory: Path,
    data: CapacityData,
    points: tuple[tuple[str, ...], list[tuple[Any, ...]]],
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

    for fam in data.families:
        emit(f"capacity/{fam.label}", capacity_figure(fam, data), "capacity", fam.label)
        for state in fam.states:
            emit(
                f"heatmap/{fam.label}/{state}",
                heatmap_figure(fam, state),
                "heatmap",
                fam.label,
                f"S{state}",
            )
        emit(f"collapse/{fam.label}", collapse_figure(fam), "collapse", fam.label)
    emit("forget", forget_figure(data), "forget")
    emit("mitigations", mitigation_figure(data), "mitigations")
    write_rows(*points, directory / "points.csv")
    (directory / REPORT_NAME).write_text(render(data, figures), encoding="utf-8")
    (directory / "report.json").write_text(
        json.dumps(report_json(data, figures), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (directory / MARKER).write_text(f"{data.study} {data.spec_hash}\n", encoding="utf-8")


# ---------------------------------------------------------------------------------- markdown
def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


def render(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> str:
    spec = data.spec
    ev = spec.evaluation
    lines = [f"# State capacity report: {data.study}", ""]
    if spec.description:
        lines += [spec.description, ""]
    lines += _study(data)
    lines += ["## Capacity against state size", ""]
    lines += [
        f"T_recall(θ) = the largest context length L of the grid ({ev.lengths[0]}…"
        f"{ev.lengths[-1]}) at which the depth-averaged exact-match accuracy is ≥ θ there and at "
        "every smaller L (capacity.md); a model's capacity at a state size is the best over its "
        "training lengths, per seed. '—': already the smallest L fails; '≥ L': every L passes.",
        "",
    ]
    for fam in data.families:
        lines += _family_section(data, fam, figures)
    lines += _forget_section(data, figures)
    lines += _collapse_section(data, figures)
    lines += _mitigation_section(data, figures)
    lines += _heatmaps(data, figures)
    lines += ["## SM24 at its scale, and ours", "", SM24_SCALE + ".", ""]
    lines += [
        f"Here: states of {min(t.state_size for t in data.trials) if data.trials else 0}…"
        f"{max((t.state_size for t in data.trials), default=0)} floats (4–6 orders of magnitude "
        "smaller), training lengths "
        f"{', '.join(map(str, spec.train_lengths))}, contexts to {ev.lengths[-1]} tokens. "
        "Only the *forms* carry over, not the constants; what this study's data can decide "
        "about them is stated beside each fit above.",
        "",
        f"*sepbench {__version__}; generated {data.generated}; store `{data.store_path}` "
        f"(spec {data.spec_hash[:12]}).*",
        "",
    ]
    return "\n".join(lines)


def _study(data: CapacityData) -> list[str]:
    spec = data.spec
    ev = spec.evaluation
    steps = [t.steps for t in data.trials if t.steps is not None]
    seen = [t.examples_seen for t in data.trials if t.examples_seen is not None]
    wall = sum(t.wall_s for t in data.trials)
    models = []
    for m, label in spec.model_labels():
        sizes = ", ".join(
            "/".join(f"{k} {v}" for k, v in s.items()) + f" (S={m.state_size(s)})" for s in m.sizes
        )
        opts = ", ".join(f"{k}={v}" for k, v in m.options.items()) or "defaults"
        models.append(f"`{label}` ({m.family}, {opts}): {sizes}")
    lines = [
        "## The study",
        "",
        f"- task: `{spec.task.name}` {dict(spec.task.params)}; trained at depth `uniform`",
        f"- models: {'; '.join(models)}",
        f"- training lengths T_train: {', '.join(map(str, spec.train_lengths))}; seeds "
        f"{list(spec.seeds)}; training stops at confirmed accuracy ≥ {spec.threshold:g} or after "
        f"{spec.budget.steps} steps (batch {spec.budget.batch_size}, lr {spec.budget.lr:g}, "
        f"scale {spec.budget.scale})",
        f"- examples seen per trial (steps × batch): median "
        f"{_median(seen)}, range {min(seen, default=0)}…{max(seen, default=0)} "
        f"(steps {min(steps, default=0)}…{max(steps, default=0)})",
        f"- grid: L = {', '.join(map(str, ev.lengths))} × {len(ev.depths)} depths × {ev.rows} "
        f"rows; {ev.recent_rows} recent-key rows per L; mitigations on the first "
        f"{ev.mitigation_rows} rows of every point; state traces of {ev.trace_rows} rows of "
        f"{ev.lengths[-1]} tokens",
        f"- trials: {len(data.trials)} of {data.planned} planned; total trial time "
        f"{_duration(wall)} (sum over trials, CPU-bound, one thread each)",
        "- contexts are common random numbers: every model, seed and mitigation reads the same "
        "rows; exact match = greedy decoding of the digits (one teacher-forced pass decides it)",
        "",
    ]
    if len(data.trials) < data.planned:
        lines += [
            f"**Incomplete:** {data.planned - len(data.trials)} trials not yet run "
            "(run the study again to resume).",
            "",
        ]
    return lines


def _median(values: Sequence[int]) -> str:
    if not values:
        return "—"
    s = sorted(values)
    return f"{s[len(s) // 2]}"


def _family_section(
    data: CapacityData, fam: FamilyData, figures: Mapping[str, Sequence[str]]
) -> list[str]:
    thetas = data.thresholds
    head = ["S", "T_train", "seeds reached", *(f"T_recall({t:g}) per seed" for t in thetas)]
    head += ["forgets (score)", "collapse L", "onset t*"]
    rows = []
    for state in fam.states:
        for t_train in sorted({t.train_length for t in fam.trials if t.state_size == state}):
            group = [t for t in fam.trials if t.state_size == state and t.train_length == t_train]
            recall = [", ".join(t.recall[th].text() for t in group) for th in thetas]
            forg = ", ".join(
                f"{'yes' if t.forgetting.forgets else 'no'} ({t.forgetting.score:.2f})"
                if t.forgetting
                else "—"
                for t in group
            )
            col = ", ".join(
                str(t.forgetting.collapse_length or "—") if t.forgetting else "—" for t in group
            )
            onset = ", ".join(str(t.traces.get("none", {}).get("onset") or "—") for t in group)
            reached = f"{sum(t.trained for t in group)}/{len(group)}"
            rows.append([state, t_train, reached, *recall, forg, col, onset])
    lines = [f"### {fam.label}", ""]
    lines += [*_table(head, rows), ""]
    for theta in thetas:
        points = fam.capacity[theta]
        per_state: dict[int, list[str]] = {}
        for s, _, r in points:
            per_state.setdefault(s, []).append(r.text())
        shown = "; ".join(f"S={s}: {', '.join(v)}" for s, v in per_state.items())
        lines += [f"- capacity at θ = {theta:g} (best over T_train, per seed): {shown}"]
        law = fam.recall_laws.get(theta)
        if law is not None:
            fits = "; ".join(
                f"{f}: {fit.formula} ({law.criterion} Δ {law.delta(f):.2f})"
                for f, fit in law.fits.items()
            )
            lines += [f"  - fits: {fits}"]
        lines += [f"  - what the fit decides: {fam.recall_notes[theta]}"]
    lines += [""]
    lines += _images(figures, f"capacity/{fam.label}", f"{fam.label}: capacity against state size")
    return lines


def _forget_section(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    a = data.spec.analysis
    lines = [
        "## Forgetting and collapse: the minimal training length",
        "",
        f"A trial *forgets* when its recent-key accuracy (key block ending within the last "
        f"T_train/2 tokens before [Q]) stays ≥ {data.theta:g} at every grid L ≤ "
        f"min(L_max, {a.forget_span}·T_train); falling recent-key accuracy is collapse, not "
        "capacity. T_forget(S) = the smallest T_train at which the median seed forgets "
        f"(none of {', '.join(map(str, data.spec.train_lengths))}: '> "
        f"{max(data.spec.train_lengths)}').",
        "",
    ]
    rows = []
    for fam in data.families:
        for state, value in fam.forget.items():
            rows.append(
                [
                    fam.label,
                    state,
                    value if value is not None else f"> {max(data.spec.train_lengths)}",
                ]
            )
    lines += [*_table(["model", "S", "T_forget"], rows), ""]
    for fam in data.families:
        lines += [f"- {fam.label}: {fam.forget_note}"]
    lines += [""]
    lines += _images(figures, "forget", "T_forget against state size")
    return lines


def _collapse_section(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    keys = [f"collapse/{f.label}" for f in data.families if f"collapse/{f.label}" in figures]
    if not keys:
        return []
    lines = [
        "## Collapse diagnosis",
        "",
        "Per-channel state norms ‖h_t[c]‖ on filler-only rows (no key: length isolated from "
        "content) of the longest grid length, for the "
        "trial at the smallest training length of each state size (first seed); dashed: "
        "T_train; red: the onset t* that `detect_collapse` finds (a new outlier channel > 10 × "
        "the median channel norm, or the state variance > 10 × its value at T_train, in half "
        "the rows). The lower row: the largest channel norm without and with each mitigation.",
        "",
    ]
    for key in keys:
        lines += _images(figures, key, key)
    return lines


def _mitigation_section(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    if not data.mitigations:
        return []
    head = [
        "mitigation", "setting", "trials", "acc L ≤ T_train (none → m)",
        "acc L > T_train (none → m)",
        "recent-key acc L > T_train (none → m)", f"median T_recall({data.theta:g}) (none → m)",
        "T_recall up / down",
    ]  # fmt: skip
    rows = [
        [
            f"`{m.name}`",
            m.description,
            m.trials,
            f"{_pct(m.short_none)} → {_pct(m.short)}",
            f"{_pct(m.long_none)} → {_pct(m.long)}",
            f"{_pct(m.recent_none)} → {_pct(m.recent)}",
            f"{_num(m.recall_none)} → {_num(m.recall)}",
            f"{m.better} / {m.worse}",
        ]
        for m in data.mitigations
    ]
    lines = [
        "## Mitigations against none (same trained models, same contexts)",
        "",
        f"Every ssm trial is scored again under each training-free mitigation on the first "
        f"{data.spec.evaluation.mitigation_rows} rows of every point; 'none' is the unmitigated "
        "model on exactly those rows. Accuracies are means over the trials' grid lengths; "
        "T_recall below the grid counts as 0.",
        "",
    ]
    lines += [*_table(head, rows), ""]
    lines += _images(figures, "mitigations", "mitigations against none")
    return lines


def _heatmaps(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    lines = ["## Accuracy heat maps (context × depth)", ""]
    for fam in data.families:
        for state in fam.states:
            lines += _images(figures, f"heatmap/{fam.label}/{state}", f"{fam.label} S={state}")
    return lines


# ---------------------------------------------------------------------------------- json
def report_json(data: CapacityData, figures: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    def law(lc: Any) -> Any:
        if lc is None:
            return None
        return {
            "best": lc.best,
            "criterion": lc.criterion,
            "decision": lc.decision,
            "fits": {
                f: {"params": fit.params, "formula": fit.formula, "delta": lc.delta(f)}
                for f, fit in lc.fits.items()
            },
        }

    return {
        "study": data.study,
        "kind": "capacity",
        "spec_hash": data.spec_hash,
        "store": data.store_path,
        "generated": data.generated,
        "trials": len(data.trials),
        "planned": data.planned,
        "thresholds": data.thresholds,
        "models": [
            {
                "label": f.label,
                "family": f.family,
                "capacity": {
                    str(theta): [
                        {
                            "state_size": s,
                            "replicate": r,
                            "t_recall": v.value,
                            "censored": v.censored,
                        }
                        for s, r, v in pts
                    ]
                    for theta, pts in f.capacity.items()
                },
                "recall_laws": {str(t): law(lc) for t, lc in f.recall_laws.items()},
                "t_forget": {str(s): v for s, v in f.forget.items()},
                "forget_law": law(f.forget_law),
                "trials": [
                    {
                        "state_size": t.state_size,
                        "width": t.width,
                        "size": t.size,
                        "parameters": t.parameters,
                        "train_length": t.train_length,
                        "replicate": t.replicate,
                        "trained": t.trained,
                        "steps": t.steps,
                        "examples_seen": t.examples_seen,
                        "t_recall": {str(th): r.value for th, r in t.recall.items()},
                        "forgets": t.forgetting.forgets if t.forgetting else None,
                        "forgetting_score": t.forgetting.score if t.forgetting else None,
                        "collapse_length": t.forgetting.collapse_length if t.forgetting else None,
                        "onset": t.traces.get("none", {}).get("onset"),
                    }
                    for t in f.trials
                ],
            }
            for f in data.families
        ],
        "mitigations": [asdict(m) for m in data.mitigations],
        "figures": figures,
    }
