"""The state-bits figure (draws :class:`sepbench.report.bits.BitsAxis`; computes nothing).

Left: each RNN pair's minimal state in bits (s·w·p) against N — seeds as dots, the median as
a line, censored seeds as hollow triangles at the search maximum (the truth lies above) —
with each lower bound in bits: solid for the theorem as stated (exact answers), dashed for its
error-allowed form at the study's threshold. Right: the Transformers by width, each with its
precision in the legend.
"""

from __future__ import annotations

import textwrap

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sepbench.report.bits import BitsAxis, Series
from sepbench.report.plots import (
    _log2_x,
    _new_figure,
    _y_scale,
    draw_censored,
    model_color,
)

BOUND_COLOR = "black"
"""The bounds' colour here: one line in bits for every model, so in no model's colour."""


def bits_figure(axis: BitsAxis) -> Figure:
    """The task's state-bits axis (module docstring)."""
    n_legend = 3 * len(axis.rnns) + 2 * len(axis.bounds) + 2 * len(axis.attention)
    fig = _new_figure(n_legend, width=11.0 if axis.attention else 8.0)
    left = fig.add_subplot(1, 2 if axis.attention else 1, 1)
    lengths: list[float] = []
    ys: list[float] = []
    for s in axis.rnns:
        ys += _draw_series(left, s, f"{s.model} ({s.precision_text})")
        lengths += [n for n, _, _ in s.medians]
    for b in axis.bounds:
        ps = ", ".join(map(str, b.precision_bits))
        left.plot(
            b.lengths,
            b.bits,
            color=BOUND_COLOR,
            lw=1.8,
            label=f"{b.result_id} lower bound in bits m·p, exact answers (from {b.formula}; "
            f"evaluated at p = {ps})",
            zorder=2,
        )
        ys += [v for v in b.bits if v > 0]
        if b.error_bits is not None:
            left.plot(
                b.lengths,
                b.error_bits,
                color=BOUND_COLOR,
                lw=1.4,
                ls=(0, (5, 3)),
                label=f"{b.result_id} in bits, error-allowed at ε = {b.error:.3g} (the verdicts' "
                f"line; from {b.error_formula})",
                zorder=2,
            )
            ys += [v for v in b.error_bits if v > 0]
    drawn = [n for b in axis.bounds for n in (min(b.lengths), max(b.lengths))]
    _log2_x(left, sorted({*lengths, *drawn}))
    _y_scale(left, ys, "minimal state bits m·p = s·width·p")
    left.set_title(
        f"{axis.task.label}: minimal state bits vs N (RNNs at bounded precision)\n"
        "every curve must stay above the bound (a point below it would be a leak)",
        fontsize=9.5,
    )
    left.grid(True, which="major", alpha=0.3)
    if axis.attention:
        right = fig.add_subplot(1, 2, 2)
        wys: list[float] = []
        wns: list[float] = []
        for s in axis.attention:
            wys += _draw_series(right, s, f"{s.model} ({s.precision_text} bits per number)")
            wns += [n for n, _, _ in s.medians]
        _log2_x(right, wns or lengths)
        _y_scale(right, wys, "minimal width (d_model)")
        right.set_title("Transformers by width, at their precision", fontsize=9.5)
        right.grid(True, which="major", alpha=0.3)
    handles, labels = [], []
    for ax in fig.axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += [textwrap.fill(t, 70, subsequent_indent="    ") for t in lab]
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7.5, frameon=False)
    return fig


def _draw_series(ax: Axes, s: Series, label: str) -> list[float]:
    """Median line (censored medians as filled triangles), seed dots, censored seeds."""
    color = model_color(s.color_index)
    ys: list[float] = []
    if s.medians:
        xs = [n for n, _, _ in s.medians]
        ms = [v for _, v, _ in s.medians]
        ax.plot(xs, ms, "-", color=color, lw=1.8, label=f"{label}: median", zorder=4)
        ys += ms
    if s.points:
        ax.plot(*zip(*s.points, strict=True), "o", color=color, ms=5, zorder=5)
    if s.censored:
        draw_censored(
            ax,
            [n for n, _ in s.censored],
            [v for _, v in s.censored],
            color,
            f"{label}: censored (above the search max)",
        )
        ys += [v for _, v in s.censored]
    return ys
