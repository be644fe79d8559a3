"""The flat tables of a store — ``trials``, ``searches``, ``widths`` — as CSV or a DataFrame.

``trials`` are the stored rows (:data:`~sepbench.sweep.store.TRIAL_COLUMNS`); ``searches`` and
``widths`` come from the store's summary (:func:`~sepbench.sweep.summary.summarize`). This
module reads both the store and the summary, which therefore never import each other.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sepbench.errors import UserError
from sepbench.sweep import TABLES
from sepbench.sweep.store import TRIAL_COLUMNS, Store
from sepbench.sweep.summary import summarize


def table_rows(store: Store, table: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(columns, rows) of ``trials``, ``searches`` or ``widths``."""
    if table == "trials":
        return TRIAL_COLUMNS, [tuple(r.flat()[c] for c in TRIAL_COLUMNS) for r in store.records()]
    summary = summarize(store)
    if table == "searches":
        cols = (
            "task", "model", "length", "replicate", "status", "width", "max_width", "probes",
            "violations", "consistent", "search_key",
        )  # fmt: skip
        rows = []
        for s in summary.searches:
            d = asdict(s)
            d["violations"] = ";".join(f"{a}<{b}" for a, b in s.violations)
            rows.append(tuple(d[c] for c in cols))
        return cols, rows
    if table == "widths":
        wcols = (
            "task", "model", "length", "median", "low", "high", "median_censored",
            "low_censored", "high_censored", "seeds", "finished", "censored", "violations",
            "max_width",
        )  # fmt: skip
        return wcols, [tuple(asdict(r)[c] for c in wcols) for r in summary.rows]
    raise UserError(f"unknown table '{table}'; known: {', '.join(TABLES)}")


def write_csv(store: Store, path: str | os.PathLike[str] | None, table: str = "trials") -> int:
    """CSV of a table to ``path`` (written atomically) or to stdout; returns the row count."""
    columns, rows = table_rows(store, table)
    return write_rows(columns, rows, path)


def write_rows(
    columns: tuple[str, ...], rows: list[tuple[Any, ...]], path: str | os.PathLike[str] | None
) -> int:
    """``columns`` and ``rows`` as CSV to ``path`` (written atomically) or to stdout (None or
    ``-``); returns the row count."""
    if path is None or str(path) == "-":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return len(rows)
    dest = Path(path)
    if not dest.parent.is_dir():
        raise UserError(
            f"cannot write {str(dest)!r}: directory {str(dest.parent)!r} does not exist"
        )
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {str(dest)!r}: {exc.strerror}") from None
    return len(rows)


def to_dataframe(store: Store, table: str = "trials") -> Any:
    """The ``trials``, ``searches`` or ``widths`` table as a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError:
        raise UserError("DataFrame export needs pandas: pip install pandas") from None
    columns, rows = table_rows(store, table)
    return pd.DataFrame(rows, columns=list(columns))
