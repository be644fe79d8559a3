"""report.md: the study in numbers, the verdict table, and the figures in context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sepbench import __version__
from sepbench.report.data import PairData, ReportData
from sepbench.report.verdicts import NO_THEOREM

if TYPE_CHECKING:
    from sepbench.report.bits import BitsAxis
    from sepbench.sweep.spec import StudySpec

OUTCOME_MARK = {
    "consistent": "consistent",
    "inconsistent": "**inconsistent**",
    "undecided": "undecided",
    "vacuous": "vacuous (cannot bind)",
    "not applicable": "not applicable",
    NO_THEOREM: "n/a (no theorem)",
}
"""How each pair outcome (:data:`sepbench.theory.OUTCOMES`, or no theorem) is shown."""


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _images(figures: Mapping[str, Sequence[str]], key: str, alt: str) -> list[str]:
    paths = figures.get(key)
    if not paths:
        return []
    png = next((p for p in paths if p.endswith(".png")), paths[0])
    others = " · ".join(f"[{p.rsplit('.', 1)[-1].upper()}]({p})" for p in paths if p != png)
    return [f"![{alt}]({png})", "", others, ""] if others else [f"![{alt}]({png})", ""]


def theorems_text(pair: PairData) -> str:
    if not pair.verdicts:
        return "—"
    return "; ".join(
        f"{v.result_id} ({v.direction}, {v.form}: {v.statement}): {v.outcome}"
        for v in pair.verdicts
    )


def render(data: ReportData, figures: Mapping[str, Sequence[str]]) -> str:
    """The markdown text; ``figures`` maps figure keys to paths relative to report.md."""
    out: list[str] = [
        *_title(data),
        *_study(data),
        *_study_notes(data),
        *_conventions(data),
        *_verdict_table(data),
        *_detail_table(data),
        *_protocol_section(data),
        *_task_sections(data, figures),
        *_problems(data),
    ]
    return "\n".join(out).rstrip() + "\n"


def _title(data: ReportData) -> list[str]:
    out = [f"# Width-scaling report: {data.study}", ""]
    if data.spec.description:
        out += [data.spec.description, ""]
    return out


def _study(data: ReportData) -> list[str]:
    """The study in numbers: store, trials, searches, wall time, the spec's grid and budget."""
    s, spec = data.summary, data.spec
    done = sum(x.status == "done" for x in s.searches)
    censored = [x for x in s.searches if x.status == "censored"]
    incomplete = sum(x.status == "incomplete" for x in s.searches)
    violations = [x for x in s.searches if x.violations]
    ref = min(spec.lengths)
    b = spec.budget
    steps = ", ".join(f"N={n}: {b.steps_at(n, ref)}" for n in spec.lengths)
    opts = f", options {dict(b.options)}" if b.options else ""
    rates = ", ".join(f"{x:g}" for x in b.lrs)
    return [
        f"- store: `{data.store_path}` (spec {data.spec_hash[:12]}"
        + (f", created {data.created}" if data.created else "")
        + ")",
        f"- generated {data.generated} by sepbench {__version__}",
        f"- trials: {s.trials} stored; searches: {len(s.searches)} "
        f"({done} found a width, {len(censored)} censored, {incomplete} unfinished)",
        f"- wall time: {_duration(data.trial_wall_s)} of training in trials; "
        f"{_duration(data.elapsed_s())} from first to last stored trial"
        + (f"; {_duration(s.wall_s)} in the run that produced this summary" if s.wall_s else ""),
        f"- monotonicity violations: {len(violations)} search(es)",
        f"- censored points: {len(censored)} seed(s) found no width up to the maximum",
        f"- lengths N: {', '.join(map(str, spec.lengths))}; seeds: "
        f"{', '.join(map(str, spec.seeds))}; accuracy threshold {spec.threshold:g}; "
        f"study seed {spec.seed}",
        f"- widths searched: {_grids(data)}",
        f"- budget: {b.steps} steps at N={b.reference_length or ref}, scaled {b.scale}"
        + (f", capped at {b.steps_cap}" if b.steps_cap else "")
        + f" ({steps}); batch {b.batch_size}, lr {rates}{opts}",
        f"- probes: {_members_text(spec)}",
        f"- training lengths: {_lengths_text(spec)}",
    ]


def _grids(data: ReportData) -> str:
    """Each distinct search grid with the models that use it, and the re-probe rule."""
    groups: dict[str, list[str]] = {}
    for m in data.models:
        groups.setdefault(m.grid_text, []).append(m.label)
    reprobes = {data.spec.width_for(m).reprobes for m, _ in data.spec.model_labels()}
    text = "; ".join(
        f"{', '.join(labels)}: {grid}" if len(groups) > 1 else grid
        for grid, labels in groups.items()
    )
    counts = "/".join(str(r) for r in sorted(reprobes))
    return f"{text} ({counts} re-probe(s) on a monotonicity violation)"


