"""The report's figures (matplotlib, Agg, no pyplot: figures are plain ``Figure`` objects).

* :func:`width_figure` — one (task, model): minimal width against N (log2 x axis), one marker
  per seed, the median line and the seeds' min–max band, censored seeds as hollow triangles at
  the search maximum, the fitted growth laws (best law bold; α with its CI in the legend), the
  theorems' bound curves and construction widths.
* :func:`separation_figure` — one task: every model's median curve and band, with the bounds of
  every model's class (lower bounds drawn in the model's own width units, in its colour).
* :func:`heatmap_figure` — one (task, model): mean accuracy of every stored trial on the grid
  probed width × N; cells where some trial reached the threshold are outlined.
* :func:`length_figure` — length generalisation, when the trials carry it (see
  :data:`~sepbench.report.lengths.LENGTH_EVAL_KEY`).
* :func:`construction_figure` — one hand-built construction (docs/constructions.md): its
  smallest verifying width against N with the fitted law, and its precision curve (fewest
  mantissa and fixed-point bits) against N.

The y axis is linear unless the plotted values span more than :data:`LOG_Y_SPAN` (then
logarithmic, and the axis label says so).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from sepbench.report.bounds import BoundCurve
from sepbench.report.data import PairData
from sepbench.report.infos import TaskInfo
from sepbench.theory import GrowthFit

LOG_Y_SPAN = 30.0
DATA_COLOR = "#1f3b73"
LAW_COLORS = {"constant": "#7f7f7f", "log": "#9467bd", "linear": "#ff7f0e", "power": "#8c564b"}
BOUND_COLORS = {"upper": "#2ca02c", "lower": "#d62728"}
BOUND_DASHES = [(6, 3), (2, 2), (8, 2, 2, 2), (4, 1, 1, 1, 1, 1)]
CONSTRUCTION_COLOR = "#17becf"
CONSTRUCTION_MARKERS = ("s", "D", "v", "P")
CONSTRUCTION_STYLES = ("-", "--", "-.", ":")
FORMATS = ("png", "svg")


def model_color(index: int) -> tuple[float, float, float, float]:
    cmap = colormaps["tab10"]
    return tuple(cmap(index % 10))  # type: ignore[return-value]


def _log2_x(ax: Axes, lengths: Sequence[float]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted({float(n) for n in lengths if n > 0})
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        lo, hi = min(ticks), max(ticks)
        ax.set_xlim(lo / 1.25, hi * 1.25)
        if len(ticks) > 7:  # crowded: 4-digit labels would run into each other
            ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_xlabel("N (problem size; log2 scale)")


def _y_scale(ax: Axes, values: Sequence[float], what: str) -> None:
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if pos and max(pos) / min(pos) > LOG_Y_SPAN:
        ax.set_yscale("log")
        ax.set_ylabel(f"{what} (log scale)")
    else:
        ax.set_ylabel(what)
        ax.set_ylim(bottom=0)


def _legend_below(fig: Figure, ax: Axes, ncol: int = 1) -> None:
    handles, labels = ax.get_legend_handles_labels()
    width = 120 if ncol == 1 else 62
    labels = [textwrap.fill(t, width, subsequent_indent="    ") for t in labels]
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncol=ncol, fontsize=7.5, frameon=False
        )


def _new_figure(n_legend: int, width: float = 8.0) -> Figure:
    height = 4.6 + 0.19 * n_legend
    return Figure(figsize=(width, height), layout="constrained")


def _jitter(replicate: int, seeds: int) -> float:
    if seeds <= 1:
        return 1.0
    return float(2 ** (0.06 * (replicate - (seeds - 1) / 2) / max(1, (seeds - 1) / 2)))


def _draw_curve(
    ax: Axes, pair: PairData, color: object, label: str, seed_markers: bool
) -> list[float]:
    """Median line, min–max band, seed markers and censored markers; returns the y values.

    ``seed_markers`` is True in the single-model figure, whose legend names every element.
    """
    ys: list[float] = []
    rows = [r for r in pair.rows if r.finished]
    seeds = max((r.seeds for r in pair.rows), default=1)
    if rows:
        xs = [r.length for r in rows]
        med = [r.max_width if r.median is None else r.median for r in rows]
        low = [r.max_width if r.low is None else r.low for r in rows]
        high = [r.max_width if r.high is None else r.high for r in rows]
        band = f"{label}: min–max over seeds" if seed_markers else None
        ax.fill_between(xs, low, high, color=color, alpha=0.15, linewidth=0, label=band, zorder=1)
        median = "median minimal width" if seed_markers else "minimal width (median, band: range)"
        lw = 1.6 if seed_markers else 2.0
        ax.plot(xs, med, "-o", color=color, lw=lw, ms=5, label=f"{label}: {median}", zorder=4)
        cens = [(x, m) for x, m, r in zip(xs, med, rows, strict=True) if r.median_censored]
        if cens:
            ax.plot(
                *zip(*cens, strict=True),
                "^",
                color=color,
                ms=11,
                mec="black",
                zorder=5,
                label=f"{label}: median censored (> max width)",
            )
        ys += [float(v) for v in med + low + high]
    if seed_markers:
        done = [s for s in pair.searches if s.status == "done" and s.width is not None]
        if done:
            ax.plot(
                [s.length * _jitter(s.replicate, seeds) for s in done],
                [float(s.width or 0) for s in done],
                "o",
                ms=3.5,
                color=color,
                alpha=0.55,
                mec="none",
                label=f"{label}: one seed",
                zorder=5,
            )
    cens_seeds = pair.censored
    if cens_seeds:
        draw_censored(
            ax,
            [s.length * _jitter(s.replicate, seeds) for s in cens_seeds],
            [s.max_width for s in cens_seeds],
            color,
            f"{label}: censored seed, drawn at the search max ({len(cens_seeds)})",
        )
        ys += [float(s.max_width) for s in cens_seeds]
    return ys


def draw_censored(
    ax: Axes, xs: Sequence[float], ys: Sequence[float], color: object, label: str
) -> None:
    """Censored seeds: hollow triangles at the search maximum (the truth lies above)."""
    ax.plot(xs, ys, "^", ms=8, mfc="none", mec=color, mew=1.5, zorder=6, label=label)


def _draw_bound(ax: Axes, bound: BoundCurve, color: object, index: int, label: str) -> None:
    ls = (0, BOUND_DASHES[index % len(BOUND_DASHES)])
    ax.plot(bound.lengths, bound.widths, color=color, ls=ls, lw=1.6, label=label, zorder=2)


def _draw_constructions(ax: Axes, pair_or_curves: Sequence[object], ys: list[float]) -> None:
    """Each construction's widths in one colour, told apart by marker and line style."""
    for i, c in enumerate(pair_or_curves):
        xs = [n for n, _ in c.points]  # type: ignore[attr-defined]
        ws = [w for _, w in c.points]  # type: ignore[attr-defined]
        ax.plot(
            xs,
            ws,
            marker=CONSTRUCTION_MARKERS[i % len(CONSTRUCTION_MARKERS)],
            ls=CONSTRUCTION_STYLES[i % len(CONSTRUCTION_STYLES)],
            color=CONSTRUCTION_COLOR,
            ms=5,
            lw=1.4,
            label=f"construction {c.name} ({c.result_id}): smallest verifying "  # type: ignore[attr-defined]
            "width",
        )
        ys += ws


