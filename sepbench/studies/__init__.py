"""Study kinds beyond the width search, and the one place that tells the kinds apart.

A study spec's ``kind`` key names its kind: ``width`` (the default; the minimal-width search,
:class:`sepbench.sweep.StudySpec`) or a *grid* kind (:mod:`sepbench.studies.grid`: train once
per cell, evaluate on a grid of points) — today ``capacity`` (:mod:`sepbench.studies.capacity`,
SM24's state capacity and collapse) and ``lengthgen`` (:mod:`sepbench.studies.lengthgen`, train
short / test long). :func:`load_study` reads a TOML file of any kind,
:func:`shipped` / :func:`load_shipped` the grid studies shipped in
``sepbench/studies/specs/``, :func:`stored_spec` the spec of a grid study's store, and
:func:`default_probe` gives a kind's probe (what trains and evaluates one trial).

Imports are deferred to the functions, so ``sepbench --help`` pays for none of this.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepbench.errors import UserError

if TYPE_CHECKING:
    from sepbench.studies.grid import GridStudy
    from sepbench.sweep.executors import ProbeFn
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.store import Store

GRID_KINDS = ("capacity", "lengthgen")
"""The grid study kinds (a spec's ``kind``); ``width`` is the sweep's."""


def grid_class(kind: str) -> type[GridStudy]:
    """The spec class of a grid kind (UserError for an unknown kind)."""
    if kind == "capacity":
        from sepbench.studies.capacity import CapacitySpec

        return CapacitySpec
    if kind == "lengthgen":
        from sepbench.studies.lengthgen import LengthgenSpec

        return LengthgenSpec
    raise UserError(f"unknown study kind {kind!r}; known: width, {', '.join(GRID_KINDS)}")


def from_dict(data: dict[str, Any], source: str = "study spec") -> StudySpec | GridStudy:
    """A spec of any kind from plain data (its ``kind`` key; default ``width``)."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a table of keys, got {type(data).__name__}")
    kind = data.get("kind", "width")
    if kind == "width":
        from sepbench.sweep.spec import StudySpec

        return StudySpec.from_dict(data, source)
    if not isinstance(kind, str):
        raise UserError(f"{source}: kind must be a string, got {kind!r}")
    return grid_class(kind).from_dict(data, source)


def load_study(path: str | os.PathLike[str]) -> StudySpec | GridStudy:
    """Read and validate a study spec file of any kind."""
    from sepbench.sweep.spec import read_toml

    return from_dict(read_toml(path), source=str(path))


def _folder() -> Any:
    return importlib.resources.files("sepbench.studies").joinpath("specs")


def shipped() -> list[str]:
    """Names of the grid studies shipped in ``sepbench/studies/specs/``."""
    return sorted(p.name[:-5] for p in _folder().iterdir() if p.name.endswith(".toml"))


def load_shipped(name: str) -> GridStudy:
    """A shipped grid study by name."""
    if name not in shipped():
        raise UserError(f"unknown shipped grid study '{name}'; shipped: {', '.join(shipped())}")
    from sepbench.studies.grid import GridStudy

    with importlib.resources.as_file(_folder().joinpath(f"{name}.toml")) as path:
        spec = load_study(Path(path))
    if not isinstance(spec, GridStudy):
        raise UserError(f"shipped study '{name}' is not a grid study (kind '{spec.kind}')")
    return spec


def stored_spec(store: Store) -> GridStudy:
    """The grid spec a store was created for (UserError for a width-search store)."""
    kind = store.kind
    if kind == "width":
        raise UserError(f"{store.path} holds a width search, not a grid study")
    return grid_class(kind).from_dict(store.spec_data(), source=f"{store.path} (spec)")


def default_probe(spec: GridStudy, device: str | None = None) -> ProbeFn:
    """The probe that trains and evaluates one trial of ``spec``'s kind."""
    if spec.kind == "capacity":
        from sepbench.studies.capacity_probe import CapacityProbe

        return CapacityProbe(device=device)
    if spec.kind == "lengthgen":
        from sepbench.studies.lengthgen_probe import LengthgenProbe

        return LengthgenProbe(device=device)
    raise UserError(f"no probe for study kind {spec.kind!r}")  # pragma: no cover
