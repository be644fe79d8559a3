"""How often α's interval covers the true exponent: a simulation of the shipped study designs.

A :class:`Scenario` is a study design — the lengths, the seeds per length, the search's width
grid — and a truth: w* = w0·(N/N0)^α·e^(σ·z) with z ~ Normal(0, 1) independent per seed and
length (N0 the smallest length, σ the seed-to-seed spread of ln w). :func:`simulate` draws
``reps`` studies and turns each seed's w* into what a grid search reports when success is
monotone in width: the first grid width ≥ w*, or "censored" past the grid's maximum. Each
study is fitted from its grid answers exactly as a report would
(:func:`~.fits.interval_from_grid`, then :func:`~.fits.exponent`, the computation behind
:func:`~.fits.fit_growth`'s ``alpha_ci``), and
:class:`Coverage` counts how often α's interval contains the true α. A draw whose answers
are finite at fewer than 2 lengths cannot be fitted (``fit_growth`` refuses it) and is
counted in ``unfitted``, not in the rate.

:func:`seed_spread` estimates σ from stored searches: each group is one (task, model, length)
with its seeds' grid intervals, the model is ln w* = μ_group + σ·ε, and σ is the maximum-
likelihood estimate with one free mean per group, scaled by n/(n − groups) on the variance
(the degrees-of-freedom correction that makes it unbiased for exact data; with 2 seeds per
group the uncorrected estimate would be half the variance).

numpy only; ``benchmarks/fit_coverage.py`` runs the designs of docs/theory.md's table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sepbench.errors import UserError
from sepbench.theory import fits
from sepbench.theory.censored import Observations, mle


@dataclass(frozen=True)
class Scenario:
    """A design (lengths, seeds per length, grid widths) and the true law (α, w0, σ)."""

    lengths: tuple[int, ...]
    seeds: int
    alpha: float
    w0: float
    sigma: float
    grid: tuple[float, ...]

    def label(self) -> str:
        n = self.lengths
        return (
            f"N = {n[0]}..{n[-1]} ({len(n)} lengths) × {self.seeds} seeds, α = {self.alpha:g}, "
            f"w0 = {self.w0:g}, σ = {self.sigma:.2f}"
        )


@dataclass(frozen=True)
class Coverage:
    """The outcome of :func:`simulate`."""

    scenario: Scenario
    level: float
    reps: int
    fitted: int
    covered: int
    open_ended: int
    """Fitted draws whose interval has an infinite end."""
    median_width: float
    """Median hi − lo over the fitted draws with two finite ends."""
    censored_fraction: float
    """Fraction of all seeds censored (> grid max)."""

    @property
    def unfitted(self) -> int:
        return self.reps - self.fitted

    @property
    def rate(self) -> float:
        return self.covered / self.fitted if self.fitted else math.nan


def grid_answers(w: np.ndarray, grid: Sequence[float]) -> list[tuple[float, float]]:
    """The (low, high] interval a monotone grid search reports for each minimal width in
    ``w``: the first grid width ≥ w* (censored past the maximum)."""
    widths = [float(g) for g in grid]
    k = np.searchsorted(widths, w, side="left")
    return [fits.interval_from_grid(widths[i] if i < len(widths) else None, widths) for i in k]


def simulate(scenario: Scenario, reps: int, seed: int, level: float = 0.95) -> Coverage:
    """Draw ``reps`` studies of ``scenario`` and measure the coverage of α's interval."""
    if reps < 1:
        raise UserError(f"reps must be >= 1, got {reps}")
    rng = np.random.default_rng(seed)
    lengths = np.repeat(np.asarray(scenario.lengths, dtype=float), scenario.seeds)
    truth = scenario.w0 * (lengths / lengths.min()) ** scenario.alpha
    fitted = covered = open_ended = censored = 0
    widths: list[float] = []
    for _ in range(reps):
        w = truth * np.exp(scenario.sigma * rng.standard_normal(len(lengths)))
        intervals = grid_answers(w, scenario.grid)
        censored += sum(math.isinf(hi) for _, hi in intervals)
        try:
            lo, hi = fits.exponent(lengths, intervals=intervals, ci=level).ci
        except UserError:
            continue
        fitted += 1
        covered += lo <= scenario.alpha <= hi
        if math.isinf(lo) or math.isinf(hi):
            open_ended += 1
        else:
            widths.append(hi - lo)
    return Coverage(
        scenario=scenario,
        level=level,
        reps=reps,
        fitted=fitted,
        covered=covered,
        open_ended=open_ended,
        median_width=float(np.median(widths)) if widths else math.nan,
        censored_fraction=censored / (reps * len(lengths)),
    )


@dataclass(frozen=True)
class Spread:
    """σ of ln w between seeds, from :func:`seed_spread`."""

    sigma: float
    """With the degrees-of-freedom correction."""
    sigma_mle: float
    groups: int
    points: int


def seed_spread(groups: Sequence[Sequence[tuple[float, float]]]) -> Spread:
    """Estimate σ from groups of seeds' (low, high] intervals (see the module docstring).

    Groups with no finite answer carry no information about σ and are skipped.
    """
    lows: list[float] = []
    highs: list[float] = []
    member: list[int] = []
    kept = 0
    for group in groups:
        if not any(math.isfinite(hi) for _, hi in group):
            continue
        for lo, hi in group:
            fits._check_interval(len(lows), kept, lo, hi)
            lows.append(lo)
            highs.append(hi)
            member.append(kept)
        kept += 1
    n = len(lows)
    if kept == 0 or n <= kept:
        raise UserError(
            f"need groups with at least two seeds and a finite answer; got {n} points in "
            f"{kept} usable groups"
        )
    design = np.zeros((n, kept))
    design[np.arange(n), member] = 1.0
    with np.errstate(divide="ignore"):
        obs = Observations(np.log(np.asarray(lows)), np.log(np.asarray(highs)))
    est, _ = mle(obs, design, np.zeros(n), fits.SIGMA_FLOOR, None)
    return Spread(est.sigma * math.sqrt(n / (n - kept)), est.sigma, kept, n)
