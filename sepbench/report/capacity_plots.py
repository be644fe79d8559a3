"""The figures of a capacity report (matplotlib ``Figure`` objects, no pyplot).

* :func:`heatmap_figure` — one (model, state size): passkey accuracy over context length ×
  depth (SM24's heat maps), one panel per training length, mean over seeds;
* :func:`capacity_figure` — one model: T_recall(θ) against state size, one panel per θ: every
  trial (by training length), the capacity curve (best over training lengths, per seed), the
  fitted forms (the best bold);
* :func:`forget_figure` — T_forget against state size for every model, with its fit;
* :func:`collapse_figure` — one ssm model: per-channel state norms over time past T_train on
  filler-only rows at every state size (the smallest T_train and first seed among the trials
  that reached the training threshold, else among all), the training length and the detected
  onset marked; a second row: the largest channel norm under each mitigation;
* :func:`mitigation_figure` — depth-averaged and recent-key accuracy against L / T_train under
  each mitigation, averaged over the same trials and rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from sepbench.report.capacity_data import CapacityData, FamilyData, TrialData
from sepbench.studies.capacity_analysis import LawComparison

FORM_COLORS = {
    "constant": "#7f7f7f",
    "linear": "#ff7f0e",
    "power": "#8c564b",
    "exponential": "#d62728",
    "log": "#9467bd",
}
MITIGATION_COLORS = ("#1f3b73", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b")


def _log2_axis(ax: Axes, values: Sequence[float], axis: str = "x") -> None:
    ticks = sorted({float(v) for v in values if v > 0})
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    if ticks:
        target.set_major_locator(FixedLocator(ticks))
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        target.set_minor_locator(NullLocator())
        target.set_minor_formatter(NullFormatter())


def _train_color(index: int, count: int) -> tuple[float, ...]:
    return tuple(colormaps["viridis"](0.15 + 0.7 * index / max(1, count - 1)))


# ---------------------------------------------------------------------------------- heat maps
def heatmap_figure(family: FamilyData, state: int) -> Figure | None:
    trials = [t for t in family.trials if t.state_size == state]
    lengths_t = sorted({t.train_length for t in trials})
    if not trials:
        return None
    fig = Figure(figsize=(3.6 * len(lengths_t) + 1.2, 3.6), layout="constrained")
    axes = fig.subplots(1, len(lengths_t), squeeze=False)[0]
    image = None
    for ax, t_train in zip(axes, lengths_t, strict=True):
        group = [t for t in trials if t.train_length == t_train]
        maps = [t.curves.heatmap("none") for t in group]
        lengths, depths = maps[0][0], maps[0][1]
        acc = np.nanmean(np.stack([m[2] for m in maps]), axis=0)
        image = ax.imshow(
            acc, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis",
            extent=(-0.5, len(lengths) - 0.5, -0.5, len(depths) - 0.5),
        )  # fmt: skip
        ax.set_xticks(range(len(lengths)), [str(n) for n in lengths], rotation=60, fontsize=7)
        step = max(1, len(depths) // 5)
        ax.set_yticks(range(0, len(depths), step), [f"{d:.2f}" for d in depths[::step]])
        ax.set_xlabel("context length L (tokens)")
        ax.set_ylabel("depth (key position / context)")
        if t_train in lengths:
            ax.axvline(lengths.index(t_train), color="white", lw=1.2, ls="--")
        trained = sum(t.trained for t in group)
        ax.set_title(f"T_train = {t_train} ({len(group)} seed(s), {trained} reached)", fontsize=8.5)
    fig.suptitle(f"{family.label} S = {state}: passkey exact match (mean over seeds)", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.85, label="accuracy")
    return fig


# ---------------------------------------------------------------------------------- capacity
def _draw_law(ax: Axes, law: LawComparison | None, xs: Sequence[float]) -> None:
    if law is None:
        return
    grid = np.geomspace(min(xs), max(xs), 200)
    for form, fit in law.fits.items():
        best = form == law.best
        y = fit.predict(grid)
        y = np.where(y > 0, y, np.nan)
        ax.plot(
            grid, y, color=FORM_COLORS.get(form, "#333333"), lw=2.2 if best else 1.0,
            ls="-" if best else "--", alpha=0.95 if best else 0.7,
            label=f"{form}{' (best)' if best else ''}: {fit.formula}  Δ = {law.delta(form):.1f}",
        )  # fmt: skip


def capacity_figure(family: FamilyData, data: CapacityData) -> Figure | None:
    if not family.trials:
        return None
    thetas = data.thresholds
    fig = Figure(figsize=(6.2 * len(thetas), 5.4), layout="constrained")
    axes = fig.subplots(1, len(thetas), squeeze=False)[0]
    lengths = data.spec.evaluation.lengths
    below = lengths[0] / 2
    train_lengths = sorted({t.train_length for t in family.trials})
    states = family.states
    for ax, theta in zip(axes, thetas, strict=True):
        for i, t_train in enumerate(train_lengths):
            group = [t for t in family.trials if t.train_length == t_train]
            xs = [t.state_size * (1 + 0.04 * (i - len(train_lengths) / 2)) for t in group]
            ys = [t.recall[theta].value or below for t in group]
            ax.scatter(
                xs, ys, s=14, color=_train_color(i, len(train_lengths)), alpha=0.75,
                label=f"trial, T_train = {t_train}",
            )  # fmt: skip
        points = family.capacity[theta]
        cx = [s for s, _, _ in points]
        cy = [r.value or below for _, _, r in points]
        marks = [
            "^" if r.censored == "above" else "v" if r.value is None else "o" for *_, r in points
        ]
        for x, y, mk in zip(cx, cy, marks, strict=True):
            ax.scatter([x], [y], s=60, marker=mk, facecolor="none", edgecolor="#1f3b73", lw=1.4)
        med = {}
        for s in states:
            vals = [r.value or below for st, _, r in points if st == s]
            if vals:
                med[s] = float(np.median(vals))
        ax.plot(
            list(med), list(med.values()), color="#1f3b73", lw=1.2, label="capacity (median seed)"
        )
        _draw_law(ax, family.recall_laws.get(theta), [float(s) for s in states])
        ax.axhline(below, color="#999999", lw=0.6, ls=":")
        _log2_axis(ax, states, "x")
        _log2_axis(ax, [below, *lengths], "y")
        ax.set_ylim(below / 1.3, lengths[-1] * 1.3)
        ax.set_xlabel("state size S (floats carried per row; log2)")
        ax.set_ylabel("T_recall (tokens; log2)")
        ax.set_title(
            f"θ = {theta:g}: circles = best over T_train per seed (▲ ≥ grid, ▼ < grid: "
            f"drawn at {below:g})",
            fontsize=8,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left", framealpha=0.85)
    fig.suptitle(f"{family.label}: passkey capacity T_recall(θ) against state size", fontsize=10)
    return fig


def forget_figure(data: CapacityData) -> Figure | None:
    families = [f for f in data.families if f.forget]
    if not families:
        return None
    fig = Figure(figsize=(7.5, 5.2), layout="constrained")
    ax = fig.subplots()
    top = max(data.spec.train_lengths)
    states: list[int] = []
    for i, fam in enumerate(families):
        color = MITIGATION_COLORS[i % len(MITIGATION_COLORS)]
        xs = list(fam.forget)
        ys = [v if v is not None else 2 * top for v in fam.forget.values()]
        marks = ["o" if v is not None else "^" for v in fam.forget.values()]
        for x, y, mk in zip(xs, ys, marks, strict=True):
            ax.scatter([x], [y], marker=mk, color=color, s=40)
        ax.plot(xs, ys, color=color, lw=1.0, label=f"{fam.label}")
        if fam.forget_law is not None:
            best = fam.forget_law.fits[fam.forget_law.best]
            grid = np.geomspace(min(xs), max(xs), 100)
            ax.plot(grid, best.predict(grid), color=color, ls="--", lw=1.0,
                    label=f"{fam.label} {best.form}: {best.formula}")  # fmt: skip
        states += xs
    _log2_axis(ax, states, "x")
    _log2_axis(ax, [*data.spec.train_lengths, 2 * top], "y")
    ax.axhline(1.5 * top, color="#999999", lw=0.6, ls=":")
    ax.set_xlabel("state size S (log2)")
    ax.set_ylabel("T_forget: smallest T_train whose median seed forgets (log2)")
    ax.set_title(
        f"▲ at {2 * top}: no training length ≤ {top} made the median seed forget "
        f"(acc_recent ≥ {data.theta:g} to min(L_max, {data.spec.analysis.forget_span}·T_train))",
        fontsize=8,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


# ---------------------------------------------------------------------------------- collapse
def _representative(family: FamilyData) -> list[TrialData]:
    """Per state size, the trial at the smallest training length and seed with a trace."""
    out = []
    for state in family.states:
        group = [t for t in family.trials if t.state_size == state and "none" in t.traces]
        if group:
            out.append(min(group, key=lambda t: (not t.trained, t.train_length, t.replicate)))
    return out


def collapse_figure(family: FamilyData) -> Figure | None:
    trials = _representative(family)
    if not trials:
        return None
    cols = len(trials)
    fig = Figure(figsize=(3.0 * cols + 0.8, 6.4), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False, sharex="col")
    for j, t in enumerate(trials):
        top, bottom = axes[0][j], axes[1][j]
        trace = t.traces["none"]
        steps = np.asarray(trace["steps"])
        norms = np.asarray(trace["norms"], dtype=float)  # [layers, steps, channels]
        for layer in range(norms.shape[0]):
            for c in range(norms.shape[2]):
                top.plot(steps, np.maximum(norms[layer, :, c], 1e-6), lw=0.6, alpha=0.7,
                         color=colormaps["tab20"]((layer * norms.shape[2] + c) % 20))  # fmt: skip
        for ax in (top, bottom):
            ax.axvline(t.train_length, color="black", ls="--", lw=0.9)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
        if trace.get("onset"):
            top.axvline(trace["onset"], color="#d62728", lw=1.0)
        top.set_title(
            f"S = {t.state_size}, T_train = {t.train_length}\nonset t* = "
            f"{trace.get('onset') or 'none'}",
            fontsize=8,
        )
        names = sorted(t.traces, key=lambda m: (m != "none", m))
        for i, (name, tr) in enumerate((m, t.traces[m]) for m in names):
            mx = np.asarray(tr["max_norm"], dtype=float).max(axis=0)
            bottom.plot(tr["steps"], np.maximum(mx, 1e-6), lw=1.1, label=name,
                        color=MITIGATION_COLORS[i % len(MITIGATION_COLORS)])  # fmt: skip
        bottom.set_xlabel("tokens read t (log2)")
        if j == 0:
            top.set_ylabel("‖h_t[c]‖ per channel (log)")
            bottom.set_ylabel("largest channel norm (log)")
            bottom.legend(fontsize=6.5, loc="upper left")
    fig.suptitle(
        f"{family.label}: state norms on filler-only rows past the training length (dashed); "
        "red: detected collapse onset",
        fontsize=9.5,
    )
    return fig


# ---------------------------------------------------------------------------------- mitigations
def mitigation_figure(data: CapacityData) -> Figure | None:
    names = ["none", *(m.name for m in data.mitigations)]
    k = data.spec.evaluation.mitigation_rows
    trials = [t for t in data.trials if any(m in t.curves.grid for m in names[1:])]
    if len(names) < 2 or not trials:
        return None
    fig = Figure(figsize=(8.5, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    ratios_all: set[float] = set()
    for i, name in enumerate(names):
        grid: dict[float, list[float]] = {}
        recent: dict[float, list[float]] = {}
        for t in trials:
            for n, acc in t.curves.averaged(name, k).items():
                grid.setdefault(n / t.train_length, []).append(acc)
            for n, acc in t.curves.recent_accuracy(name, k).items():
                recent.setdefault(n / t.train_length, []).append(acc)
        color = MITIGATION_COLORS[i % len(MITIGATION_COLORS)]
        for ax, table in ((left, grid), (right, recent)):
            xs = sorted(table)
            ax.plot(xs, [float(np.mean(table[x])) for x in xs], marker="o", ms=3,
                    color=color, label=name)  # fmt: skip
            ratios_all |= set(xs)
    for ax, what in ((left, "depth-averaged accuracy"), (right, "recent-key accuracy")):
        _log2_axis(ax, [r for r in ratios_all if r >= 0.25 and math.log2(r).is_integer()], "x")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.axvline(1.0, color="black", ls="--", lw=0.9)
        ax.set_xlabel("L / T_train (log2)")
        ax.set_title(f"{what}, mean over {len(trials)} ssm trials ({k} rows a point)", fontsize=8.5)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(-0.02, 1.02)
    left.set_ylabel("accuracy")
    left.legend(fontsize=7.5, loc="lower left")
    fig.suptitle("training-free mitigations on the same trained models and contexts", fontsize=10)
    return fig
