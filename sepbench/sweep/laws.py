"""Growth laws ``f(N)`` of the sweep, in one table.

A study's training budget grows with the length by one of them (``[budget] scale``, see
:class:`sepbench.sweep.spec.Budget`), and the fake probe's true minimal width follows one
(:class:`sepbench.sweep.probes.FakeProbe`). ``log`` is ``log2(max(N, 2))``, so it is 1 (not 0)
at N = 1 and 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable

LAWS: dict[str, Callable[[int], float]] = {
    "constant": lambda n: 1.0,
    "log": lambda n: math.log2(max(n, 2)),
    "sqrt": math.sqrt,
    "linear": float,
}
