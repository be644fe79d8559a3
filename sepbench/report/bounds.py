"""A theorem's bound as a curve in the searched width's units, beside a measured curve.

Every number comes from the catalogue (:mod:`sepbench.theory`): the result's formulas, its
formula texts, and the N its formulas take for the study's task (a task may fix it from its
parameters: B24-T8 on mqar, N = 2P). The theorem's parameters come from the task's parameters
and from the model's options through its family card (:mod:`sepbench.models.cards`: attention
heads, H20's cell). A lower bound on the state (RNN classes) becomes a width by dividing by
the model's state numbers per unit of width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sepbench import theory
from sepbench.errors import UserError
from sepbench.models import cards
from sepbench.report.infos import ModelInfo, TaskInfo

if TYPE_CHECKING:
    from sepbench.sweep.summary import WidthRow


@dataclass(frozen=True)
class BoundCurve:
    """A theorem's width at each N, in the searched width's units.

    ``result_id`` may name several results ("B24-T3 = W24-R") when their curves coincide.
    """

    result_id: str
    side: str
    """``"upper"`` (construction width) or ``"lower"`` (smallest width allowed)."""
    form: str
    exact: bool
    lengths: tuple[int, ...]
    widths: tuple[float, ...]
    formula: str
    precision_bits: int
    conversion: str = ""
    """How a state lower bound became a width (e.g. ``÷2: LSTM state = 2 × hidden``)."""

    @property
    def label(self) -> str:
        what = "construction width" if self.side == "upper" else "lower bound"
        shape = "" if self.exact or "form only" in self.conversion else " (form only)"
        conv = f"; {self.conversion}" if self.conversion else ""
        return f"{self.result_id} {what}{shape}: {self.formula} (p={self.precision_bits}{conv})"


def merge_bounds(curves: Sequence[BoundCurve]) -> list[BoundCurve]:
    """Curves of several results that coincide (same side and values) drawn once."""
    out: list[BoundCurve] = []
    for c in curves:
        for i, o in enumerate(out):
            if (
                o.side == c.side
                and o.lengths == c.lengths
                and np.allclose(o.widths, c.widths, rtol=1e-9, atol=0)
            ):
                out[i] = replace(o, result_id=f"{o.result_id} = {c.result_id}")
                break
        else:
            out.append(c)
    return out


def theorem_length(result: theory.Result, task: TaskInfo, length: int) -> int:
    """The N ``result``'s formulas take for the study's N = ``length`` on ``task``."""
    if task.name is None:
        return length
    return result.theorem_length(task.name, length, task.params)


def result_params(result: theory.Result, task: TaskInfo, model: ModelInfo) -> dict[str, Any]:
    """The result's parameters: those of the task's parameters it accepts, and those the
    model's options fix (its family card's theorem parameters)."""
    accepted = {p.name for p in result.params}
    out = {k: v for k, v in task.params.items() if k in accepted}
    if model.family in cards.CARDS:
        fixed = cards.card(model.family).theorem_params(model.options)
        out.update({k: v for k, v in fixed.items() if k in accepted})
    return out


def bound_curves(
    result: theory.Result,
    task: TaskInfo,
    model: ModelInfo,
    factor: float,
    note: str,
    lengths: Sequence[int],
    p: int,
) -> tuple[list[BoundCurve], str | None]:
    """The result's curves (upper and/or lower side) on a dense grid spanning ``lengths``, in
    width units (a lower bound divided by ``factor``, the state numbers per width unit, with
    ``note`` its rule); or no curve and the reason when the bound cannot be evaluated."""
    if not lengths:
        return [], None
    params = result_params(result, task, model)
    grid = length_grid(lengths)
    curves: list[BoundCurve] = []
    sides: list[tuple[Literal["upper", "lower"], Any]] = []
    if result.direction in ("upper", "tight"):
        sides.append(("upper", result.width_bound))
    if result.direction in ("lower", "tight"):
        sides.append(("lower", result.lower_width))
    for side, fn in sides:
        try:
            values = [fn(theorem_length(result, task, n), p, **params) for n in grid]
        except UserError as exc:
            return [], f"{result.id}: bound not drawn ({exc})"
        widths = [float(v) for v in values]
        conv = ""
        if side == "lower" and factor != 1.0:
            widths = [w / factor for w in widths]
            conv = f"÷{factor:g}: {note}"
        curves.append(
            BoundCurve(
                result.id,
                side,
                result.form,
                result.exact,
                tuple(grid),
                tuple(widths),
                result.formula_of(side),
                p,
                conv,
            )
        )
    return curves, None


def length_grid(lengths: Sequence[int]) -> list[int]:
    """The measured N (≥ 2) and a dense geometric grid of 48 between them: where bounds are
    drawn."""
    lo, hi = max(2, min(lengths)), max(2, max(lengths))
    dense = np.unique(np.round(np.geomspace(lo, hi, 48)).astype(int)) if hi > lo else [lo]
    return sorted({int(n) for n in dense} | {n for n in lengths if n >= 2})


def anchor_form_only(bounds: Sequence[BoundCurve], rows: Sequence[WidthRow]) -> list[BoundCurve]:
    """Scale curves that fix only the form (``exact=False``) to meet the measured median at the
    smallest N: their constants are not the theorem's, so only the shape is compared."""
    first = min((r for r in rows if r.median is not None), key=lambda r: r.length, default=None)
    out = []
    for b in bounds:
        if b.exact or first is None or first.length not in b.lengths:
            out.append(b)
            continue
        at = b.widths[b.lengths.index(first.length)]
        if at <= 0:
            out.append(b)
            continue
        k = float(first.median or 0) / at
        note = f"form only: scaled to the median at N={first.length}"
        conv = f"{b.conversion}; {note}" if b.conversion else note
        out.append(replace(b, widths=tuple(w * k for w in b.widths), conversion=conv))
    return out
