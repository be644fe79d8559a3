"""α's 95 % interval covers the true exponent at least 90 % of the time on shipped designs
(a small, seeded version of benchmarks/fit_coverage.py), and the seed-spread estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sepbench.sweep.search import Grid
from sepbench.sweep.spec import load_builtin
from sepbench.theory import coverage

SIGMA = 0.32
"""The spread of ln w measured in the stored index_lookup study (docs/theory.md)."""


def _design(study: str) -> tuple[tuple[int, ...], int, tuple[float, ...]]:
    spec = load_builtin(study)
    width = spec.width
    grid = Grid(width.min, width.max, width.resolution, width.per_octave).widths()
    return tuple(sorted(spec.lengths)), len(spec.seeds), tuple(float(w) for w in grid)


@pytest.mark.parametrize(
    ("study", "alpha"),
    [("index_lookup", 1.0), ("index_lookup", 0.0), ("is_tree", 0.5), ("dyck", 0.5)],
)
def test_the_interval_covers_on_a_shipped_design(study: str, alpha: float) -> None:
    lengths, seeds, grid = _design(study)
    sc = coverage.Scenario(lengths, seeds, alpha, 4.0, SIGMA, grid)
    c = coverage.simulate(sc, reps=100, seed=7)
    assert c.fitted >= 95
    assert c.rate >= 0.90, c
    assert c.median_width < 3.0 / math.log2(lengths[-1] / lengths[0])  # and it says something


def test_grid_answers_snap_up_and_censor() -> None:
    grid = (1.0, 2.0, 3.0, 4.0, 6.0)
    got = coverage.grid_answers(np.array([0.5, 2.0, 2.1, 5.9, 7.0]), grid)
    assert got == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (4.0, 6.0), (6.0, math.inf)]


def test_seed_spread_recovers_sigma() -> None:
    rng = np.random.default_rng(1)
    mu = rng.uniform(1, 3, size=300)
    exact = [[(float(w), float(w)) for w in np.exp(m + 0.3 * rng.normal(size=2))] for m in mu]
    assert coverage.seed_spread(exact).sigma == pytest.approx(0.3, rel=0.1)
    grid = tuple(float(w) for w in Grid(1, 64, per_octave=2).widths())
    snapped = [coverage.grid_answers(np.exp(m + 0.3 * rng.normal(size=2)), grid) for m in mu]
    est = coverage.seed_spread(snapped)
    assert est.sigma == pytest.approx(0.3, rel=0.2)
    assert est.sigma_mle < est.sigma and est.groups == 300


def test_seed_spread_needs_information() -> None:
    from sepbench.errors import UserError

    with pytest.raises(UserError, match="two seeds"):
        coverage.seed_spread([[(64.0, math.inf), (64.0, math.inf)], [(2.0, 3.0)]])
