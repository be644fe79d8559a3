"""The tasks and models of a study, as the report sees them (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """A model of the study: its label, family (None if unknown), options and plot colour."""

    label: str
    family: str | None
    options: dict[str, Any]
    color_index: int


@dataclass(frozen=True)
class TaskInfo:
    """A task of the study: its label, registered name and full parameters (or None)."""

    label: str
    name: str | None
    params: dict[str, Any]
