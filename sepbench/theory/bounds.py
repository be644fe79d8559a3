"""Bound calculators by result id: the width (and state bits) a result implies at a given N.

>>> from sepbench.theory import min_width, min_state_bits
>>> min_width("B24-T3", 1024, precision_bits=32)        # m >= N·log2(4)/p
64.0
>>> min_state_bits("B24-T3", 1024)                       # m·p >= N·log2 k, whatever p is
2048.0

``precision_bits=None`` means p(N) = ceil(log2 N) + 8 bits
(:func:`~sepbench.theory.formulas.default_precision`), B24's p = Θ(log N) with a fixed slack.
For upper bounds (and the upper side of H20) the value is the construction's width, for lower
bounds the smallest width the bound allows; :func:`lower_bound` gives the lower side of any
result that has one.
"""

from __future__ import annotations

from typing import Any

from sepbench.theory.catalogue import get


def min_width(
    result_id: str, length: int, precision_bits: int | None = None, **params: Any
) -> float:
    """The width result ``result_id`` implies at N = ``length``: :meth:`Result.width_bound`."""
    return get(result_id).width_bound(length, precision_bits, **params)


def min_state_bits(
    result_id: str, length: int, precision_bits: int | None = None, **params: Any
) -> float:
    """``min_width × p``: the bits m numbers of p bits carry (the RNN bounds' own quantity)."""
    return get(result_id).state_bits(length, precision_bits, **params)


def lower_bound(
    result_id: str, length: int, precision_bits: int | None = None, **params: Any
) -> float | None:
    """The lower bound on the width (lower and tight results), None for upper bounds."""
    return get(result_id).lower_width(length, precision_bits, **params)
