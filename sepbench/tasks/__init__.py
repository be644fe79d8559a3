"""Task generators: the synthetic problems the separation theorems are about.

>>> from sepbench import tasks
>>> task = tasks.make("dyck", types=2, depth=2)
>>> batch = task.sample(length=16, batch_size=4, seed=0)
>>> batch.inputs.shape[0]
4

Each family lives in its own module (``sepbench.tasks.<module>``); the registry maps task
names to classes and imports a module only when its task is first used. numpy only.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from sepbench.errors import UserError
from sepbench.tasks.base import IGNORE, Batch, Param, Task

__all__ = ["IGNORE", "Batch", "Param", "Task", "get_class", "make", "names"]

_REGISTRY: dict[str, tuple[str, str]] = {
    "index_lookup": ("index_lookup", "IndexLookup"),
    "associative_recall": ("recall", "AssociativeRecall"),
    "mqar": ("recall", "MQAR"),
    "dyck": ("dyck", "Dyck"),
    "dyck_next": ("dyck", "DyckNext"),
    "string_equality": ("strings", "StringEquality"),
    "string_equality_lm": ("strings", "StringEqualityLM"),
    "disjointness": ("strings", "Disjointness"),
    "nearest_neighbor": ("nearest_neighbor", "NearestNeighbor"),
    "is_tree": ("is_tree", "IsTree"),
    "passkey": ("passkey", "Passkey"),
    "addition": ("addition", "Addition"),
    "prefix_sums": ("prefix_sums", "PrefixSums"),
    # wave 2: ListOps (tasks-wave2.md)
    "listops": ("listops", "ListOps"),
}
_MODULES = sorted({module for module, _ in _REGISTRY.values()})


def names() -> list[str]:
    """The registered task names, in a stable order."""
    return list(_REGISTRY)


def get_class(name: str) -> type[Task]:
    """The Task subclass registered under ``name``."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown task '{name}'; known tasks: {', '.join(_REGISTRY)}") from None
    task_cls: type[Task] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return task_cls


def make(name: str, **params: Any) -> Task:
    """Build task ``name`` with validated parameters (unknown/invalid -> ValueError)."""
    return get_class(name)(**params)


def __getattr__(attr: str) -> ModuleType:
    # `tasks.is_tree.retrieve(...)` works without importing the submodule first.
    if attr in _MODULES:
        return importlib.import_module(f"{__name__}.{attr}")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