def width_figure(pair: PairData, precision_bits: int) -> Figure:
    """Minimal width against N for one (task, model), with fits, bounds and constructions."""
    n_legend = 6 + len(pair.bounds) + len(pair.constructions)
    fig = _new_figure(n_legend)
    ax = fig.add_subplot()
    ys = _draw_curve(ax, pair, DATA_COLOR, pair.model.label, seed_markers=True)
    lengths = [r.length for r in pair.rows]
    fit = pair.fit
    if fit is not None:
        grid = np.geomspace(min(fit.lengths), max(fit.lengths), 100)
        for law in ("constant", "log", "linear", "power"):
            lf = fit.laws.get(law)
            if lf is None or (law == "constant" and fit.best != "constant"):
                continue
            best = law == fit.best
            text = f"fit {law}: {lf.formula()}, Δ{fit.criterion} = {fit.delta(law):.1f}"
            if law == "power" and fit.alpha_ci is not None:
                lo, hi = fit.alpha_ci
                text += f", α {fit.ci_level:.0%} CI [{lo:.2f}, {hi:.2f}]"
            if best:
                text += " (best)"
            pred = lf.predict(grid)
            ax.plot(
                grid,
                pred,
                color=LAW_COLORS[law],
                lw=3.4 if best else 1.1,
                ls="-" if best else ":",
                label=text,
                zorder=3,
                alpha=0.6 if best else 0.9,
            )
    for i, b in enumerate(pair.bounds):
        _draw_bound(ax, b, BOUND_COLORS[b.side], i, b.label)
        ys += [w for w in b.widths if w > 0]
    _draw_constructions(ax, pair.constructions, ys)
    _log2_x(ax, lengths)
    _y_scale(ax, ys, "minimal width (hidden units / d_model)")
    cls = pair.model_class or "no theory class"
    note = f"; {pair.state_note}" if pair.state_note else ""
    ax.set_title(
        f"{pair.task.label} — {pair.model.label} ({cls}): minimal width vs N\n"
        f"verdict: {pair.outcome}; bounds at p = {precision_bits} bits/number{note}",
        fontsize=9.5,
    )
    ax.grid(True, which="major", alpha=0.3)
    _legend_below(fig, ax)
    return fig


