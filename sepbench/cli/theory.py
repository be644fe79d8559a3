"""`sepbench theory`: the catalogue of results and their bounds.

sepbench theory list [--task TASK] [--model CLASS]
sepbench theory show ID
sepbench theory bound ID --length N [--precision P] [--param k=v ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sepbench import theory
from sepbench.docgen.theory import EXAMPLE_HEADER, example_rows, fields, fmt
from sepbench.errors import UserError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "theory",
        help="the theorems: list results, show one, compute a bound",
        description="The catalogue of separation results (B24, W24, H20, Y21) and their bounds.",
    )
    sub = parser.add_subparsers(dest="theory_command", metavar="COMMAND", parser_class=type(parser))
    sub.required = True

    p_list = sub.add_parser("list", help="table of results: id, task, model, direction, form")
    p_list.add_argument("--task", help="only results about this task")
    p_list.add_argument("--model", help="only results for this model class (needs --task)")
    p_list.set_defaults(handler=cmd_list)

    p_show = sub.add_parser("show", help="every field of one result, with example bounds")
    p_show.add_argument("id", help="result id, e.g. B24-T3")
    p_show.set_defaults(handler=cmd_show)

    p_bound = sub.add_parser("bound", help="the width a result implies at one length")
    p_bound.add_argument("id", help="result id, e.g. B24-T3")
    p_bound.add_argument("--length", type=int, required=True, help="problem size N")
    p_bound.add_argument(
        "--precision",
        type=int,
        default=None,
        help="bits per number p (default ceil(log2 N) + 8)",
    )
    p_bound.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a parameter of the bound, e.g. alphabet=4 (repeatable)",
    )
    p_bound.set_defaults(handler=cmd_bound)


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    if args.task is not None:
        chosen = theory.for_task(args.task, args.model)
    elif args.model is not None:
        raise UserError("--model filters the results of one task: give --task as well")
    else:
        chosen = theory.results()
    rows = [(r.id, ", ".join(r.tasks), r.model_class, r.direction, r.form) for r in chosen]
    for line in _columns(("id", "task", "model", "direction", "form"), rows):
        print(line)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    result = theory.get(args.id)
    items = fields(result)
    pad = max(len(label) for label, _ in items)
    for label, text in items:
        print(f"{label.ljust(pad)}  {text}")
    print()
    print("example values (default precision p = ceil(log2 N) + 8, default parameters):")
    for line in _columns(EXAMPLE_HEADER, example_rows(result)):
        print("  " + line)
    return 0


def _parse_params(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def cmd_bound(args: argparse.Namespace) -> int:
    result = theory.get(args.id)
    params = result.resolve(args.length, **_parse_params(args.param))
    p = args.precision if args.precision is not None else theory.default_precision(args.length)
    width = result.width_bound(args.length, p, **params)
    what = {
        "lower": "smallest width the bound allows",
        "upper": "construction's width",
        "tight": "construction's width",
    }[result.direction]
    rows = [
        ("result", f"{result.id} ({result.direction}, {result.form}): {result.formula}"),
        ("length", str(args.length)),
        ("precision", f"{p} bits" + ("" if args.precision is not None else " (default)")),
        ("parameters", ", ".join(f"{k}={v}" for k, v in params.items()) or "none"),
        ("width", f"{fmt(width)}  ({what})"),
        ("state bits", fmt(width * p)),
    ]
    lower = result.lower_width(args.length, p, **params)
    if result.direction == "tight":
        rows.append(("lower width", fmt(lower)))
    if not result.exact:
        rows.append(("note", "constants not fixed: only the growth form is meaningful"))
    pad = max(len(k) for k, _ in rows)
    for key, text in rows:
        print(f"{key.ljust(pad)}  {text}")
    return 0
