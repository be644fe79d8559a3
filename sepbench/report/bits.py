"""The state-bits axis: for a study with bounded precision, the minimal state *bits* the RNN
pairs needed against N, beside the theorems' lower bounds in bits (issue 11).

The RNN lower bounds are statements about bits: B24-T3 / W24-R say m·p ≥ N·log2 k, so the
natural axis for an RNN run at p bits per number is its state in bits, m·p = s·w·p (s state
numbers per unit of width, from the trials' facts; w the searched width; p the pair's own bits
per number, :attr:`PairData.precision_bits`). In bits the exact bound is one line for every p,
and the measured curves of p = 1, 2, 4 must all stay above it. The error-allowed bound at the
study's threshold (``theory.Result.error_lower_width``, Fano) is the line a model judged at
average accuracy ≥ the threshold must stay above — the line the verdicts check.

Transformers carry no fixed state (their cache grows with N), so they are set beside the RNNs
by width, with their precision stated (``precision_bits`` p, or float32).

Computed here, drawn by :mod:`sepbench.report.bits_plots`; built only where some pair of the
task has bounded precision, so an unbounded study's report is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sepbench import theory
from sepbench.errors import UserError
from sepbench.report.bounds import length_grid, result_params, theorem_length
from sepbench.report.data import PairData
from sepbench.report.infos import TaskInfo


@dataclass(frozen=True)
class Series:
    """One pair's minimal sizes against N: ``unit`` is ``"bits"`` (an RNN: s·w·p) or
    ``"width"`` (a Transformer)."""

    model: str
    color_index: int
    precision_bits: int | None
    """The pair's bits per number; None: unbounded float32."""
    per_width: float
    """Plotted units per unit of width: s·p for an RNN (bits), 1 for a Transformer."""
    points: tuple[tuple[int, float], ...]
    """(N, value) per seed whose search found a width."""
    censored: tuple[tuple[int, float], ...]
    """(N, value at the search maximum) per censored seed: the true value lies above."""
    medians: tuple[tuple[int, float, bool], ...]
    """(N, median value, censored?) per N with a finished search (a censored median drawn
    at the maximum)."""

    @property
    def precision_text(self) -> str:
        return "float32" if self.precision_bits is None else f"p = {self.precision_bits}"


@dataclass(frozen=True)
class BitsBound:
    """A lower bound in bits at each N: exact (worst case) and error-allowed."""

    result_id: str
    formula: str
    lengths: tuple[int, ...]
    bits: tuple[float, ...]
    error: float | None
    """The allowed average error ε of the error-allowed form (1 − threshold); None when the
    study's success is exact or the result has no such form."""
    error_bits: tuple[float, ...] | None
    error_formula: str | None
    precision_bits: tuple[int, ...]
    """The p at which it was evaluated (one bound in bits for every p where they coincide)."""

    def at(self, n: int, error_allowed: bool = False) -> float | None:
        """The bound in bits at a drawn N (None off the grid or without that form)."""
        values = self.error_bits if error_allowed else self.bits
        if values is None or n not in self.lengths:
            return None
        return values[self.lengths.index(n)]


@dataclass(frozen=True)
class BitsAxis:
    """A task's state-bits axis: the RNN pairs in bits, their bounds, the Transformers."""

    task: TaskInfo
    rnns: tuple[Series, ...]
    bounds: tuple[BitsBound, ...]
    attention: tuple[Series, ...]

    def table(self) -> list[tuple[int, list[str], str, str]]:
        """Per N: each RNN's median bits (``>x`` when censored), the exact bound and the
        error-allowed one in bits (the first bound's; "—" where not drawn)."""
        lengths = sorted({n for s in self.rnns for n, _, _ in s.medians})
        out = []
        first = self.bounds[0] if self.bounds else None
        for n in lengths:
            cells = []
            for s in self.rnns:
                hit = [(v, c) for m, v, c in s.medians if m == n]
                cells.append("—" if not hit else (">" if hit[0][1] else "") + f"{hit[0][0]:g}")
            exact = first.at(n) if first else None
            allowed = first.at(n, error_allowed=True) if first else None
            out.append(
                (
                    n,
                    cells,
                    "—" if exact is None else f"{exact:.3g}",
                    "—" if allowed is None else f"{allowed:.3g}",
                )
            )
        return out


