"""Recurrent depth, both families: the progressive loss (BA22, MC24's max_backprop), its draw,
the max-confidence rule, and a training smoke test with today's trainer."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from sepbench import models, tasks, training
from sepbench.errors import UserError
from sepbench.models.access import Weights
from sepbench.models.depth import (
    DepthModel,
    draw_progressive,
    max_confidence,
    progressive_loss,
)
from tests.models.conftest import VOCAB, tokens

WIDTH = 8
FAMILIES: list[tuple[str, dict[str, Any]]] = [
    ("looped", {"iterations": 4, "heads": 2, "injection": "concat"}),
    ("dtnet", {"iterations": 4}),
]
IDS = [f for f, _ in FAMILIES]


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return tokens(3, 9, seed=seed), tokens(3, 9, seed=seed + 100)


def _ce(targets: torch.Tensor) -> Any:
    return lambda logits: F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter's gradient (zeros where none reached it: after n > 0 no-grad
    iterations the initial state is detached, so e.g. the DT-net's projection gets none)."""
    out = {}
    for n, p in model.named_parameters():
        out[n] = torch.zeros_like(p) if p.grad is None else p.grad.clone()
    model.zero_grad(set_to_none=True)
    return out


def _manual(model: DepthModel, x: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """n iterations under no_grad from the initial state, then k with gradient."""
    w = Weights.of(model)
    e, h = model.start(x, w)
    with torch.no_grad():
        for _ in range(n):
            h = model.iterate(h, e, w)
    for _ in range(k):
        h = model.iterate(h, e, w)
    return model.head(h, w)


@pytest.mark.parametrize(("family", "opts"), FAMILIES, ids=IDS)
def test_alpha_zero_is_the_plain_loss_after_r_iterations(family: str, opts: dict) -> None:
    model = models.build(family, VOCAB, WIDTH, seed=0, **opts)
    x, y = _data()
    loss = progressive_loss(model, x, _ce(y), alpha=0.0)
    loss.backward()
    got = _grads(model)
    plain = _ce(y)(model(x))
    plain.backward()
    want = _grads(model)
    torch.testing.assert_close(loss, plain, atol=0, rtol=0)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=0, rtol=0, msg=name)


@pytest.mark.parametrize(("family", "opts"), FAMILIES, ids=IDS)
@pytest.mark.parametrize("max_backprop", [None, 2])
def test_progressive_part_equals_the_manual_computation(
    family: str, opts: dict, max_backprop: int | None
) -> None:
    """α = 1: the loss and every gradient equal those of n no-grad iterations then k with
    gradient, (n, k) the generator's draw; gradients flow only through the last k."""
    model = models.build(family, VOCAB, WIDTH, seed=1, **opts)
    x, y = _data(1)
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed)
        n, k = draw_progressive(4, max_backprop, copy.deepcopy(gen))
        loss = progressive_loss(model, x, _ce(y), 1.0, max_backprop, gen)
        loss.backward()
        got = _grads(model)
        manual = _ce(y)(_manual(model, x, n, k))
        manual.backward()
        want = _grads(model)
        torch.testing.assert_close(loss, manual, atol=0, rtol=0)
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=0, rtol=0, msg=name)
        if n:  # the no-grad iterations contribute nothing: with gradient through all n + k
            full = _ce(y)(model(x, iterations=n + k))  # the same value …
            torch.testing.assert_close(full, loss, atol=1e-6, rtol=0)
            full.backward()  # … but another gradient
            other = _grads(model)
            assert any(not torch.allclose(other[m], want[m]) for m in want)


def test_no_grad_iterations_record_no_graph() -> None:
    """Watching the shared block: exactly n calls run with gradients off, then k with."""
    model = models.build("looped", VOCAB, WIDTH, seed=2, iterations=6, block_layers=1)
    calls: list[bool] = []
    iterate = model.iterate

    def watched(*args: Any) -> torch.Tensor:
        calls.append(torch.is_grad_enabled())
        return iterate(*args)

    model.iterate = watched  # type: ignore[method-assign]
    x, y = _data(2)
    for seed in range(8):
        gen = torch.Generator().manual_seed(seed)
        n, k = draw_progressive(6, None, copy.deepcopy(gen))
        calls.clear()
        progressive_loss(model, x, _ce(y), 1.0, None, gen)
        assert calls == [False] * n + [True] * k


def test_mixed_alpha_and_mc24_truncation() -> None:
    model = models.build("looped", VOCAB, WIDTH, seed=3, iterations=5)
    x, y = _data(3)
    gen = torch.Generator().manual_seed(4)
    n, k = draw_progressive(5, 2, copy.deepcopy(gen))
    got = progressive_loss(model, x, _ce(y), 0.25, 2, gen)
    l_max = _ce(y)(_manual(model, x, 3, 2))  # MC24: R − m without gradient, m with
    l_prog = _ce(y)(_manual(model, x, n, k))
    torch.testing.assert_close(got, 0.75 * l_max + 0.25 * l_prog, atol=1e-6, rtol=0)
    got.backward()
    g = _grads(model)
    (0.75 * l_max + 0.25 * l_prog).backward()
    want = _grads(model)
    for name in want:
        torch.testing.assert_close(g[name], want[name], atol=1e-6, rtol=1e-5, msg=name)


