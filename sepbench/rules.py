"""Success rules: when K trained members of one probe count as a success.

A probe of the width search trains K members (seeds × learning rates). Under a *quorum* q the
probe succeeds when q members pass their confirmation evaluation; it has failed as soon as so
many members failed that q can no longer be reached (more than K − q). The study's rules name
two quorums:

* ``best_of`` — q = 1: a width succeeds when *any* member passes. Minimal width is an existence
  question (does a model of this width that training can find solve the task?), which is the
  anchors' statistic: the best of a learning-rate grid (B24, Zoology), the maximum over 10
  seeds (Delétang et al. 2023);
* ``median`` — q = ⌈K/2⌉: at least half the members pass (the robustness view; H20 report the
  median over 3 seeds).

With K = 1 both rules are the same. The one decision function, :func:`decide`, serves the
trainer (a group of members stops as soon as its rule is decided), the probes (the trial's
outcome) and the report (what stored members determine under the other rule, where some
members' outcomes are unknown).

Plain Python: importing this module imports nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RULES = ("best_of", "median")
"""The success rules a study may name (``rule = ...``)."""


def quorum(rule: str, members: int) -> int:
    """The number of members that must pass under ``rule`` out of ``members``."""
    if members < 1:
        raise ValueError(f"a probe has at least one member, got {members}")
    if rule == "best_of":
        return 1
    if rule == "median":
        return math.ceil(members / 2)
    raise ValueError(f"unknown success rule {rule!r}; known: {', '.join(RULES)}")


def decide(passed: int, failed: int, members: int, need: int) -> bool | None:
    """True once ``need`` members passed; False once more than ``members − need`` failed (the
    quorum is out of reach); None while neither (members still training, or unknown)."""
    if passed >= need:
        return True
    if failed > members - need:
        return False
    return None


def combine(rule: str, outcomes: Iterable[bool | None]) -> bool | None:
    """The outcome under ``rule`` of members whose own outcomes are True (passed), False
    (failed) or None (unknown: stopped before it was known)."""
    values = list(outcomes)
    passed = sum(v is True for v in values)
    failed = sum(v is False for v in values)
    return decide(passed, failed, len(values), quorum(rule, len(values)))
