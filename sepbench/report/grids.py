"""The report of a grid study's store, by its kind (``capacity``: :mod:`.capacity_report`,
``lengthgen``: :mod:`.lengthgen_report`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sepbench.errors import UserError
from sepbench.report import plots


def write_grid_report(
    store_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] = plots.FORMATS,
) -> Path:
    """Write the report of the grid study stored at ``store_path`` into ``out_dir``; returns
    its report.md (UserError for a width-search store or an unknown kind)."""
    from sepbench.sweep.store import Store

    with Store.open(store_path) as store:
        kind = store.kind
    if kind == "capacity":
        from sepbench.report.capacity_report import write_capacity_report

        return write_capacity_report(store_path, out_dir, formats=formats)
    if kind == "lengthgen":
        from sepbench.report.lengthgen_report import write_lengthgen_report

        return write_lengthgen_report(store_path, out_dir, formats=formats)
    raise UserError(f"{store_path}: no report for study kind {kind!r}")
