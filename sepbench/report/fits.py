"""Growth fits of a pair's measured curve: in the searched width, and on the state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sepbench import theory

if TYPE_CHECKING:
    from sepbench.sweep.summary import SearchResult


def growth_fits(
    searches: Sequence[SearchResult], factor: float, n_boot: int
) -> tuple[theory.GrowthFit | None, theory.GrowthFit | None, str]:
    """(fit of the per-seed minimal widths, fit of the states width × ``factor`` (None when
    ``factor`` is 1), a note on what was left out).

    Only finished searches that found a width enter the fit: censored seeds (no width up to
    the maximum) and unfinished searches are counted in the note. At least three lengths with
    a measured width are needed; otherwise there is no fit and the note says why.
    """
    done = [s for s in searches if s.status == "done" and s.width is not None]
    censored = sum(s.status == "censored" for s in searches)
    incomplete = sum(s.status == "incomplete" for s in searches)
    lengths = [s.length for s in done]
    widths = [float(s.width or 0) for s in done]
    notes = []
    if censored:
        notes.append(f"{censored} censored seed(s) (> max width) excluded from the fit")
    if incomplete:
        notes.append(f"{incomplete} unfinished search(es) not yet in the fit")
    if len(set(lengths)) < 3:
        notes.insert(0, f"only {len(set(lengths))} length(s) with a measured width (need 3)")
        return None, None, "; ".join(notes)
    fit = theory.fit_growth(lengths, widths, n_boot=n_boot)
    state_fit = None
    if factor != 1.0:
        state_fit = theory.fit_growth(lengths, [w * factor for w in widths], n_boot=n_boot)
    return fit, state_fit, "; ".join(notes)