def separation_figure(task: TaskInfo, pairs: Sequence[PairData], precision_bits: int) -> Figure:
    """Every model's curve on one task, with the bounds of every model's class."""
    seen: dict[tuple[str, str, tuple[float, ...]], list[str]] = {}
    draws: list[tuple[BoundCurve, PairData]] = []
    for pair in pairs:
        for b in pair.bounds:
            key = (b.result_id, b.side, tuple(round(w, 9) for w in b.widths))
            if key not in seen:
                seen[key] = []
                draws.append((b, pair))
            seen[key].append(pair.model.label)
    fig = _new_figure(3 * len(pairs) + len(draws), width=8.5)
    ax = fig.add_subplot()
    ys: list[float] = []
    lengths: list[int] = []
    for pair in pairs:
        ys += _draw_curve(
            ax, pair, model_color(pair.model.color_index), pair.model.label, seed_markers=False
        )
        lengths += [r.length for r in pair.rows]
    for i, (b, pair) in enumerate(draws):
        key = (b.result_id, b.side, tuple(round(w, 9) for w in b.widths))
        who = ", ".join(seen[key])
        what = "construction" if b.side == "upper" else "lower bound"
        unit = f" in {who}'s width" if b.side == "lower" else f" ({who})"
        shape = ""
        if not b.exact:
            shape = " (form only, scaled to the median)" if "scaled" in b.conversion else " (form)"
        _draw_bound(
            ax,
            b,
            model_color(pair.model.color_index),
            i,
            f"{b.result_id} {what}{shape}{unit}, p={b.precision_bits}",
        )
        ys += [w for w in b.widths if w > 0]
    curves = {c.name: c for pair in pairs for c in pair.constructions}
    _draw_constructions(ax, list(curves.values()), ys)
    _log2_x(ax, lengths)
    _y_scale(ax, ys, "minimal width (hidden units / d_model)")
    ps = {b.precision_bits for b, _ in draws} or {precision_bits}
    at = f"p = {precision_bits}" if ps == {precision_bits} else "each model's own p (legend)"
    ax.set_title(
        f"{task.label}: minimal width vs N for every model (the separation plot)\n"
        f"theorems drawn in the colour of the model they concern; bounds at {at} bits/number",
        fontsize=9.5,
    )
    ax.grid(True, which="major", alpha=0.3)
    _legend_below(fig, ax, ncol=2)
    return fig


def heatmap_figure(pair: PairData, threshold: float | None) -> Figure | None:
    """Mean accuracy per (probed width, N) over all stored trials; None without trials."""
    trials = pair.trials
    if not trials:
        return None
    ns = sorted({t.length for t in trials})
    ws = sorted({t.width for t in trials})
    acc = np.full((len(ws), len(ns)), np.nan)
    reached = np.zeros((len(ws), len(ns)), dtype=bool)
    counts = np.zeros((len(ws), len(ns)), dtype=int)
    sums = np.zeros((len(ws), len(ns)))
    for t in trials:
        i, j = ws.index(t.width), ns.index(t.length)
        value = t.accuracy if t.accuracy is not None else (1.0 if t.reached else None)
        if value is not None:
            sums[i, j] += value
            counts[i, j] += 1
        reached[i, j] |= t.reached
    with np.errstate(invalid="ignore"):
        acc = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    fig = Figure(
        figsize=(max(5.0, 1.0 + 0.75 * len(ns)), max(3.6, 1.6 + 0.28 * len(ws))),
        layout="constrained",
    )
    ax = fig.add_subplot()
    ax.set_facecolor("#dddddd")
    image = ax.imshow(
        np.ma.masked_invalid(acc),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    for i in range(len(ws)):
        for j in range(len(ns)):
            if reached[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="white", lw=1.8))
            if len(ws) * len(ns) <= 120 and not np.isnan(acc[i, j]):
                ax.text(
                    j,
                    i,
                    f"{acc[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black" if acc[i, j] > 0.6 else "white",
                )
    ax.set_xticks(range(len(ns)), [str(n) for n in ns])
    step = max(1, math.ceil(len(ws) / 30))
    ax.set_yticks(range(0, len(ws), step), [str(w) for w in ws[::step]])
    ax.set_xlabel("N (problem size)")
    ax.set_ylabel("probed width")
    thr = f" (threshold {threshold:g})" if threshold is not None else ""
    ax.set_title(
        f"{pair.task.label} — {pair.model.label}: mean accuracy of all {len(trials)} "
        f"trials{thr}\nwhite outline: a trial reached the threshold; grey: not probed",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label="accuracy (mean over seeds and attempts)")
    return fig


