"""The cost figure: training memory and seconds per step against sequence length.

:func:`cost_figure` draws two log-log panels from :class:`~sepbench.models.cost.CostPoint`
records given as plain dicts (``label``, ``n``, ``saved_bytes``, ``seconds``, ``measured``): left
the bytes saved for backward per example, right the seconds per training step. One colour per
model; measured points filled, extrapolated points hollow; a dashed power law (:func:`power_fit`)
through each model's measured points, its exponent in the legend (``n^a``). numpy and
matplotlib only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sepbench.report.plots import model_color
from sepbench.theory import fit_growth


def power_fit(ns: Sequence[float], values: Sequence[float]) -> tuple[float, float] | None:
    """(c, a) of the power law c·n^a through the points — :func:`sepbench.theory.fit_growth`'s
    (least squares of log value on log n); None with fewer than three distinct n. The exponent
    of a cost that is an offset plus a power of n approaches the power's from below."""
    if len(set(ns)) < 3:
        return None
    params = fit_growth(ns, values, n_boot=0).laws["power"].params
    return params["c"], params["alpha"]


def cost_figure(points: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """Memory (MiB saved for backward per example) and seconds per step against n, log-log."""
    labels = list(dict.fromkeys(str(p["label"]) for p in points))
    fig = Figure(figsize=(12, 5.2))
    axes = fig.subplots(1, 2)
    panels = [
        ("saved_bytes", 1 / 2**20, "MiB saved for backward per example"),
        ("seconds", 1.0, "seconds per training step"),
    ]
    for ax, (key, scale, ylabel) in zip(axes, panels, strict=True):
        for i, label in enumerate(labels):
            color = model_color(i)
            mine = [p for p in points if p["label"] == label]
            meas = [p for p in mine if p["measured"]]
            extra = [p for p in mine if not p["measured"]]
            fit = power_fit([p["n"] for p in meas], [p[key] for p in meas])
            ax.plot(
                [p["n"] for p in meas],
                [p[key] * scale for p in meas],
                "o",
                color=color,
                label=f"{label}  (n^{fit[1]:.2f})" if fit else label,
            )
            if extra:
                ax.plot(
                    [p["n"] for p in extra],
                    [p[key] * scale for p in extra],
                    "o",
                    markerfacecolor="none",
                    color=color,
                )
            if fit:
                grid = np.geomspace(min(p["n"] for p in mine), max(p["n"] for p in mine), 50)
                ax.plot(grid, fit[0] * grid ** fit[1] * scale, "--", color=color, linewidth=0.9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_ylabel(ylabel + " (log)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "training cost against n (hollow: extrapolated past the cap)")
    fig.tight_layout()
    return fig
