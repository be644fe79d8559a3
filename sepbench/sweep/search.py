"""The minimal-width search, as a pure function of the trials already stored.

``next_probe(history, grid, reprobes)`` looks at the outcomes recorded so far for one search
(one task, model, length and seed) and returns either the next :class:`Probe` (a width and an
attempt number) or :class:`Done`. It keeps no state of its own, so a search resumes from its
stored trials alone, and the order in which trials finished never matters: the answer depends
on the *set* of observations.

The rule, on the grid ``w = resolution * k`` for ``k`` in ``[k_min, k_max]``:

1. **Effective outcome** of a width: the outcome of its latest attempt.
2. **Monotonicity check.** Success is assumed monotone in width. A success at ``s`` below a
   failure at ``f > s`` is a *violation*: the success is re-probed (the lowest first), then the
   failure (the highest first), each at most ``reprobes`` more times, with fresh derived seeds.
   Whatever remains inconsistent is settled conservatively: successes below the highest
   failure are ignored.
3. **Doubling.** With no success above the highest failure ``lo``, probe ``k_min`` first, then
   ``min(2·lo, k_max)``. A failure at ``k_max`` ends the search *censored* (``> max``).
4. **Bisection.** With a success ``hi`` above ``lo``, probe ``(lo + hi) // 2`` until they are
   adjacent (``lo = k_min - 1`` if nothing failed): ``hi`` is the minimal width.
5. **Upper witness.** The answer is final only once some width above it has also succeeded (or
   it is ``k_max``); when bisection never found a smaller width, one more probe at
   ``min(2·hi, k_max)`` is made. This gives every answer a chance to expose a violation and
   costs nothing in the common case, where the doubling step's success is the witness.

Probe count for a monotone outcome with threshold ``t`` (in grid steps, ``k_min = 1``) and
``j = ceil(log2 t)``: ``j + 1`` doubling probes, ``j - 1`` bisection probes, plus one witness
when ``t`` is a power of two — at most ``2·ceil(log2 t) + 1`` (2 when t = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Grid:
    """The widths a search may probe: multiples of ``resolution`` in ``[minimum, maximum]``."""

    minimum: int
    maximum: int
    resolution: int = 1

    @property
    def k_min(self) -> int:
        return -(-self.minimum // self.resolution)

    @property
    def k_max(self) -> int:
        return self.maximum // self.resolution

    def width(self, k: int) -> int:
        return k * self.resolution

    def index(self, width: int) -> int:
        k, rem = divmod(width, self.resolution)
        if rem or not self.k_min <= k <= self.k_max:
            raise ValueError(f"width {width} is not on the search grid {self}")
        return k


@dataclass(frozen=True)
class Observation:
    """One stored trial as the search sees it."""

    width: int
    attempt: int
    reached: bool


@dataclass(frozen=True)
class Probe:
    """Run one trial at ``width`` (attempt number ``attempt``); ``reason`` is for humans."""

    width: int
    attempt: int
    reason: str


@dataclass(frozen=True)
class Done:
    """The search is over. ``width`` is None when censored (nothing up to the maximum worked).

    ``violations``: see :func:`violations` (one pair per width that succeeded below a
    failure, over all attempts). ``consistent``: the effective outcomes (latest attempts) are
    monotone, i.e. every violation was explained away as noise by a re-probe.
    """

    width: int | None
    censored: bool
    probes: int
    violations: tuple[tuple[int, int], ...]
    consistent: bool


def violations(history: Iterable[Observation]) -> tuple[tuple[int, int], ...]:
    """Monotonicity violations over all attempts: for every width ``s`` that succeeded at
    least once while some larger width failed, the pair ``(s, f)`` with ``f`` the smallest such
    failing width."""
    obs = list(history)
    wins = sorted({o.width for o in obs if o.reached})
    losses = sorted({o.width for o in obs if not o.reached})
    out = []
    for s in wins:
        above = [f for f in losses if f > s]
        if above:
            out.append((s, above[0]))
    return tuple(out)


def next_probe(history: Iterable[Observation], grid: Grid, reprobes: int = 1) -> Probe | Done:
    """The next trial of a search given its stored trials, or Done (see the module docstring)."""
    obs = list(history)
    latest: dict[int, Observation] = {}
    for o in obs:
        k = grid.index(o.width)
        if k not in latest or o.attempt > latest[k].attempt:
            latest[k] = o
    attempts = {k: latest[k].attempt + 1 for k in latest}
    wins = sorted(k for k, o in latest.items() if o.reached)
    losses = sorted(k for k, o in latest.items() if not o.reached)

    # 2. monotonicity: re-probe the suspicious outcomes while attempts remain
    if wins and losses and wins[0] < losses[-1]:
        bad_wins = [k for k in wins if k < losses[-1]]
        bad_losses = [k for k in reversed(losses) if k > wins[0]]
        for k in bad_wins + bad_losses:
            if attempts[k] <= reprobes:
                return Probe(grid.width(k), attempts[k], "reprobe")

    lo = losses[-1] if losses else None
    above = [k for k in wins if lo is None or k > lo]

    def done(k: int | None) -> Done:
        viol = violations(obs)
        consistent = not (wins and losses and wins[0] < losses[-1])
        return Done(None if k is None else grid.width(k), k is None, len(obs), viol, consistent)

    # 3. doubling
    if not above:
        if lo is None:
            return Probe(grid.width(grid.k_min), 0, "double")
        if lo >= grid.k_max:
            return done(None)
        k = min(2 * lo, grid.k_max)
        return Probe(grid.width(k), attempts.get(k, 0), "double")

    # 4. bisection
    hi = above[0]
    floor = lo if lo is not None else grid.k_min - 1
    if hi - floor > 1:
        k = (floor + hi) // 2
        return Probe(grid.width(k), attempts.get(k, 0), "bisect")

    # 5. upper witness
    if hi >= grid.k_max or len(above) > 1:
        return done(hi)
    k = min(2 * hi, grid.k_max)
    return Probe(grid.width(k), attempts.get(k, 0), "witness")


def find_min_width(
    oracle: Callable[[int, int], bool], grid: Grid, reprobes: int = 1
) -> tuple[Done, list[Observation]]:
    """Run one search in-process: ``oracle(width, attempt) -> reached``, no store.

    For anything whose success is (supposed to be) monotone in width — e.g. the smallest width
    at which a hand-built construction still verifies. Returns the verdict and the probes made.
    """
    history: list[Observation] = []
    while True:
        step = next_probe(history, grid, reprobes)
        if isinstance(step, Done):
            return step, history
        history.append(
            Observation(step.width, step.attempt, bool(oracle(step.width, step.attempt)))
        )


def expected_probes(grid: Grid) -> float:
    """A prior for the number of probes of a fresh search (for progress estimates only)."""
    span = max(1.0, grid.k_max / max(1, grid.k_min))
    return math.log2(span) + 2.0


def bisection_left(history: Iterable[Observation], grid: Grid) -> int:
    """Probes a search in its bisection phase still needs, at most (progress estimates only)."""
    obs = list(history)
    wins = [grid.index(o.width) for o in obs if o.reached]
    losses = [grid.index(o.width) for o in obs if not o.reached]
    lo = max(losses) if losses else grid.k_min - 1
    hi = min((k for k in wins if k > lo), default=lo + 2)
    return max(1, math.ceil(math.log2(max(2, hi - lo))))
