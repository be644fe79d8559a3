"""The anchors' protocol in the trainer: per-member learning rates, members that stop together
(success rules), and length mixtures (training lengths drawn from a range, evaluation at N)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from sepbench import models, tasks, training
from sepbench.errors import UserError
from sepbench.training import data as data_mod
from sepbench.training.config import StopGroup
from sepbench.training.fit import MemberAdamW, make_optimizer

TASK = tasks.make("index_lookup", max_length=16)


# ---------------------------------------------------------------------- per-member rates
def test_member_adamw_moves_each_member_as_torch_adamw_with_its_rate() -> None:
    """Three members with three rates: each slice follows torch.optim.AdamW(lr=its rate) run
    on that slice alone, step after step (weight decay included), to float32 rounding."""
    budget = training.Budget(weight_decay=0.05)
    rates = [1e-1, 3e-3, 1e-5]
    gen = torch.Generator().manual_seed(0)
    stacked = [torch.nn.Parameter(torch.randn(3, 4, 5, generator=gen)) for _ in range(2)]
    alone = [[torch.nn.Parameter(p.detach()[e].clone()) for p in stacked] for e in range(3)]
    init = stacked[0].detach().clone()
    ours = MemberAdamW(stacked, budget, 3)
    refs = [make_optimizer(ps, replace(budget, lr=r)) for ps, r in zip(alone, rates, strict=True)]
    for _ in range(20):
        grads = [torch.randn(3, 4, 5, generator=gen) for _ in stacked]
        for p, g in zip(stacked, grads, strict=True):
            p.grad = g.clone()
        ours.step(rates)
        for e, (ps, opt) in enumerate(zip(alone, refs, strict=True)):
            for p, g in zip(ps, grads, strict=True):
                p.grad = g[e].clone()
            opt.step()
    for e in range(3):
        for p, q in zip(stacked, alone[e], strict=True):
            torch.testing.assert_close(p.detach()[e], q.detach(), rtol=1e-5, atol=1e-6)
    # the rates really differ: the members moved by amounts ordered like their rates
    moved = [float((stacked[0].detach()[e] - init[e]).abs().mean()) for e in range(3)]
    assert moved[0] > 10 * moved[1] > 100 * moved[2] > 0


@pytest.mark.parametrize(("family", "options"), [("transformer", {"layers": 1}), ("gru", {})])
def test_member_i_with_rate_i_trains_as_fit_with_that_rate(
    family: str, options: dict[str, Any]
) -> None:
    """A 3-member ensemble with rates (1e-2, 2e-3, 1e-2) and seeds (0, 0, 1): member i
    retraces ``fit`` with ``lr = lrs[i]`` (same stop, steps, evaluation history; losses to the
    rounding of the batched kernels) and records that rate in its budget."""
    budget = training.Budget(max_steps=200, lr=5e-3, eval_every=25, confirm_batch=512)
    seeds, rates = [0, 0, 1], [1e-2, 2e-3, 1e-2]
    ensemble = models.build_ensemble(family, len(TASK.vocab), 8, seeds, **options)
    outcome = training.train(ensemble, TASK, 6, budget, seeds, lrs=rates)
    histories = []
    for seed, lr, ens in zip(seeds, rates, outcome.results, strict=True):
        model = models.build(family, len(TASK.vocab), 8, seed=seed, **options)
        alone = training.fit(model, TASK, 6, replace(budget, lr=lr), seed=seed)
        assert ens.config == alone.config and ens.config["budget"]["lr"] == lr
        assert (ens.reached, ens.steps, ens.stop) == (alone.reached, alone.steps, alone.stop)
        for h_ens, h_alone in zip(ens.history, alone.history, strict=True):
            assert h_ens["step"] == h_alone["step"] and h_ens["kind"] == h_alone["kind"]
            assert h_ens["train_loss"] == pytest.approx(h_alone["train_loss"], rel=1e-3)
        histories.append([h["train_loss"] for h in ens.history])
    assert histories[0] != histories[1]  # same seed, other rate: another trajectory


# ---------------------------------------------------------------------- stop groups
def test_best_of_group_stops_everyone_at_the_first_confirmed_member() -> None:
    budget = training.Budget(max_steps=600, lr=1e-2, eval_every=25, confirm_batch=256)
    seeds = [0, 1, 2, 3]
    ensemble = models.build_ensemble("transformer", len(TASK.vocab), 16, seeds, layers=1)
    free = training.train(ensemble, TASK, 6, budget, seeds).results
    first = min(r.steps for r in free if r.reached)
    assert len({r.steps for r in free}) > 1  # alone, the members stop at different steps
    ensemble = models.build_ensemble("transformer", len(TASK.vocab), 16, seeds, layers=1)
    group = [StopGroup((0, 1, 2, 3), quorum=1)]
    got = training.train(ensemble, TASK, 6, budget, seeds, groups=group).results
    assert {r.steps for r in got} == {first}
    assert {r.stop for r in got} <= {"reached", "decided"} and any(r.reached for r in got)
    for r, alone in zip(got, free, strict=True):
        if r.stop == "decided":  # cut short: its last record is that step's evaluation
            assert not r.reached and r.history[-1]["step"] == first
            assert r.sequence_accuracy == r.history[-1]["sequence_accuracy"]
        else:
            assert (r.steps, r.stop) == (alone.steps, alone.stop)


def test_a_group_that_can_no_longer_reach_its_quorum_stops() -> None:
    """Median of 4 (quorum 2): three members diverge at the first evaluation, so the quorum is
    out of reach and the fourth stops there too; a separate group of one trains on."""
    budget = training.Budget(max_steps=100, warmup=0, eval_every=20, grad_clip=0.0)
    seeds = [0, 1, 2, 3, 4]
    ensemble = models.build_ensemble("elman", len(TASK.vocab), 8, seeds)
    rates = [1e30, 1e30, 1e30, 1e-3, 1e-3]
    groups = [StopGroup((0, 1, 2, 3), quorum=2), StopGroup((4,))]
    got = training.train(ensemble, TASK, 6, budget, seeds, lrs=rates, groups=groups).results
    assert [r.stop for r in got] == ["diverged"] * 3 + ["decided", "budget"]
    assert [r.steps for r in got] == [20, 20, 20, 20, 100]


def test_bad_rates_and_groups_are_user_errors() -> None:
    pair = models.build_ensemble("lstm", len(TASK.vocab), 8, [0, 1])
    budget = training.Budget(max_steps=5)
    for lrs in ([1e-3], [1e-3, 0.0], [1e-3, float("nan")], 1e-3):
        with pytest.raises(UserError, match="learning rate"):
            training.train(pair, TASK, 8, budget, [0, 1], lrs=lrs)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="quorum"):
        StopGroup((0, 1), quorum=3)
    with pytest.raises(UserError, match="distinct"):
        StopGroup((0, 0))
    with pytest.raises(UserError, match="two groups"):
        training.train(pair, TASK, 8, budget, [0, 1], groups=[StopGroup((0, 1)), StopGroup((1,))])
    with pytest.raises(UserError, match="out of range"):
        training.train(pair, TASK, 8, budget, [0, 1], groups=[StopGroup((0, 2))])


# ---------------------------------------------------------------------- length mixture
class Recording:
    """A task wrapper that logs the (length, rows) of every sample call."""

    def __init__(self, task: tasks.Task) -> None:
        self.task = task
        self.calls: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def without_retriever(self) -> Recording:
        assert self.task.without_retriever() is self.task  # no retriever: the view is the task
        return self

    def sample(self, length: int, batch_size: int, **kw: Any) -> tasks.Batch:
        self.calls.append((length, batch_size))
        return self.task.sample(length, batch_size, **kw)


def test_mixture_batches_have_one_length_each_uniform_over_the_valid_lengths() -> None:
    dyck = tasks.make("dyck", types=2, depth=3)
    valid = data_mod.training_lengths(dyck, 3, 16)
    assert valid == [4, 6, 8, 10, 12, 14, 16]  # odd lengths are not Dyck strings
    sampler = data_mod.ChunkedSampler(dyck, 16, 8, np.random.default_rng(0), valid)
    seen = Counter()
    for _ in range(2100):
        inputs, targets = sampler.next()
        assert inputs.shape == targets.shape and inputs.shape[0] == 8
        seen[inputs.shape[1]] += 1  # a Dyck row of length n has n tokens, no padding
        assert (inputs != dyck.pad_id).all()
    assert set(seen) == set(valid)
    # uniform: 300 expected per length; a chi-square with 6 dof beyond 22.5 has p < 0.001
    chi2 = sum((c - 300) ** 2 / 300 for c in seen.values())
    assert chi2 < 22.5


def test_mixture_trains_over_the_range_and_evaluates_and_confirms_at_n() -> None:
    rec = Recording(TASK)
    budget = training.Budget(
        max_steps=60, batch_size=7, eval_every=20, eval_batch=64, confirm_batch=128, min_length=2
    )
    model = models.build("gru", len(TASK.vocab), 8, seed=0)
    training.fit(model, rec, 9, budget, seed=0)  # type: ignore[arg-type]
    train_calls = [c for c in rec.calls if c[1] % 7 == 0]
    held_out = [c for c in rec.calls if c[1] % 7]
    assert {n for n, _ in train_calls} - set(range(2, 10)) == set()
    assert len({n for n, _ in train_calls}) > 4  # many lengths in 60 batches
    assert held_out and {n for n, _ in held_out} == {9}
    assert {k for _, k in held_out} == {64, 128}


def test_in_distribution_evaluation_draws_each_row_from_the_training_lengths() -> None:
    rng = np.random.default_rng(1)
    inputs, targets = data_mod.sample_rows(TASK, [2, 3, 4, 5], 400, rng)
    real = (inputs != TASK.pad_id).sum(1)
    assert set(real) == {3, 4, 5, 6}  # N + 1 tokens
    assert inputs.shape[1] == 6 and ((targets != -100).sum(1) == 1).all()
    for row in range(0, 400, 37):  # every row is a valid example of its own length
        n = int(real[row])
        decoded = TASK.decode(inputs[row, :n])
        assert TASK.solve(decoded) == [TASK.vocab[targets[row, n - 1]]]
    rec = Recording(TASK)
    budget = training.Budget(
        max_steps=20,
        batch_size=7,
        eval_every=10,
        eval_batch=64,
        confirm_batch=128,
        min_length=2,
        max_length=5,
        eval_lengths="train",
    )
    training.fit(models.build("gru", len(TASK.vocab), 8, seed=0), rec, 9, budget, seed=0)  # type: ignore[arg-type]
    assert {n for n, k in rec.calls} <= {2, 3, 4, 5}


def test_an_ensemble_member_with_a_mixture_sees_fits_data() -> None:
    budget = training.Budget(
        max_steps=80, lr=1e-2, eval_every=20, eval_batch=64, confirm_batch=128, min_length=3
    )
    seeds = [4, 5]
    ensemble = models.build_ensemble("lstm", len(TASK.vocab), 8, seeds)
    outcome = training.train(ensemble, TASK, 10, budget, seeds, lrs=[1e-2, 3e-3])
    for seed, lr, ens in zip(seeds, [1e-2, 3e-3], outcome.results, strict=True):
        model = models.build("lstm", len(TASK.vocab), 8, seed=seed)
        alone = training.fit(model, TASK, 10, replace(budget, lr=lr), seed=seed)
        assert ens.config == alone.config and ens.config["budget"]["min_length"] == 3
        for h_ens, h_alone in zip(ens.history, alone.history, strict=True):
            assert h_ens["train_loss"] == pytest.approx(h_alone["train_loss"], rel=1e-3)


def test_budget_defaults_leave_recorded_configs_unchanged_and_bad_ranges_are_named() -> None:
    assert "min_length" not in training.Budget().to_dict()
    assert training.Budget(min_length=3).to_dict()["min_length"] == 3
    assert training.Budget.from_dict(training.Budget(min_length=3).to_dict()).min_length == 3
    with pytest.raises(UserError, match="min_length"):
        training.Budget(min_length=-1)
    with pytest.raises(UserError, match=r"min_length \(5\) must be <= max_length"):
        training.Budget(min_length=5, max_length=4)
    with pytest.raises(UserError, match="eval_lengths"):
        training.Budget(eval_lengths="long")
    model = models.build("gru", len(TASK.vocab), 8, seed=0)
    with pytest.raises(UserError, match=r"training lengths \[9, 8\]"):
        training.fit(model, TASK, 8, training.Budget(max_steps=5, min_length=9), seed=0)
    with pytest.raises(UserError, match="max_length"):  # the task's own bound (N <= 16)
        training.fit(model, TASK, 8, training.Budget(max_steps=5, max_length=17), seed=0)
