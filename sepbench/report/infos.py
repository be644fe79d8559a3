"""The tasks and models of a study, as the report sees them (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """A model of the study: its label, family (None if unknown), options, plot colour, and
    the widths its searches probe (``grid``, increasing; ``grid_text`` describes the grid)."""

    label: str
    family: str | None
    options: dict[str, Any]
    color_index: int
    grid: tuple[int, ...] = ()
    grid_text: str = ""


@dataclass(frozen=True)
class TaskInfo:
    """A task of the study: its label, registered name and full parameters (or None)."""

    label: str
    name: str | None
    params: dict[str, Any]
