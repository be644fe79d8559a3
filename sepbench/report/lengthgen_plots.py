"""Figures of a lengthgen study: accuracy against test length (training range shaded) and, for
the recurrent-depth models, against the test-time iteration count (lengthgen.md "Deliverables").

Every curve is one (model, size, L, iterations) over its seeds: the solid line is the **max**
over seeds, the dashed line the **median**, the band between them their gap (the fragility,
:mod:`sepbench.studies.lengthgen_analysis`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sepbench.report.plots import model_color

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sepbench.studies.lengthgen_analysis import Curve


def _new(width: float = 8.0, height: float = 4.8) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _shade_training(ax: Axes, lo: int, hi: int) -> None:
    ax.axvspan(lo - 0.5, hi + 0.5, color="#cccccc", alpha=0.5, lw=0, label=f"training [{lo}, {hi}]")
    ax.axvline(hi + 0.5, color="#555555", lw=0.8)


def _ys(values: Sequence[float | None]) -> list[float]:
    """None (no value) as NaN, a gap in the line."""
    return [math.nan if v is None else v for v in values]


def _draw(ax: Axes, curve: Curve, color: object, label: str) -> None:
    xs = list(curve.lengths)
    top = _ys([s.maximum for s in curve.by_length])
    mid = _ys([s.median for s in curve.by_length])
    ax.plot(xs, top, "-o", color=color, ms=3, lw=1.5, label=f"{label} (max)")
    ax.plot(xs, mid, "--", color=color, lw=1.0, label=f"{label} (median)")
    ax.fill_between(xs, mid, top, color=color, alpha=0.15, lw=0)


def _finish(ax: Axes, title: str, ncol: int = 2) -> None:
    ax.set_xlabel("test length N")
    ax.set_ylabel("acc_row (every supervised token right)")
    ax.set_ylim(-0.03, 1.03)
    ax.axhline(0.9, color="#999999", lw=0.6, ls=":")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=ncol, loc="best")


def models_figure(curves: Sequence[Curve], title: str) -> Figure | None:
    """``acc_row`` against test length, one curve per (model, size, iterations) of one L."""
    if not curves:
        return None
    fig, ax = _new()
    _shade_training(ax, curves[0].train_min, curves[0].train_length)
    for i, c in enumerate(curves):
        _draw(ax, c, model_color(i), c.label)
    _finish(ax, title)
    return fig


def iterations_figure(curves: Sequence[Curve], title: str) -> Figure | None:
    """One depth model: ``acc_row`` against test length, one curve per iteration count."""
    counts = [c for c in curves if c.iterations is not None]
    if not counts:
        return None
    return models_figure(sorted(counts, key=lambda c: c.iterations or 0), title)


def versus_iterations_figure(
    curves: Sequence[Curve], lengths: Sequence[int], title: str
) -> Figure | None:
    """One depth model: ``acc_row`` (max and median over seeds) against the test-time iteration
    count, one line per test length in ``lengths``."""
    counts = sorted(
        (c for c in curves if c.iterations is not None), key=lambda c: c.iterations or 0
    )
    if len(counts) < 2 or not lengths:
        return None
    fig, ax = _new(6.5, 4.2)
    xs = [int(c.iterations or 0) for c in counts]
    for i, n in enumerate(lengths):
        top: list[float | None] = []
        mid: list[float | None] = []
        for c in counts:
            stat = c.by_length[c.lengths.index(n)] if n in c.lengths else None
            top.append(stat.maximum if stat else None)
            mid.append(stat.median if stat else None)
        color = model_color(i)
        ax.plot(xs, _ys(top), "-o", color=color, ms=3, label=f"N={n} (max)")
        ax.plot(xs, _ys(mid), "--", color=color, lw=1.0, label=f"N={n} (median)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("test-time iterations R_test")
    ax.set_ylabel("acc_row")
    ax.set_ylim(-0.03, 1.03)
    ax.axhline(0.9, color="#999999", lw=0.6, ls=":")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return fig
