"""Shared study specs and helpers for the sweep tests (fake probes only: no training)."""

from __future__ import annotations

import copy
from typing import Any

from sepbench.sweep import StudySpec

BASE: dict[str, Any] = {
    "name": "unit",
    "seed": 7,
    "lengths": [4, 8],
    "seeds": 2,
    "threshold": 0.9,
    "tasks": [{"name": "index_lookup", "params": {"alphabet": 4}}],
    "models": [{"family": "lstm"}, {"family": "tf", "options": {"heads": 2}}],
    "budget": {"steps": 10, "batch_size": 8, "lr": 0.001},
    "width": {"min": 1, "max": 64},
}


def spec_dict(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(overrides))
    return data


def make_spec(**overrides: Any) -> StudySpec:
    return StudySpec.from_dict(spec_dict(**overrides))