def _members_text(spec: StudySpec) -> str:
    k = spec.members
    if k == 1:
        return "each trains one model (K = 1: the best_of and median rules coincide)"
    rule = (
        "a width succeeds when any member passes confirmation"
        if spec.rule == "best_of"
        else "a width succeeds when at least half the members pass confirmation"
    )
    return (
        f"each trains K = {spec.restarts} restart(s) × {len(spec.budget.lrs)} learning "
        f"rate(s) = {k} members as one ensemble; success rule **{spec.rule}** ({rule}); a "
        "probe stops as soon as its rule is decided"
    )


def _lengths_text(spec: StudySpec) -> str:
    m = spec.budget.mixture
    if m is None:
        return "exactly N"
    lo = f"{m.min}" if m.min is not None else f"⌈{m.fraction:g}·N⌉"
    return (
        f"a mixture: each training batch has one length, uniform over the task's valid "
        f"lengths in [{lo}, N]; evaluation and confirmation at exactly N"
    )


def _study_notes(data: ReportData) -> list[str]:
    out = []
    if not data.summary.complete:
        out += [
            "",
            "> The study is unfinished: unfinished searches are left out of the "
            "curves and fits; run the study again to resume it.",
        ]
    out += ["", *(f"> {n}" for n in data.notes)] if data.notes else []
    return out


def _verdict_table(data: ReportData) -> list[str]:
    """One row per (task, model): measured law, exponent, theorems, combined outcome."""
    out = ["", "## Verdicts", ""]
    out += [
        "One row per (task, model). *Measured* is the growth law the AICc (AIC for < 5 points) "
        "prefers among constant, log, linear and power fits of the per-seed answers, each taken "
        "as the interval its grid search gives (between the width below the answer, which "
        "failed, and the answer) and censored seeds as (max, ∞); α is the power-law exponent "
        "with its 95 % profile-likelihood CI. *Outcome* combines the theorems of the model's "
        "class: inconsistent if any is, else undecided, else consistent, else vacuous (a lower "
        "bound below the smallest searched width at every N: no measurement here could "
        "contradict it, so it is never reported as consistent), else not applicable (the "
        "measurement does not meet the theorem's hypotheses). Every verdict names the "
        "hypothesis it checked; the reason quoted is the deciding theorem's; all of them "
        "follow the table.",
        "",
    ]
    rows = [
        (
            p.task.label,
            p.model.label,
            p.model_class or "—",
            p.measured_law(),
            p.alpha_text(),
            theorems_text(p),
            OUTCOME_MARK[p.outcome],
            p.reason or p.fit_note or "—",
        )
        for p in data.pairs
    ]
    head = ("task", "model", "class", "measured (best law)", "α [CI]", "theorem(s)", "outcome")
    return out + _table((*head, "reason"), rows)


def _detail_table(data: ReportData) -> list[str]:
    """Every theorem against every curve, with the bound's value at the largest N."""
    detail = [
        (
            p.task.label,
            p.model.label,
            v.result_id,
            v.direction,
            v.form,
            "—" if v.bound_at_max is None else f"{v.bound_at_max:.3g} (N={v.bound_length})",
            v.outcome,
            v.reason,
            v.interpretation,
        )
        for p in data.pairs
        for v in p.verdicts
    ]
    if not detail:
        return []
    out = [
        "",
        "### Every theorem against every curve",
        "",
        "*Bound* is the theorem's width at the largest fitted N in the searched width's units "
        "(the lower side for lower and tight results — in its error-allowed form where the "
        "verdict checked that one — the construction's width for upper ones; the figures draw "
        "the lower bounds as the theorems state them, for exact answers).",
        "",
    ]
    head = ("task", "model", "result", "direction", "form", "bound", "outcome", "reason")
    return out + _table((*head, "what it means for a trained width"), detail)


