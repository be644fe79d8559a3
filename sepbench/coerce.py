"""One coercion rule for declared values (task parameters, model options): plain Python only.

Values arrive as Python objects (library calls, TOML specs) or as strings (``--param k=v``,
``--option k=v``); :func:`coerce` turns them into the declared kind or raises the caller's
error. Booleans are never integers, integers may be any integral type (numpy's too), numbers
must be finite.
"""

from __future__ import annotations

import math
import operator
from typing import Any

TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's bool


def coerce(kind: type, value: Any, err: Exception, integral_floats: bool = False) -> Any:
    """``value`` as ``kind`` (``bool``, ``int``, ``float`` or ``str``), else raise ``err``.

    ``integral_floats``: an ``int`` also accepts a float with no fractional part (``3.0``).
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
        if integral_floats and isinstance(value, float) and value.is_integer():
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
