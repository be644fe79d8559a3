"""Constructive widths at a study's lengths: what `sepbench run` draws beside trained widths.

For a construction with a width knob (e.g. ``index_lookup_1layer``'s ``addr_dim``) this is
:func:`sepbench.constructions.curves.width_curve`: the smallest knob value accepted at each N
(its structural hypotheses hold and it answers every position's hard input, on the same rows
at every N; the answer does not depend on other lengths, so it equals docs/constructions.md's)
and the construction's width there (e.g. ``⌈log2 k⌉ + 2·addr_dim``). A construction without a
knob (e.g. ``index_lookup_prefix_rnn``, whose width N fixes) is verified at each N
(:func:`sepbench.constructions.verify.verify`) and reported where it passes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    on_length: Callable[[int, int | None], None] | None = None,
) -> ConstructiveCurve:
    """The construction's (smallest verifying) width at each of ``lengths``.

    ``params`` (e.g. the study's task parameters) go to the builder, those it accepts.
    ``on_length(N, width)`` is called as each length finishes (progress).
    """
    from sepbench import constructions
    from sepbench.constructions.curves import width_curve
    from sepbench.constructions.verify import verify

    c = constructions.get(name)
    knob = c.width_knob
    accepted = inspect.signature(c.build).parameters
    base = {k: v for k, v in (params or {}).items() if k in accepted and k != knob}
    points: list[tuple[int, int | None]] = []
    knobs: list[tuple[int, int | None]] = []
    for n in lengths:
        if knob is None:
            rows = verify(name, [int(n)], params=base)
            ok = all(r.verdict == "pass" for r in rows)
            width, value = (rows[0].width if ok else None), None
        else:
            (point,) = width_curve(name, [int(n)], params=base).points
            width, value = point.width, point.knob
        points.append((int(n), width))
        knobs.append((int(n), value))
        if on_length is not None:
            on_length(int(n), width)
    return ConstructiveCurve(name, c.task, c.result_id, knob, tuple(points), tuple(knobs))


CONSTRUCTIONS_CACHE = "constructions.json"
"""The constructive widths ``sepbench run`` measured, beside the study's store."""


def cache_key(name: str, params: dict[str, Any], lengths: list[int]) -> str:
    return json.dumps([name, params, lengths], sort_keys=True)


def read_cache(folder: Path) -> dict[str, Any]:
    try:
        cache = json.loads((folder / CONSTRUCTIONS_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def cached_curves(spec: Any, folder: Path) -> dict[str, dict[str, Any]]:
    """The curves of ``folder/constructions.json`` that belong to ``spec`` (its tasks with their
    parameters, its lengths), in the form the report draws: ``{name: {task, result_id,
    points}}``. ``sepbench report`` uses it so a re-rendered report keeps the constructions."""
    cache = read_cache(folder)
    lengths = sorted(spec.lengths)
    curves: dict[str, dict[str, Any]] = {}
    for task, _ in spec.task_labels():
        for name in constructions_for(task.name):
            entry = cache.get(cache_key(name, task.params, lengths))
            if not isinstance(entry, dict):
                continue
            points = [(n, w) for n, w in entry["points"] if w is not None]
            if points:
                curves[name] = {
                    "task": entry["task"],
                    "result_id": entry["result_id"],
                    "points": points,
                }
    return curves