def _protocol_section(data: ReportData) -> list[str]:
    """Both success rules, the threshold sensitivity and the examples seen per trial."""
    t = data.protocol
    if t is None:
        return []
    out = ["", "## Success rules, thresholds and training examples", ""]
    out += [
        "Widths per seed (separated by ·), all from the stored probes: under the study's "
        "rule at its threshold they are the searches' answers; otherwise `w` where the probes "
        "determine it, `>max` where every width up to the maximum fails, and `(a, b]` where "
        "they do not: the width lies in that range (`(>a)`: above a), because the widths that "
        "would decide it were never probed or their members' outcomes are unknown — a probe "
        "stops training as soon as its own rule is decided. Nothing is extrapolated.",
        "",
    ]
    if t.members > 1:
        out += _table(
            (
                "task",
                "model",
                "N",
                f"{t.rule} (the study's rule)",
                f"{t.other} (from the stored probes)",
            ),
            t.rules,
        )
        out += [""]
    else:
        out += [f"One model per probe (K = 1): {t.rule} and {t.other} coincide.", ""]
    study = data.spec.threshold
    head = [f"{x:g}" + (" (the study's)" if x == study else "") for x in t.thresholds]
    out += [
        "### Threshold sensitivity",
        "",
        f"The minimal width each search would have found at other accuracy thresholds, under "
        f"the study's rule ({t.rule}), replayed on the stored evaluation histories: training "
        "is the same until it stops, so a member passes at t' at the first evaluation whose "
        "periodic and confirmation accuracies are both ≥ t' (at the budget's end the "
        "confirmation alone); where a confirmation was never computed the outcome is unknown.",
        "",
    ]
    out += _table(("task", "model", "N", *head), [(*r[:3], *r[3]) for r in t.sensitivity])
    out += [
        "",
        "### Training examples per trial",
        "",
        "Examples a member sees: at most the budget's steps × batch size; a probe stops "
        "early once its rule is decided. For scale: Delétang et al. 2023 trained on 128M "
        "examples (10^6 steps × batch 128), Zoology's MQAR presents 100k examples × 64 "
        "epochs = 6.4M, W24's README runs 5M samples; B24's count (about 16M in issue 10) "
        "is unverified.",
        "",
    ]
    out += _table(
        (
            "N",
            "budget per member (steps × batch)",
            "members per probe K",
            "seen per member: median (max)",
        ),
        [(n, f"{b:,}", k, seen) for n, b, k, seen in t.examples],
    )
    return out


