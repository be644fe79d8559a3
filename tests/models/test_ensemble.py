"""Ensembles: member e == build(seed=seeds[e]); members are independent."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sepbench import models
from sepbench.errors import UserError
from tests.models.conftest import VOCAB, WIDTH, tokens

Config = tuple[str, dict[str, Any]]
SEEDS = [11, 4, 7]


def test_member_equals_single_model_with_same_seed(config: Config) -> None:
    family, opts = config
    ens = models.build_ensemble(family, VOCAB, WIDTH, SEEDS, **opts)
    assert ens.size == 3 and ens.seeds == SEEDS and ens.family == family
    x = tokens(3, 2, 23, seed=5)
    out = ens(x)
    assert out.shape == (3, 2, 23, VOCAB)
    for e, seed in enumerate(SEEDS):
        single = models.build(family, VOCAB, WIDTH, seed=seed, **opts)
        member = ens.member(e)
        sd, ms = single.state_dict(), member.state_dict()
        assert sd.keys() == ms.keys() and all(torch.equal(sd[k], ms[k]) for k in sd)
        torch.testing.assert_close(out[e], single(x[e]), atol=1e-5, rtol=1e-5)
        assert member.config() == single.config()


def test_gradients_are_separate_and_equal_single_model_gradients(config: Config) -> None:
    """A loss on member 1 only: member 1 gets exactly the single model's gradient, the others
    get zero."""
    family, opts = config
    ens = models.build_ensemble(family, VOCAB, WIDTH, SEEDS, **opts)
    x = tokens(3, 2, 17, seed=6)
    target = torch.randn(2, 17, VOCAB)
    ((ens(x)[1] - target) ** 2).mean().backward()
    single = models.build(family, VOCAB, WIDTH, seed=SEEDS[1], **opts)
    ((single(x[1]) - target) ** 2).mean().backward()
    grads = dict(single.named_parameters())
    for name, p in ens.stacked().items():
        assert p.grad is not None, name
        assert torch.count_nonzero(p.grad[0]) == 0 and torch.count_nonzero(p.grad[2]) == 0
        g = grads[name].grad
        assert g is not None
        torch.testing.assert_close(p.grad[1], g, atol=1e-5, rtol=1e-4, msg=name)


def test_member_is_a_copy_with_current_weights() -> None:
    ens = models.build_ensemble("gru", VOCAB, WIDTH, [0, 1])
    with torch.no_grad():
        ens.stacked()["readout.bias"][1].fill_(3.0)
    m = ens.member(1)
    assert torch.equal(m.readout.bias, torch.full((VOCAB,), 3.0))
    assert m.seed == 1
    with torch.no_grad():
        m.readout.bias.zero_()
    assert ens.stacked()["readout.bias"][1][0] == 3.0
    x = tokens(2, 3, 9)
    torch.testing.assert_close(ens(x)[1], ens.member(1)(x[1]))


def test_ensemble_training_step_matches_separate_training() -> None:
    """Two AdamW steps on the ensemble (sum of member losses) == the same steps on each model
    alone, with per-member gradient clipping."""
    fam, seeds = "lstm", [2, 3]
    ens = models.build_ensemble(fam, VOCAB, WIDTH, seeds)
    singles = [models.build(fam, VOCAB, WIDTH, seed=s) for s in seeds]
    opt = torch.optim.AdamW(ens.parameters(), lr=0.01)
    opts = [torch.optim.AdamW(m.parameters(), lr=0.01) for m in singles]
    x = tokens(2, 4, 13, seed=1)
    y = tokens(2, 4, 13, seed=2)
    ce = torch.nn.functional.cross_entropy
    for _ in range(2):
        opt.zero_grad()
        logits = ens(x)
        loss = sum(ce(logits[e].reshape(-1, VOCAB), y[e].reshape(-1)) for e in range(2))
        loss.backward()
        ens.clip_grad_norm_(0.5)
        opt.step()
        for e, (m, o) in enumerate(zip(singles, opts, strict=True)):
            o.zero_grad()
            ce(m(x[e]).reshape(-1, VOCAB), y[e].reshape(-1)).backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            o.step()
    for e, m in enumerate(singles):
        for name, p in ens.member(e).named_parameters():
            torch.testing.assert_close(p, dict(m.named_parameters())[name], atol=1e-5, rtol=0)


def test_ensemble_is_causal_and_checks_shapes() -> None:
    ens = models.build_ensemble("transformer", VOCAB, WIDTH, [0, 1], layers=2)
    x = tokens(2, 2, 12)
    y = x.clone()
    y[:, :, 6:] = (y[:, :, 6:] + 1) % VOCAB
    torch.testing.assert_close(ens(y)[:, :, :6], ens(x)[:, :, :6], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"\[2, batch, time\]"):
        ens(tokens(3, 2, 5))


def test_ensemble_metadata() -> None:
    ens = models.build_ensemble("ssm", VOCAB, WIDTH, [5, 6], state_dim=4)
    single = models.build("ssm", VOCAB, WIDTH, state_dim=4)
    assert ens.num_parameters() == single.num_parameters()
    assert sum(p.numel() for p in ens.parameters()) == 2 * single.num_parameters()
    assert ens.state_size(10) == single.state_size(10)
    cfg = ens.config()
    assert cfg["seeds"] == [5, 6] and cfg["options"] == single.options
    assert ens.double().member(0).readout.weight.dtype == torch.float64


@pytest.mark.parametrize("seeds", [[], "01", [1, -2], None])
def test_bad_seeds(seeds: Any) -> None:
    with pytest.raises(UserError, match="seed"):
        models.build_ensemble("lstm", VOCAB, WIDTH, seeds)


def test_bad_family_or_option_is_a_user_error() -> None:
    """(Moved from the trainer's tests: ``fit_ensemble(family, ...)`` built its ensemble; now
    its callers build it with ``build_ensemble`` and the trainer takes the module.)"""
    with pytest.raises(UserError, match="unknown option 'heads'"):
        models.build_ensemble("lstm", VOCAB, WIDTH, [0], heads=2)
    with pytest.raises(UserError, match="unknown model family"):
        models.build_ensemble("mlp", VOCAB, WIDTH, [0])


def test_vmap_fallback_agrees_with_batched_pass() -> None:
    """``SeqModel.ensemble_forward`` (torch.func.vmap, the fallback for new families) computes
    what the families' explicitly batched passes compute."""
    for family, opts in [("transformer", {"heads": 2}), ("ssm", {})]:
        ens = models.build_ensemble(family, VOCAB, WIDTH, [0, 1], **opts)
        x = tokens(2, 2, 10)
        fallback = models.SeqModel.ensemble_forward(ens.template, ens.stacked(), x)
        torch.testing.assert_close(fallback, ens(x), atol=1e-5, rtol=1e-5)