def bits_axis(
    task: TaskInfo, pairs: Sequence[PairData], success: theory.Success
) -> BitsAxis | None:
    """The task's state-bits axis, or None when no pair of it has bounded precision."""
    mine = [p for p in pairs if p.task.label == task.label]
    if not any(p.bounded for p in mine):
        return None
    rnns = [p for p in mine if p.model_class in theory.STATE_CLASSES]
    others = [p for p in mine if p.model_class is not None and p not in rnns]
    lengths = sorted({r.length for p in rnns for r in p.rows})
    return BitsAxis(
        task=task,
        rnns=tuple(_series(p, p.state_factor * p.precision_bits) for p in rnns),
        bounds=tuple(_bounds(task, rnns, lengths, success)),
        attention=tuple(_series(p, 1.0) for p in others),
    )


def _series(pair: PairData, per_width: float) -> Series:
    done, widths, cens_n, cens_w = pair.seed_points()
    medians = tuple(
        (r.length, (r.max_width if r.median is None else r.median) * per_width, r.median_censored)
        for r in pair.rows
        if r.finished
    )
    return Series(
        model=pair.model.label,
        color_index=pair.model.color_index,
        precision_bits=pair.precision_bits if pair.bounded else None,
        per_width=per_width,
        points=tuple((n, w * per_width) for n, w in zip(done, widths, strict=True)),
        censored=tuple((n, w * per_width) for n, w in zip(cens_n, cens_w, strict=True)),
        medians=medians,
    )


def _bounds(
    task: TaskInfo, pairs: Sequence[PairData], lengths: Sequence[int], success: theory.Success
) -> list[BitsBound]:
    """Every lower bound of the pairs' classes in bits (lower_width × p: the state numbers it
    asks for times the bits each carries) at each pair's p; curves that coincide in bits (B24-
    T3's m·p ≥ N at every p) are drawn once, naming every p."""
    if task.name is None or not lengths:
        return []
    grid = length_grid(lengths)
    error = None if success.worst_case else success.error
    out: list[BitsBound] = []
    for pair in pairs:
        if pair.model_class is None:
            continue
        p = pair.precision_bits
        for r in theory.for_task(task.name, pair.model_class):
            if r.direction not in ("lower", "tight"):
                continue
            params = result_params(r, task, pair.model)
            try:
                exact = [_bits(r.lower_width(theorem_length(r, task, n), p, **params), p)
                         for n in grid]  # fmt: skip
                allowed = None
                if error is not None and r.error_fn is not None:
                    allowed = tuple(
                        _bits(
                            r.error_lower_width(
                                theorem_length(r, task, n), p, error=error, **params
                            ),
                            p,
                        )
                        for n in grid
                    )
            except UserError:
                continue
            bound = BitsBound(
                r.id,
                r.formula_of("lower"),
                tuple(grid),
                tuple(exact),
                error if allowed is not None else None,
                allowed,
                r.error_formula if allowed is not None else None,
                (p,),
            )
            out = _merge(out, bound)
    return out


def _bits(numbers: float | None, p: int) -> float:
    return float("nan") if numbers is None else float(numbers) * p


def _merge(bounds: list[BitsBound], new: BitsBound) -> list[BitsBound]:
    """Add ``new``, folding it into an equal curve (same values; another result or p)."""
    for i, b in enumerate(bounds):
        same_error = (b.error_bits is None) == (new.error_bits is None) and (
            b.error_bits is None
            or np.allclose(b.error_bits, new.error_bits or (), rtol=1e-9, equal_nan=True)
        )
        if (
            b.lengths == new.lengths
            and np.allclose(b.bits, new.bits, rtol=1e-9, equal_nan=True)
            and same_error
        ):
            ids = b.result_id if new.result_id in b.result_id.split(" = ") else (
                f"{b.result_id} = {new.result_id}"
            )  # fmt: skip
            ps = tuple(sorted(set(b.precision_bits) | set(new.precision_bits)))
            bounds[i] = BitsBound(
                ids, b.formula, b.lengths, b.bits, b.error, b.error_bits, b.error_formula, ps
            )
            return bounds
    return [*bounds, new]
