"""The `sepbench` command: parses arguments and calls the packages; nothing else.

Each command group lives in its own module of this package, exposing
``register(subparsers)``; every handler returns an exit code. A `UserError` anywhere ends in
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sepbench import __version__
from sepbench.errors import UserError

# command-group modules, in the order `sepbench --help` lists them
_GROUPS = ("run", "tasks", "train", "sweep", "report", "verify", "theory")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 (argparse's own code)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"sepbench: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sepbench",
        description="Testbed for Transformer/RNN separations: tasks, constructions, sweeps.",
    )
    parser.add_argument("--version", action="version", version=f"sepbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for group in _GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except UserError as exc:
        print(f"sepbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sepbench: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
