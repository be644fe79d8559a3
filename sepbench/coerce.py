"""One coercion rule for declared values (task parameters, model options, bound parameters).

Values arrive as Python objects (library calls, TOML specs) or as strings (``--param k=v``,
``--option k=v``); :func:`coerce` turns them into the declared kind or raises the caller's
error. Booleans are never integers, integers may be any integral type (numpy's too), numbers
must be finite.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from sepbench.errors import UserError

TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's bool


def coerce(kind: type, value: Any, err: Exception) -> Any:
    """``value`` as ``kind`` (``bool``, ``int``, ``float`` or ``str``), else raise ``err``.

    An ``int`` accepts any integral type, a decimal string, and a float with no fractional part
    (``3.0``: TOML and JSON writers produce them); never a bool.
    """
    if kind is bool:
        if _is_bool(value):
            return bool(value)
        if isinstance(value, str) and value.lower() in TRUE_WORDS + FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        raise err
    if kind is int:
        if _is_bool(value):
            raise err
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise err from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return operator.index(value)  # int and numpy integers, never floats
        except TypeError:
            raise err from None
    if kind is float:
        if _is_bool(value):
            raise err
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise err from None
        if not math.isfinite(out):
            raise err
        return out
    if not isinstance(value, str):
        raise err
    return value


def integer(what: str, value: Any, minimum: int = 1) -> int:
    """``value`` as a plain int ``>= minimum`` (any integral type; never a bool, never a float);
    else a UserError ``"<what> must be an integer >= <minimum>, got <value>"``."""
    return _integer(
        value, minimum, UserError(f"{what} must be an integer >= {minimum}, got {value!r}")
    )


def seed(value: Any) -> int:
    """A seed: a non-negative integer (any integral type; never a bool, never a float); else a
    UserError ``"seed must be a non-negative integer, got <value>"``."""
    return _integer(value, 0, UserError(f"seed must be a non-negative integer, got {value!r}"))


def _integer(value: Any, minimum: int, err: Exception) -> int:
    if _is_bool(value):
        raise err
    try:
        out = operator.index(value)
    except TypeError:
        raise err from None
    if out < minimum:
        raise err
    return out
