"""Construction widths passed to a report, normalised into :class:`ConstructionCurve` records."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sepbench import theory
from sepbench.errors import UserError


@dataclass(frozen=True)
class ConstructionCurve:
    """The smallest verifying width of a hand-built construction at each N."""

    name: str
    task: str
    result_id: str
    points: tuple[tuple[int, float], ...]

    @property
    def model_classes(self) -> tuple[str, ...]:
        """The classes its result applies to (the catalogue's)."""
        return theory.get(self.result_id).model_classes


def construction_curves(data: Any) -> list[ConstructionCurve]:
    """Normalise construction widths passed to the report.

    Accepted: a mapping ``{name: [(N, width), ...]}`` (the task and result are looked up in
    :func:`sepbench.constructions.registry`), ``{name: {"task", "result_id", "points"}}``, or
    any iterable of objects with ``name``, ``task``, ``result_id`` and ``points`` attributes
    (e.g. :class:`ConstructionCurve`). Bad data, or a result the catalogue does not hold, is a
    UserError naming the construction.
    """
    if data is None:
        return []
    out: list[ConstructionCurve] = []
    if isinstance(data, Mapping):
        items: Iterable[Any] = data.items()
    else:
        items = [(getattr(c, "name", None), c) for c in data]
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise UserError(f"constructions: every curve needs a name, got {name!r}")
        if isinstance(value, Mapping):
            task, rid, points = value.get("task"), value.get("result_id"), value.get("points")
        elif hasattr(value, "points"):
            task = getattr(value, "task", None)
            rid = getattr(value, "result_id", None)
            points = value.points
        else:
            task, rid, points = None, None, value
        if task is None or rid is None:
            task, rid = _registered(name)
        if not isinstance(task, str) or not isinstance(rid, str):
            raise UserError(f"construction '{name}': task and result_id must be names")
        theory.get(rid)  # UserError: unknown result, naming the known ones
        out.append(ConstructionCurve(name, task, rid, _points(name, points)))
    return out


def _registered(name: str) -> tuple[str, str]:
    try:
        from sepbench import constructions
    except ImportError as exc:  # pragma: no cover - torch missing
        raise UserError(f"construction '{name}': cannot look it up ({exc})") from None
    reg = constructions.registry()
    if name not in reg:
        known = ", ".join(reg) or "none registered"
        raise UserError(
            f"construction '{name}' is not registered (known: {known}); pass "
            '{"task": ..., "result_id": ..., "points": [...]} for it'
        )
    return reg[name].task, reg[name].result_id


def _points(name: str, points: Any) -> tuple[tuple[int, float], ...]:
    try:
        pts = tuple((int(n), float(w)) for n, w in points)
    except (TypeError, ValueError):
        raise UserError(
            f"construction '{name}': points must be (N, width) pairs, got {points!r}"[:200]
        ) from None
    if not pts or any(n < 1 or not math.isfinite(w) or w < 0 for n, w in pts):
        raise UserError(f"construction '{name}': need (N >= 1, finite width >= 0) pairs")
    return tuple(sorted(pts))
