"""Constructive widths at a study's lengths: what `sepbench run` draws beside trained widths.

Both ends of the cache ``constructions.json`` (beside a study's store) live here:
:func:`measure_study` measures what it lacks and writes it, :func:`cached_curves` reads it
back for ``sepbench report``; :func:`report_curves` gives either the form the report draws.

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
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
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

    def to_json(self) -> dict[str, Any]:
        """The cache entry (JSON-able)."""
        return {
            "name": self.name,
            "task": self.task,
            "result_id": self.result_id,
            "knob": self.knob,
            "points": [list(p) for p in self.points],
            "knobs": [list(p) for p in self.knobs],
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> ConstructiveCurve:
        def pairs(key: str) -> tuple[tuple[int, int | None], ...]:
            return tuple((int(n), None if w is None else int(w)) for n, w in entry[key])

        return cls(
            entry["name"],
            entry["task"],
            entry["result_id"],
            entry["knob"],
            pairs("points"),
            pairs("knobs"),
        )


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


def measure_study(
    spec: Any, folder: Path, *, progress: bool = False
) -> dict[str, list[ConstructiveCurve]]:
    """The constructive widths of every registered construction of the study's tasks at the
    study's lengths, ``{task label: [curve, ...]}`` (an empty list: the task has no
    construction). What ``folder/constructions.json`` lacks is measured (with a progress bar
    per construction when ``progress``) and written there as soon as it is known, so a killed
    run keeps what it measured."""
    cache = read_cache(folder)
    lengths = sorted(spec.lengths)
    found: dict[str, list[ConstructiveCurve]] = {}
    for task, label in spec.task_labels():
        found[label] = []
        for name in constructions_for(task.name):
            key = cache_key(name, task.params, lengths)
            if key not in cache:
                cache[key] = _measure(name, lengths, task.params, progress).to_json()
                folder.mkdir(parents=True, exist_ok=True)
                (folder / CONSTRUCTIONS_CACHE).write_text(
                    json.dumps(cache, indent=1) + "\n", encoding="utf-8"
                )
            found[label].append(ConstructiveCurve.from_json(cache[key]))
    return found


def _measure(
    name: str, lengths: list[int], params: dict[str, Any], progress: bool
) -> ConstructiveCurve:
    if not progress:
        return constructive_widths(name, lengths, params)
    from tqdm.auto import tqdm

    with tqdm(total=len(lengths), desc=f"construction {name}", unit="N", file=sys.stderr) as bar:

        def tick(n: int, width: int | None) -> None:
            bar.set_postfix_str(f"N={n}: width {width}", refresh=False)
            bar.update(1)

        return constructive_widths(name, lengths, params, on_length=tick)


def report_curves(curves: Iterable[ConstructiveCurve]) -> dict[str, dict[str, Any]]:
    """Curves in the form the report draws: ``{name: {task, result_id, points}}``, the
    lengths where the construction verified (a curve with none is left out)."""
    out: dict[str, dict[str, Any]] = {}
    for curve in curves:
        points = curve.report_points()
        if points:
            out[curve.name] = {"task": curve.task, "result_id": curve.result_id, "points": points}
    return out


def cached_curves(spec: Any, folder: Path) -> dict[str, dict[str, Any]]:
    """The curves of ``folder/constructions.json`` that belong to ``spec`` (its tasks with their
    parameters, its lengths), in the form the report draws (:func:`report_curves`).
    ``sepbench report`` uses it so a re-rendered report keeps the constructions."""
    cache = read_cache(folder)
    lengths = sorted(spec.lengths)
    found = []
    for task, _ in spec.task_labels():
        for name in constructions_for(task.name):
            entry = cache.get(cache_key(name, task.params, lengths))
            if isinstance(entry, dict):
                found.append(ConstructiveCurve.from_json(entry))
    return report_curves(found)
