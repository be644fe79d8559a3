"""Length generalisation: a trial's accuracy at evaluation lengths other than its own."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sepbench.sweep.store import TrialRecord

LENGTH_EVAL_KEY = "length_eval"
"""Length-generalisation hook: a trial whose stored outcome has
``outcome["details"]["length_eval"]`` — the list :func:`sepbench.training.evaluate_lengths`
returns (records with ``length`` and ``sequence_accuracy``) — is plotted as accuracy against
evaluation length."""


def length_eval(trials: Sequence[TrialRecord]) -> list[tuple[int, int, list[tuple[int, float]]]]:
    """Per trained N, the smallest-width successful trial's length-generalisation curve:
    (trained N, width, [(evaluation N, sequence accuracy), ...])."""
    best: dict[int, tuple[int, list[tuple[int, float]]]] = {}
    for t in trials:
        details = t.outcome.get("details") or {}
        records = details.get(LENGTH_EVAL_KEY) if isinstance(details, dict) else None
        if not t.reached or not isinstance(records, list):
            continue
        curve = []
        for rec in records:
            if not isinstance(rec, dict):
                continue
            n, acc = rec.get("length"), rec.get("sequence_accuracy")
            if isinstance(n, int) and isinstance(acc, int | float) and math.isfinite(acc):
                curve.append((n, float(acc)))
        if curve and (t.length not in best or t.width < best[t.length][0]):
            best[t.length] = (t.width, sorted(curve))
    return [(n, w, c) for n, (w, c) in sorted(best.items())]
