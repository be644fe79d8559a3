"""fit / train mechanics: determinism, data streams, early stop, ensembles vs fit."""

from __future__ import annotations

import json

import pytest
import torch

from sepbench import models, tasks, training
from sepbench.errors import UserError

TASK = tasks.make("index_lookup", max_length=16)
SHORT = training.Budget(max_steps=120, eval_every=40, eval_batch=64, confirm_batch=256, lr=1e-2)


def _strip(result: training.TrialResult) -> dict[str, object]:
    d = result.to_dict()
    d.pop("wall_time")
    return d


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("family", ["transformer", "gru"])
def test_fit_is_deterministic_given_the_seed(family: str) -> None:
    runs = []
    for prefetch in (True, False):
        model = models.build(family, len(TASK.vocab), 8, seed=3)
        runs.append((model, training.fit(model, TASK, 8, SHORT, seed=3, prefetch=prefetch)))
    (m1, r1), (m2, r2) = runs
    assert _strip(r1) == _strip(r2)
    assert _same_weights(m1, m2)
    other = models.build(family, len(TASK.vocab), 8, seed=3)
    r3 = training.fit(other, TASK, 8, SHORT, seed=4)
    assert r3.history != r1.history  # another seed: other data


def test_result_is_plain_json_with_the_full_config() -> None:
    model = models.build("transformer", len(TASK.vocab), 8, seed=0)
    r = training.fit(model, TASK, 8, SHORT, seed=0, threshold=0.95)
    back = training.TrialResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    cfg = r.config
    assert cfg["task"] == {"name": "index_lookup", "params": dict(TASK.params)}
    assert cfg["length"] == 8 and cfg["threshold"] == 0.95
    assert cfg["model"] == model.config()
    assert training.Budget.from_dict(cfg["budget"]) == SHORT
    assert r.seed == 0 and r.stop in ("reached", "budget")
    assert r.history and r.history[-1]["kind"] == "confirm"
    assert r.reached == (r.sequence_accuracy >= 0.95)


def test_early_stop_is_confirmed_and_reported_on_the_confirmation_set() -> None:
    model = models.build("transformer", len(TASK.vocab), 16, layers=1, seed=0)
    budget = training.Budget(max_steps=2000, lr=1e-2, eval_every=25, confirm_batch=512)
    seen: list[training.Progress] = []
    r = training.fit(model, TASK, 8, budget, seed=0, callback=seen.append)
    assert r.reached and r.stop == "reached" and r.steps < 2000
    assert r.steps % 25 == 0
    confirms = [p for p in seen if p.kind == "confirm"]
    assert confirms and confirms[-1].step == r.steps
    assert confirms[-1].metrics.examples == 512
    assert r.sequence_accuracy == confirms[-1].metrics.sequence_accuracy >= 0.99
    # every confirmation was triggered by a periodic evaluation at the threshold
    for c in confirms:
        before = [p for p in seen if p.kind == "eval" and p.step == c.step]
        assert before and before[0].metrics.sequence_accuracy >= 0.99


def test_budget_end_confirms_without_stopping_early() -> None:
    model = models.build("elman", len(TASK.vocab), 4, seed=0)
    budget = training.Budget(max_steps=30, eval_every=1000, confirm_batch=128)
    r = training.fit(model, TASK, 8, budget, seed=0)
    assert r.steps == 30 and r.stop in ("budget", "reached")
    assert [h["kind"] for h in r.history] == ["confirm"]


@pytest.mark.parametrize(("family", "options"), [("transformer", {"layers": 1}), ("lstm", {})])
def test_ensemble_members_match_fit(family: str, options: dict[str, int]) -> None:
    """Same data streams and per-member gradients: each member retraces fit() (up to
    floating-point rounding of the batched kernels)."""
    budget = training.Budget(max_steps=250, lr=1e-2, eval_every=25, confirm_batch=512)
    seeds = [0, 1]
    ensemble = models.build_ensemble(family, len(TASK.vocab), 8, seeds, **options)
    outcome = training.train(ensemble, TASK, 6, budget, seeds)
    for seed, ens, member in zip(seeds, outcome.results, outcome.models, strict=True):
        model = models.build(family, len(TASK.vocab), 8, seed=seed, **options)
        alone = training.fit(model, TASK, 6, budget, seed=seed)
        assert ens.seed == seed and ens.config == alone.config
        assert (ens.reached, ens.steps, ens.stop) == (alone.reached, alone.steps, alone.stop)
        assert ens.sequence_accuracy == pytest.approx(alone.sequence_accuracy, abs=0.01)
        for h_ens, h_alone in zip(ens.history, alone.history, strict=True):
            assert h_ens["step"] == h_alone["step"] and h_ens["kind"] == h_alone["kind"]
            assert h_ens["train_loss"] == pytest.approx(h_alone["train_loss"], rel=1e-3)
        # the snapshot is the member when it stopped, as a standalone model of the family
        assert member.config() == model.config()
        x = torch.from_numpy(TASK.sample(6, 32, seed=9).inputs)
        with torch.no_grad():
            member.eval(), model.eval()
            # equal up to the rounding drift of a few hundred Adam steps
            assert torch.allclose(member(x), model(x), rtol=0.02, atol=0.02)


def test_ensemble_stops_members_independently() -> None:
    budget = training.Budget(max_steps=400, lr=1e-2, eval_every=25, confirm_batch=256)
    ensemble = models.build_ensemble("transformer", len(TASK.vocab), 16, [0, 1], layers=1)
    results = training.train(ensemble, TASK, 6, budget, [0, 1]).results
    assert all(r.reached for r in results)
    assert len({r.steps for r in results}) >= 1
    assert all(r.history[-1]["step"] == r.steps for r in results)


def test_bad_arguments_are_user_errors() -> None:
    model = models.build("transformer", len(TASK.vocab), 8, seed=0)
    with pytest.raises(UserError, match="threshold"):
        training.fit(model, TASK, 8, SHORT, threshold=1.5)
    with pytest.raises(UserError, match="seed"):
        training.fit(model, TASK, 8, SHORT, seed=-1)
    with pytest.raises(UserError, match="max_length"):
        training.fit(model, TASK, 17, SHORT)
    with pytest.raises(UserError, match="device"):
        training.fit(model, TASK, 8, SHORT, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            training.fit(model, TASK, 8, SHORT, device="cuda")
    pair = models.build_ensemble("lstm", len(TASK.vocab), 8, [0, 1])
    for seeds in ([], [0], [0, 1, 2]):  # one seed per member
        with pytest.raises(UserError, match=r"one seed per member \(2\)"):
            training.train(pair, TASK, 8, SHORT, seeds)
    with pytest.raises(UserError, match=r"one seed per member \(1\)"):
        training.train(model, TASK, 8, SHORT, [0, 1])
    with pytest.raises(UserError, match="seed"):
        training.train(pair, TASK, 8, SHORT, [0, -1])
