"""Training-cost measurement: saved-for-backward bytes, step time, capped extrapolation."""

from __future__ import annotations

import torch

from sepbench import models
from sepbench.models.cost import measure_curve, saved_bytes
from sepbench.report.cost import cost_figure, power_fit


def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return torch.randint(1, 9, (1, n), generator=g), torch.tensor([3])


def test_saved_bytes_count_activations_not_parameters() -> None:
    """An Elman RNN saves O(n·width) floats: doubling n about doubles the count, and the
    parameters (here larger than the activations) are not in it."""
    model = models.build("elman", 9, 64, seed=0)
    small, large = saved_bytes(model, batch(64)), saved_bytes(model, batch(128))
    params = sum(p.numel() * 4 for p in model.parameters())
    assert 0 < small < params
    assert 1.6 < large / small < 2.4


def test_memory_growth_of_the_beam_searches() -> None:
    """Saved bytes: linear in n for bbt, quadratic for the parent-scorer beam tree."""
    ratios = {}
    for family, opts in [("bbt", {}), ("beam_tree", {"scorer": "parent"})]:
        model = models.build(family, 9, 16, seed=0, **opts)
        ratios[family] = saved_bytes(model, batch(64)) / saved_bytes(model, batch(32))
    assert 1.6 < ratios["bbt"] < 2.4
    assert 3.2 < ratios["beam_tree"] < 4.8


def test_measure_curve_extrapolates_past_the_cap() -> None:
    points = measure_curve(
        "bbt", "bbt", {}, 16, 9, [8, 16, 32, 64, 128], batch, repeats=1, cap_bytes=1.5e5
    )
    assert [p.measured for p in points][:3] == [True, True, True]
    assert not points[-1].measured and points[-1].saved_bytes > 1.5e5
    fit = power_fit([p.n for p in points], [p.saved_bytes for p in points])
    assert fit is not None and 0.7 < fit[1] < 1.3 and fit[0] > 0
    fig = cost_figure([p.to_dict() for p in points])
    assert len(fig.axes) == 2


def test_power_fit_recovers_an_exponent() -> None:
    fit = power_fit([10, 20, 40], [3 * 10**2, 3 * 20**2, 3 * 40**2])
    assert fit is not None and abs(fit[1] - 2) < 1e-9 and abs(fit[0] - 3) < 1e-6
    assert power_fit([10, 20], [1.0, 2.0]) is None
