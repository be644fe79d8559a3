"""Constructive widths: the smallest width at which a hand-built construction still verifies.

For a registered construction with a width knob (e.g. ``index_lookup_1layer``'s ``addr_dim``),
:func:`constructive_widths` runs :func:`~sepbench.sweep.search.find_min_width` over the knob at
each length — the same doubling-then-bisection rule as the trained-width search, with
"verifies" (:func:`sepbench.constructions.verify.verify`: every input when there are few,
else structured hard inputs and random samples; no errors) in place of "training reached the
threshold" — and reports the construction's width there (e.g. ``⌈log2 k⌉ + 2·addr_dim``).
A construction without a knob (e.g. ``index_lookup_prefix_rnn``, whose width N fixes) is
verified at each N and reported where it passes. The curves are what
:func:`sepbench.report.write_report` draws beside the trained widths.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sepbench.sweep.search import Grid, find_min_width


@dataclass(frozen=True)
class ConstructiveCurve:
    """A construction's smallest verifying width per length (None: none up to the maximum)."""

    name: str
    task: str
    result_id: str
    knob: str | None
    """The builder keyword searched (None: the width is fixed by N)."""
    points: tuple[tuple[int, int | None], ...]
    """(N, construction width) pairs."""
    knobs: tuple[tuple[int, int | None], ...]
    """(N, smallest verifying knob value) pairs."""

    def report_points(self) -> list[tuple[int, int]]:
        """The points a report can draw (lengths where some knob value verified)."""
        return [(n, w) for n, w in self.points if w is not None]


def constructions_for(task: str) -> list[str]:
    """Registered constructions of ``task`` (those with a width knob first)."""
    from sepbench import constructions

    found = [(c.width_knob is None, name) for name, c in constructions.registry().items()]
    return [name for _, name in sorted(found) if constructions.get(name).task == task]


def constructive_widths(
    name: str,
    lengths: Sequence[int],
    params: Mapping[str, Any] | None = None,
    *,
    max_knob: int = 512,
    on_length: Callable[[int, int | None], None] | None = None,
) -> ConstructiveCurve:
    """The smallest verifying width of construction ``name`` at each of ``lengths``.

    With a width knob, the knob is searched over ``1..max_knob``; without one, the
    construction's width is fixed by N and is reported where it verifies (None where it does
    not). ``params`` (e.g. the study's task parameters) go to the builder, those it accepts.
    ``on_length(N, width)`` is called as each length finishes (progress).
    """
    from sepbench import constructions
    from sepbench.constructions.verify import verify

    c = constructions.get(name)
    knob = c.width_knob
    accepted = inspect.signature(c.build).parameters
    base = {k: v for k, v in (params or {}).items() if k in accepted and k != knob}
    points: list[tuple[int, int | None]] = []
    knobs: list[tuple[int, int | None]] = []
    for n in lengths:
        widths: dict[int, int] = {}

        def verifies(k: int, attempt: int, n: int = n, widths: dict[int, int] = widths) -> bool:
            rows = verify(name, [n], params={**base, **({knob: k} if knob else {})})
            widths[k] = rows[0].width
            return all(r.verdict == "pass" for r in rows)

        if knob is None:
            ok = verifies(0, 0)
            width, value = (widths[0] if ok else None), None
        else:
            done, _ = find_min_width(verifies, Grid(1, max_knob), reprobes=0)
            width = None if done.width is None else widths[done.width]
            value = done.width
        points.append((int(n), width))
        knobs.append((int(n), value))
        if on_length is not None:
            on_length(int(n), width)
    return ConstructiveCurve(name, c.task, c.result_id, knob, tuple(points), tuple(knobs))