def length_figure(pair: PairData) -> Figure | None:
    """Sequence accuracy against evaluation length per trained N (None without such data)."""
    if not pair.length_eval:
        return None
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    trained = [n for n, _, _ in pair.length_eval]
    evals: list[int] = []
    for k, (n, w, curve) in enumerate(pair.length_eval):
        color = cmap(k / max(1, len(pair.length_eval) - 1))
        xs = [x for x, _ in curve]
        ax.plot(
            xs,
            [a for _, a in curve],
            "-o",
            ms=4,
            color=color,
            label=f"trained at N = {n} (width {w})",
        )
        ax.axvline(n, color=color, lw=0.8, ls=":")
        evals += xs
    _log2_x(ax, evals + trained)
    ax.set_xlabel("evaluation length (log2 scale); dotted: training length")
    ax.set_ylabel("sequence accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(
        f"{pair.task.label} — {pair.model.label}: length generalisation of the "
        "smallest successful model per training length",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5)
    return fig


def _draw_fit(ax: Axes, fit: GrowthFit | None, label: str, symbol: str = "w") -> None:
    """The best law of ``fit`` over its length range, labelled with its formula (``symbol``
    names the fitted quantity)."""
    if fit is None:
        return
    lf = fit.laws[fit.best]
    grid = np.geomspace(min(fit.lengths), max(fit.lengths), 100)
    formula = lf.formula().replace("w =", f"{symbol} =", 1)
    text = f"{label}: {formula} (best of {', '.join(fit.laws)} by {fit.criterion})"
    if fit.best == "power" and fit.alpha_ci is not None:
        text += f", α CI [{fit.alpha_ci[0]:.2f}, {fit.alpha_ci[1]:.2f}]"
    ax.plot(grid, lf.predict(grid), color=LAW_COLORS[fit.best], lw=3, alpha=0.6, label=text)


def construction_figure(
    title: str,
    widths: Sequence[tuple[int, int | None]],
    width_fit: GrowthFit | None,
    precision: Sequence[tuple[int, int | None, int | None]],
    precision_fit: GrowthFit | None,
    width_label: str = "smallest verifying width",
) -> Figure:
    """Two panels for one construction: width vs N, and bits per number vs N.

    ``widths``: (N, width or None where nothing verified up to the search maximum);
    ``precision``: (N, fewest mantissa bits, fewest fixed-point fraction bits), None where not
    even 52 bits verified. ``width_fit`` / ``precision_fit``: the fits of those curves (the
    precision fit is over the fixed-point fraction bits).
    """
    fig = Figure(figsize=(10.0, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    ok = [(n, w) for n, w in widths if w is not None]
    if ok:
        left.plot(*zip(*ok, strict=True), "-s", color=CONSTRUCTION_COLOR, ms=5, label=width_label)
    missing = [n for n, w in widths if w is None]
    if missing:
        top = max((w for _, w in ok), default=1)
        left.plot(missing, [top] * len(missing), "x", color="black", label="none verified")
    _draw_fit(left, width_fit, "fit")
    _log2_x(left, [n for n, _ in widths])
    _y_scale(left, [float(w) for _, w in ok], "width (d_model / hidden units)")
    left.set_title("constructive width", fontsize=9.5)
    for i, (what, color) in enumerate(
        (("mantissa bits", DATA_COLOR), ("fixed-point f", "#ff7f0e"))
    ):
        pts = [(n, q[i]) for n, *q in precision if q[i] is not None]
        if pts:
            right.plot(*zip(*pts, strict=True), "-o", color=color, ms=4, label=f"fewest {what}")
    _draw_fit(right, precision_fit, "fit", symbol="f")
    _log2_x(right, [n for n, *_ in precision] or [n for n, _ in widths])
    right.set_ylabel("bits")
    right.set_ylim(bottom=0)
    right.set_title("precision (simulated rounding after every operation)", fontsize=9.5)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5, loc="best", framealpha=0.85)
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``stem.<fmt>`` for each format (deterministic metadata); returns the paths."""
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        # SVG text stays text (searchable, smaller, faster to write)
        with rc_context({"svg.fonttype": "none"}):
            fig.savefig(path, format=fmt, dpi=120, metadata=meta)
        # the layout is settled by the first save; later formats reuse it (a third faster)
        fig.set_layout_engine("none")
        out.append(path)
    return out
