"""Small pieces every CLI group shares: key=value options, integer lists, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from sepbench.errors import UserError


def parse_kv(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; values stay strings (the receiver parses them)."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got {item!r}")
        if key in out:
            raise UserError(f"{flag} {key} given twice")
        out[key] = value
    return out


def parse_int_list(text: str, flag: str) -> list[int]:
    """``"16,32,64"`` -> ``[16, 32, 64]`` (positive integers)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UserError(f"{flag} expects positive integers, got {text!r}")
    return values


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A failure (or Ctrl-C) leaves no partial file; an unwritable destination is a UserError.
    """
    dest = Path(path)
    directory = dest.parent if str(dest.parent) else Path(".")
    if dest.is_dir():
        raise UserError(f"cannot write {str(dest)!r}: it is a directory")
    if not directory.is_dir():
        raise UserError(f"cannot write {str(dest)!r}: directory {str(directory)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write {str(dest)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