def _task_sections(data: ReportData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    """Per task: its parameters, its separation plot, then one section per pair."""
    out: list[str] = []
    for task in data.tasks:
        out += ["", f"## {task.label}", ""]
        if task.params:
            params = ", ".join(f"{k}={v}" for k, v in sorted(task.params.items()))
            out += [f"Task `{task.name}` with {params}.", ""]
        out += _images(figures, f"separation/{task.label}", f"{task.label}: separation plot")
        axis = data.bits_axis_for(task.label)
        if axis is not None:
            out += _bits_section(axis, figures)
        for p in data.pairs_for(task.label):
            out += _pair_section(p, figures)
    return out


def _bits_section(axis: BitsAxis, figures: Mapping[str, Sequence[str]]) -> list[str]:
    """The task's state-bits axis: its figure and, per N, each RNN's median state bits beside
    the first lower bound in bits (exact and error-allowed)."""
    label = axis.task.label
    out = [
        "",
        f"### {label} — the state-bits axis",
        "",
        "Each RNN's minimal state in bits, m·p = (state numbers per width unit) × width × p, "
        "at its own p; the theorem's lower bound in bits is one line for every p, and every "
        "curve must stay above it (the error-allowed line at the study's threshold is what the "
        "verdicts check). Transformers are drawn by width, at their stated precision: "
        + (
            ", ".join(f"{s.model} {s.precision_text}" for s in axis.attention)
            if axis.attention
            else "none in this study"
        )
        + ".",
        "",
    ]
    out += _images(figures, f"bits/{label}", f"{label}: minimal state bits vs N")
    rows = axis.table()
    if rows and axis.rnns:
        first = axis.bounds[0] if axis.bounds else None
        exact = f"{first.result_id} bound (bits)" if first else "bound (bits)"
        allowed = f"error-allowed at ε = {first.error:.3g}" if first and first.error else "—"
        head = ("N", *(f"{s.model} ({s.precision_text})" for s in axis.rnns), exact, allowed)
        out += _table(head, [(n, *cells, e, a) for n, cells, e, a in rows])
        out += ["", "Median state bits per N (`>x`: censored, above the search maximum's x).", ""]
    return out


def _conventions(data: ReportData) -> list[str]:
    p = data.precision_bits
    notes = sorted({q.state_note for q in data.pairs if q.state_note})
    conv = [
        "",
        "## How to read this report",
        "",
        "- The y axis is the searched **width**: hidden units (RNN, SSM channels) or d_model "
        "(Transformer). x is N on a log2 axis, so a log-N law is a straight line.",
        f"- RNN lower bounds bound the **state** m·p in bits; they are turned into widths with "
        f"p = {p} bits per number (float32: every one of its 2^32 bit patterns counts, so a "
        "24-bit mantissa would overstate the bound) and divided by the state numbers per unit "
        "of width. Verdicts for RNN classes are computed on the state (width × that factor)."
        + (" Here: " + "; ".join(notes) + "." if notes else ""),
        "- Upper bounds are drawn as the theorem's construction width (exact constants unless "
        "marked *form only*). A trained width above a construction is no contradiction: "
        "trained widths say what training finds (learnability), constructions what exists.",
        "- Lower bounds of RNNs and one-layer Transformers bind only at large N (B24: 128 units "
        "× 64 bits only beyond N ≈ 8k). At laboratory N a trained width far above them is a "
        "statement about learnability; a width *below* a lower bound would be a bug report.",
        "- At laboratory N, log versus linear is often undecided: the verdict says so rather "
        "than guessing. Censored widths (no width up to the search maximum reached the "
        "threshold) are drawn as hollow triangles at the maximum, counted, and enter the fits "
        "as right-censored points (the width is above the maximum), never capped or dropped.",
        f"- A width *worked* at {data.success.describe()} (held out): an average-case "
        "criterion. A lower bound proved for exact answers on every input is checked in its "
        f"error-allowed form at ε = {data.success.error:.3g} where one is derived "
        "(docs/theory.md), and is "
        "*not applicable* otherwise. A lower bound that asks for less than the smallest "
        "searched width at every measured N is *vacuous*: this grid cannot test it.",
    ]
    bounded = [q for q in data.pairs if q.bounded]
    if bounded:
        each = ", ".join(f"{q.model.label}: p = {q.precision_bits}" for q in bounded)
        conv.append(
            f"- **Bounded precision.** Models run with `state_bits` / `precision_bits` are "
            f"judged at their own p bits per number ({each}); p = {p} is for the others "
            "(floats). At p of a few bits the RNN lower bounds bind at laboratory N: the "
            "state-bits axis of each task shows the RNN curves against them in bits "
            "(docs/precision.md)."
        )
    return conv


def _pair_section(p: PairData, figures: Mapping[str, Sequence[str]]) -> list[str]:
    key = f"{p.task.label}/{p.model.label}"
    out = ["", f"### {p.task.label} — {p.model.label}", ""]
    fam = p.model.family or "unknown family"
    opts = ", ".join(f"{k}={v}" for k, v in sorted(p.model.options.items()))
    out += [
        f"Family `{fam}`"
        + (f" ({opts})" if opts else "")
        + f"; theory class: {p.model_class or '—'}"
        + (f"; {p.state_note}" if p.state_note else "")
        + f". Outcome: **{p.outcome}**.",
        "",
    ]
    out += _images(figures, f"width/{key}", f"{key}: minimal width vs N")
    rows = [
        (
            r.length,
            r.median_text(),
            r.range_text(),
            f"{r.finished}/{r.seeds}",
            r.censored,
            r.violations,
        )
        for r in p.rows
    ]
    if rows:
        out += _table(("N", "median width", "range", "seeds", "censored", "violations"), rows)
        out += [""]
    if p.fit is not None:
        out += ["```", p.fit.summary(), "```", ""]
    if p.fit_note:
        out += [f"Fit: {p.fit_note}.", ""]
    for c in p.constructions:
        pts = ", ".join(f"N={n}: {w:g}" for n, w in c.points)
        out += [f"Construction `{c.name}` ({c.result_id}): {pts}.", ""]
    out += _images(figures, f"heatmap/{key}", f"{key}: accuracy heatmap")
    out += _images(figures, f"lengths/{key}", f"{key}: length generalisation")
    return out


def _problems(data: ReportData) -> list[str]:
    s = data.summary
    out = ["", "## Monotonicity violations and censored points", ""]
    viol = [x for x in s.searches if x.violations]
    if viol:
        out += [
            "A violation is a width that failed while a smaller one succeeded in the same "
            "search; the search re-probes it and decides by the rule in docs/sweeps.md.",
            "",
        ]
        out += _table(
            ("task", "model", "N", "seed", "violations (ok<failed)", "resolved", "width"),
            [
                (
                    x.task,
                    x.model,
                    x.length,
                    x.replicate,
                    ", ".join(f"{a}<{b}" for a, b in x.violations),
                    "yes" if x.consistent else "no",
                    x.width_text(),
                )
                for x in viol
            ],
        )
    else:
        out += ["No search saw a monotonicity violation."]
    cens = [x for x in s.searches if x.status == "censored"]
    out += [""]
    if cens:
        out += _table(
            ("task", "model", "N", "seed", "width"),
            [(x.task, x.model, x.length, x.replicate, x.width_text()) for x in cens],
        )
    else:
        out += ["No censored points: every finished search found a width."]
    return out
