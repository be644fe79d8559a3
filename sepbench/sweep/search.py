"""The minimal-width search, as a pure function of the trials already stored.

``next_probe(history, grid, reprobes)`` looks at the outcomes recorded so far for one search
(one task, model, length and seed) and returns either the next :class:`Probe` (a width and an
attempt number) or :class:`Done`. It keeps no state of its own, so a search resumes from its
stored trials alone, and the order in which trials finished never matters: the answer depends
on the *set* of observations.

The rule, on the grid's widths ``w(k)`` for ``k`` in ``[k_min, k_max]`` (the multiples of
``resolution``, ``w = resolution · k``; or, with ``per_octave = n``, a geometric grid of n widths
per doubling, see :class:`Grid`); ``double(k)`` is the first grid index whose width is at least
``2·w(k)`` (``k_max`` if none):

1. **Effective outcome** of a width: the outcome of its latest attempt.
2. **Monotonicity check.** Success is assumed monotone in width. A success at ``s`` below a
   failure at ``f > s`` is a *violation*: the success is re-probed (the lowest first), then the
   failure (the highest first), each at most ``reprobes`` more times, with fresh derived seeds.
   Whatever remains inconsistent is settled conservatively: successes below the highest
   failure are ignored.
3. **Doubling.** With no success above the highest failure ``lo``, probe the start width first
   (``k_min``, or a ``start`` hint — e.g. the answer at the previous length), then
   ``double(lo)``. A failure at ``k_max`` ends the search *censored* (``> max``).
4. **Bisection.** With a success ``hi`` above ``lo``, probe ``(lo + hi) // 2`` until they are
   adjacent (``lo = k_min - 1`` if nothing failed): ``hi`` is the minimal width. On a geometric
   grid the index midpoint is the geometric midpoint of the widths.
5. **Upper witness.** The answer is final only once some width above it has also succeeded (or
   it is ``k_max``); when bisection never found a smaller width, one more probe at
   ``double(hi)`` is made. This gives every answer a chance to expose a violation and
   costs nothing in the common case, where the doubling step's success is the witness.

The start hint changes only the first probe: every later decision, and whether a search is
done, depends on the stored observations alone (so summaries replay a search without it).

Probe count on the linear grid for a monotone outcome with threshold ``t`` (in grid steps,
``k_min = 1``, no start hint) and ``j = ceil(log2 t)``: ``j + 1`` doubling probes, ``j - 1``
bisection probes, plus one witness when ``t`` is a power of two — at most
``2·ceil(log2 t) + 1`` (2 when t = 1). On a geometric grid with n widths per octave the
bisection needs about ``log2 n`` probes, whatever the width.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Grid:
    """The widths a search may probe.

    ``per_octave = 0`` (default): every multiple of ``resolution`` in ``[minimum, maximum]``,
    indexed by ``k = width / resolution``. ``per_octave = n > 0``: a geometric grid with n widths
    per doubling — the multiples of ``resolution`` nearest to ``m0 · 2^(j/n)`` (``m0`` the
    first multiple ≥ ``minimum``, j = 0, 1, …, duplicates dropped) plus the largest multiple
    ≤ ``maximum`` — indexed 1, 2, … in increasing order. Its relative resolution is constant
    (about 2^(1/n) − 1), which suits growth laws read on log axes and needs ``log2 n`` bisection
    probes per search instead of ``log2 w``.
    """

    minimum: int
    maximum: int
    resolution: int = 1
    per_octave: int = 0

    @cached_property
    def _widths(self) -> tuple[int, ...]:
        """The geometric grid's widths (empty for the linear grid)."""
        if not self.per_octave:
            return ()
        r = self.resolution
        first = -(-self.minimum // r) * r
        last = self.maximum // r * r
        out: list[int] = []
        j = 0
        while True:
            w = max(first, r * round(first * 2 ** (j / self.per_octave) / r))
            if w > last:
                break
            if not out or w > out[-1]:
                out.append(w)
            j += 1
        if not out or out[-1] < last:
            out.append(last)
        return tuple(out)

    @property
    def k_min(self) -> int:
        return 1 if self.per_octave else -(-self.minimum // self.resolution)

    @property
    def k_max(self) -> int:
        return len(self._widths) if self.per_octave else self.maximum // self.resolution

    def width(self, k: int) -> int:
        return self._widths[k - 1] if self.per_octave else k * self.resolution

    def widths(self) -> list[int]:
        """Every width of the grid, increasing."""
        return [self.width(k) for k in range(self.k_min, self.k_max + 1)]

    def index(self, width: int) -> int:
        if self.per_octave:
            k = bisect.bisect_left(self._widths, width) + 1
            if k > len(self._widths) or self._widths[k - 1] != width:
                raise ValueError(f"width {width} is not on the search grid {self}")
            return k
        k, rem = divmod(width, self.resolution)
        if rem or not self.k_min <= k <= self.k_max:
            raise ValueError(f"width {width} is not on the search grid {self}")
        return k

    def double(self, k: int) -> int:
        """The first index whose width is at least twice ``width(k)`` (``k_max`` if none)."""
        if not self.per_octave:
            return min(2 * k, self.k_max)
        return min(bisect.bisect_left(self._widths, 2 * self.width(k)) + 1, self.k_max)

    def snap(self, width: int) -> int:
        """The index of the largest grid width ``<= width`` (``k_min`` if there is none)."""
        if self.per_octave:
            return max(1, bisect.bisect_right(self._widths, width))
        return min(self.k_max, max(self.k_min, width // self.resolution))


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


def next_probe(
    history: Iterable[Observation], grid: Grid, reprobes: int = 1, start: int | None = None
) -> Probe | Done:
    """The next trial of a search given its stored trials, or Done (see the module docstring).

    ``start``: a width (snapped down onto the grid) to probe first instead of the smallest,
    when the search has no trials yet.
    """
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
            k = grid.k_min if start is None else grid.snap(start)
            return Probe(grid.width(k), 0, "double" if start is None else "start")
        if lo >= grid.k_max:
            return done(None)
        k = grid.double(lo)
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
    k = grid.double(hi)
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
    if grid.per_octave:
        octaves = math.log2(max(1.0, grid.width(grid.k_max) / grid.width(grid.k_min)))
        return octaves / 2 + math.log2(max(2, grid.per_octave)) + 2.0
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


@dataclass(frozen=True)
class Bracket:
    """What known outcomes determine about a search's minimal width (:func:`determined`).

    ``width``: the answer when ``exact`` (None when censored). Otherwise the minimal width
    lies in ``(low, high]`` — ``low`` the highest width known to fail (None: none failed),
    ``high`` the lowest width known to succeed above it (None: none did) — because the probes
    that would decide it were not run, or their outcome under this criterion is unknown.
    """

    exact: bool
    censored: bool
    width: int | None
    low: int | None
    high: int | None
    maximum: int

    def text(self) -> str:
        if self.censored:
            return f">{self.maximum}"
        if self.exact:
            return str(self.width)
        low = "0" if self.low is None else str(self.low)
        return f"({low}, {self.high}]" if self.high is not None else f"(>{low})"


def determined(outcomes: Mapping[int, bool | None], grid: Grid) -> Bracket:
    """The minimal width that known outcomes determine, under the search's conventions.

    ``outcomes``: per probed width, its (latest attempt's) outcome — True, False or None
    (unknown). Success is taken to be monotone in width, and what contradicts it is settled as
    the search settles it (successes below the highest failure are ignored). The answer is
    exact when the lowest success above the highest failure is the next grid width (or the
    grid's first), censored when the grid's maximum failed, and otherwise a bracket. With
    the search's own outcomes this is the search's answer (:func:`next_probe`'s Done).
    """
    known = {grid.index(w): v for w, v in outcomes.items()}
    fails = [k for k, v in known.items() if v is False]
    lo = max(fails) if fails else None
    wins = sorted(k for k, v in known.items() if v is True and (lo is None or k > lo))
    floor = lo if lo is not None else grid.k_min - 1
    top = grid.width(grid.k_max)
    low = None if lo is None else grid.width(lo)
    if wins:
        hi = wins[0]
        if hi - floor == 1:
            return Bracket(True, False, grid.width(hi), low, grid.width(hi), top)
        return Bracket(False, False, None, low, grid.width(hi), top)
    if lo is not None and lo >= grid.k_max:
        return Bracket(True, True, None, low, None, top)
    return Bracket(False, False, None, low, None, top)
