"""Growth fits of a pair's measured curve, on what each search says: an interval of widths.

A search on a grid does not measure a seed's minimal width w*; it says w* lies in
(low, high]: high = the width it found, low = the grid width below it (which failed), and
(grid max, ∞) when nothing up to the maximum worked (censored).
:func:`sepbench.theory.interval_from_grid` turns each finished search into that interval and
:func:`sepbench.theory.fit_growth` fits the intervals — censored seeds included, as
right-censored points, never dropped and never capped at the maximum (docs/theory.md states the
likelihood). Unfinished searches are left out and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sepbench import theory
from sepbench.errors import UserError

if TYPE_CHECKING:
    from sepbench.sweep.summary import SearchResult


def growth_fits(
    searches: Sequence[SearchResult],
    grid: Sequence[int],
    factor: float,
    n_boot: int | None = None,
) -> tuple[theory.GrowthFit | None, theory.GrowthFit | None, str]:
    """(fit of the per-seed width intervals, the same fit on the state — every interval ×
    ``factor`` — or None when ``factor`` is 1, a note on what the fit holds).

    ``grid``: the widths the pair's searches probe (``Grid.widths()``). Every finished search
    enters as its grid interval, a censored one as (max, ∞). No fit (None, None, why) when
    fewer than 3 lengths have a finished search or fewer than 2 a width that worked: then no
    law is identified. ``n_boot=0`` fits without α's interval (faster; every other value is
    ignored: the interval is a profile-likelihood one, not a bootstrap).
    """
    finished = [s for s in searches if s.status in ("done", "censored")]
    incomplete = len(searches) - len(finished)
    lengths, intervals = answers(searches, grid)
    censored = sum(s.status == "censored" for s in finished)
    notes = []
    if censored:
        notes.append(f"{censored} censored seed(s) enter the fit as (max, ∞)")
    if incomplete:
        notes.append(f"{incomplete} unfinished search(es) not yet in the fit")
    try:
        fit = theory.fit_growth(lengths, intervals=intervals, n_boot=n_boot)
        state_fit = None
        if factor != 1.0:
            scaled = [(lo * factor, hi * factor) for lo, hi in intervals]
            state_fit = theory.fit_growth(lengths, intervals=scaled, n_boot=n_boot)
    except UserError as exc:
        found = len({s.length for s in finished if s.status == "done"})
        why = f"no growth fit: {len(set(lengths))} length(s) with a finished search, {found} "
        why += f"with a width that worked ({exc})"
        return None, None, "; ".join([why, *notes])
    if censored:
        rests = "rests" if fit.rests_on_censored else "does not rest"
        notes[0] += f" (the fit's answer {rests} on them)"
    return fit, state_fit, "; ".join(notes)


def answers(
    searches: Sequence[SearchResult], grid: Sequence[int], factor: float = 1.0
) -> tuple[list[int], list[tuple[float, float]]]:
    """Every finished search's N and grid interval (:func:`sepbench.theory.interval_from_grid`;
    a censored one (max, ∞)), each end × ``factor`` (the state per unit of width)."""
    finished = [s for s in searches if s.status in ("done", "censored")]
    intervals = [
        theory.interval_from_grid(s.width if s.status == "done" else None, grid) for s in finished
    ]
    return [s.length for s in finished], [(lo * factor, hi * factor) for lo, hi in intervals]
