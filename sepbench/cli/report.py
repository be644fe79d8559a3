"""`sepbench report STUDY_DIR_OR_STORE [--out DIR]` — the width-scaling report of a study."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from sepbench.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write the width-scaling report (plots, fits, verdicts) of a study's store",
        description="Read a results store (or a study directory holding one), fit each "
        "(task, model) curve's growth law, set it beside the theorems of the model's class and "
        "write DIR/report.md with PNG and SVG figures. The report directory is replaced "
        "atomically: an interrupted report leaves the previous one intact.",
    )
    p.add_argument(
        "source",
        metavar="STUDY_DIR_OR_STORE",
        help="a results store (.sqlite) or a directory holding exactly one",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="report directory (default: <store directory>/<study store name>-report)",
    )
    p.add_argument(
        "--constructions",
        metavar="FILE.json",
        help='construction widths to draw: {"name": [[N, width], ...]} or '
        '{"name": {"task": ..., "result_id": ..., "points": [[N, width], ...]}} '
        "(default: the widths `sepbench run` measured, constructions.json beside the store)",
    )
    p.add_argument(
        "--precision",
        type=int,
        default=None,
        metavar="BITS",
        help="bits per number used to turn state-bit lower bounds into widths (default 32)",
    )
    p.add_argument(
        "--formats",
        default="png,svg",
        help="figure formats, comma-separated among png, svg, pdf (default png,svg)",
    )
    p.set_defaults(handler=cmd_report)


def _load_constructions(path: str | None) -> Any:
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"constructions file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read constructions file {path!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object {{name: points}}, got {type(data).__name__}")
    return data


def resolve_store(path: str | os.PathLike[str]) -> Path:
    """A store file given a file or a study directory holding exactly one ``*.sqlite``."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{str(p)!r} does not exist (give a results store or a study directory)")
    if p.is_dir():
        stores = sorted(p.glob("*.sqlite"))
        if not stores:
            raise UserError(f"directory {str(p)!r} holds no results store (*.sqlite)")
        if len(stores) > 1:
            names = ", ".join(s.name for s in stores)
            raise UserError(f"directory {str(p)!r} holds {len(stores)} stores ({names}); name one")
        return stores[0]
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from sepbench import report
    from sepbench.sweep import Store
    from sepbench.sweep.constructive import CONSTRUCTIONS_CACHE, cached_curves

    store_path = resolve_store(args.source)
    out = Path(args.out) if args.out else store_path.parent / f"{store_path.stem}-report"
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    kwargs: dict[str, Any] = {"formats": formats}
    if args.precision is not None:
        kwargs["precision_bits"] = args.precision
    with Store.open(store_path) as store:
        kind = store.kind
    if kind != "width":
        from sepbench.report.grids import write_grid_report

        path = write_grid_report(store_path, out, formats)
        print(f"report: {path}")
        return 0
    constructions = _load_constructions(args.constructions)
    with Store.open(store_path) as store:
        if constructions is None and (store_path.parent / CONSTRUCTIONS_CACHE).is_file():
            # what `sepbench run` measured for this study, beside its store
            constructions = cached_curves(store.spec(), store_path.parent) or None
        path = report.write_report(store, out, constructions, **kwargs)
    data = json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
    for pair in data["pairs"]:
        law = pair["best_law"] or "no fit"
        each = "; ".join(f"{v['result_id']} {v['outcome']}" for v in pair["verdicts"])
        line = f"{pair['task']} / {pair['model']}: {law}; {pair['outcome']}"
        print(line + (f" ({each})" if each else ""))
    print(f"report: {path}")
    return 0