def test_draw_follows_the_spec() -> None:
    """n ~ U{0 … R−1}, k ~ U{1 … R−n} (BA22), or k ≤ min(R − n, m) (MC24); every pair occurs."""
    gen = torch.Generator().manual_seed(0)
    r = 4
    pairs = Counter(draw_progressive(r, None, gen) for _ in range(4000))
    assert set(pairs) == {(n, k) for n in range(r) for k in range(1, r - n + 1)}
    n_marginal = Counter()
    for (n, _), c in pairs.items():
        n_marginal[n] += c
    assert all(abs(n_marginal[n] / 4000 - 1 / r) < 0.03 for n in range(r))
    assert abs(pairs[(0, 1)] / 4000 - 1 / (r * r)) < 0.02  # P(n=0) · P(k=1 | n=0)
    capped = {draw_progressive(6, 2, gen) for _ in range(2000)}
    assert capped == {(n, k) for n in range(6) for k in range(1, min(6 - n, 2) + 1)}
    a = [draw_progressive(9, None, torch.Generator().manual_seed(5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]  # deterministic per generator seed


def test_ensemble_progressive_loss_is_per_member() -> None:
    seeds = [3, 5]
    ens = models.build_ensemble("looped", VOCAB, WIDTH, seeds, iterations=3)
    x = tokens(2, 3, 8, seed=1)
    y = tokens(2, 3, 8, seed=2)

    def per_member(logits: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1), reduction="none")
        return nll.view(2, -1).mean(1)

    gen = torch.Generator().manual_seed(7)
    n, k = draw_progressive(3, None, copy.deepcopy(gen))
    got = progressive_loss(ens, x, per_member, 0.5, None, gen)
    assert got.shape == (2,)
    for e, seed in enumerate(seeds):
        single = models.build("looped", VOCAB, WIDTH, seed=seed, iterations=3)
        ce = _ce(y[e])
        want = 0.5 * ce(single(x[e])) + 0.5 * ce(_manual(single, x[e], n, k))
        torch.testing.assert_close(got[e], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha must be a number in [0, 1], got 1.5"),
        ({"alpha": True}, "alpha must be a number in [0, 1], got True"),
        ({"max_backprop": 0}, "max_backprop must be an integer >= 1, got 0"),
    ],
)
def test_bad_progressive_arguments(kwargs: dict, message: str) -> None:
    model = models.build("dtnet", VOCAB, WIDTH, iterations=2)
    x, y = _data()
    with pytest.raises(UserError) as err:
        progressive_loss(model, x, _ce(y), **kwargs)
    assert str(err.value) == message


def test_progressive_loss_needs_a_depth_model() -> None:
    with pytest.raises(UserError, match="'lstm' has no recurrent depth"):
        progressive_loss(models.build("lstm", VOCAB, WIDTH), *_data()[:1], lambda z: z.sum())


def test_max_confidence_picks_the_most_confident_iteration_per_row() -> None:
    sure, unsure = torch.tensor([5.0, 0.0, 0.0]), torch.tensor([0.5, 0.0, 0.0])
    every = torch.zeros(3, 2, 2, 3)  # [R′, B, T, V]
    every[0, 0] = unsure  # row 0: iteration 2 is sure everywhere
    every[1, 0] = sure
    every[2, 0, 0], every[2, 0, 1] = sure * 2, unsure  # higher at t=0, lower mean
    every[:, 1] = unsure  # row 1: a tie everywhere -> the first iteration
    logits, chosen = max_confidence(every)
    assert chosen.tolist() == [1, 0]
    assert torch.equal(logits[0], every[1, 0]) and torch.equal(logits[1], every[0, 1])
    mask = torch.tensor([[True, False], [True, True]])  # row 0 scored on t = 0 only
    assert max_confidence(every, mask)[1].tolist() == [2, 0]


@pytest.mark.parametrize(("family", "opts"), FAMILIES, ids=IDS)
def test_trains_on_prefix_sums_with_todays_trainer(family: str, opts: dict) -> None:
    """Smoke: ``training.fit`` (plain loss after R iterations) on prefix_sums at N = 8 lowers
    the loss below what ignoring the bits allows (ln 2 = 0.693 per position) and predicts
    better than chance."""
    task = tasks.make("prefix_sums")
    model = models.build(family, len(task.vocab), 32, seed=0, **{**opts, "iterations": 4})
    budget = training.Budget(max_steps=200, batch_size=32, eval_every=50, warmup=20)
    result = training.fit(model, task, 8, budget, seed=0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] and losses[-1] < 0.65, losses
    assert result.token_accuracy > 0.58


def test_progressive_training_lowers_the_loss() -> None:
    """Smoke: a few AdamW steps on the progressive loss (α = 1) lower the loss at R."""
    task = tasks.make("prefix_sums")
    model = models.build("dtnet", len(task.vocab), 16, seed=0, iterations=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    batch = task.sample(6, 64, seed=1)
    x, y = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)

    def ce(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    with torch.no_grad():
        before = float(ce(model(x)))
    for _ in range(60):
        opt.zero_grad()
        progressive_loss(model, x, ce, 1.0, None, gen).backward()
        opt.step()
    with torch.no_grad():
        after = float(ce(model(x)))
    assert after < before - 0.1, (before, after)
