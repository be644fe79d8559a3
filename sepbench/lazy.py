"""Lazy package attributes: names a package exports but imports only on first use.

A package whose submodules are heavy (torch, pydantic) keeps ``import package`` cheap by
listing ``{name: submodule}`` and installing the two module hooks this returns::

    __getattr__, __dir__ = lazy.attributes(__name__, _EXPORTS, _MODULES, __all__)

Plain Python only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any


def attributes(
    package: str,
    exports: Mapping[str, str],
    modules: Collection[str],
    public: Collection[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: an exported name is imported from its
    submodule on first access (and cached in the package); a submodule name imports it."""

    def getattr_(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public) | set(modules))

    return getattr_, dir_
