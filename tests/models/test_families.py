"""Every family: builds, shapes, causality, state size, stepping, determinism."""

from __future__ import annotations

import json
from typing import Any

import torch

from sepbench import models
from tests.models.conftest import VOCAB, WIDTH, tokens

Config = tuple[str, dict[str, Any]]


def test_every_family_is_covered() -> None:
    from tests.models.conftest import CONFIGS

    assert {f for f, _ in CONFIGS} == set(models.families())


def test_forward_shape_and_attributes(config: Config) -> None:
    family, opts = config
    model = models.build(family, VOCAB, WIDTH, seed=0, **opts)
    out = model(tokens(3, 11))
    assert out.shape == (3, 11, VOCAB)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert model.family == family and model.width == WIDTH and model.vocab_size == VOCAB
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.uses_retrieval == (family == "rag")
    for key, value in opts.items():
        assert model.options[key] == value


def test_causal(config: Config) -> None:
    """Logits at t do not change when tokens after t change."""
    family, opts = config
    model = models.build(family, VOCAB, WIDTH, seed=1, **opts)
    x = tokens(2, 40, seed=1)  # spans several SSM scan chunks
    base = model(x)
    for t in (0, 7, 16, 31, 38):
        y = x.clone()
        y[:, t + 1 :] = (y[:, t + 1 :] + 1 + torch.arange(39 - t) % 3) % VOCAB
        out = model(y)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_state_size_matches_carried_state_and_step_matches_forward(config: Config) -> None:
    """Step token by token: the state tuple holds exactly state_size floats per row, and the
    logits equal those of the parallel forward pass."""
    family, opts = config
    model = models.build(family, VOCAB, WIDTH, seed=2, **opts)
    batch, length = 3, 21
    x = tokens(batch, length, seed=2)
    full = model(x)
    state = model.init_state(batch)
    assert sum(s.numel() for s in state) == batch * model.state_size(0)
    for t in range(length):
        logits, state = model.step(x[:, t], state)
        torch.testing.assert_close(logits, full[:, t], atol=2e-5, rtol=1e-4)
        assert all(s.shape[0] == batch or s.shape[1] == batch for s in state)
        assert sum(s.numel() for s in state) == batch * model.state_size(t + 1)


def test_state_size_formulas() -> None:
    w = 16
    assert models.build("elman", 5, w, layers=3).state_size(100) == 3 * w
    assert models.build("gru", 5, w).state_size(100) == w
    assert models.build("lstm", 5, w, layers=2).state_size(100) == 2 * 2 * w
    assert models.build("ssm", 5, w, layers=2, state_dim=4).state_size(100) == 2 * w * 4
    tf = models.build("transformer", 5, w, layers=2, heads=4)
    assert tf.state_size(100) == 2 * 2 * w * 100
    hy = models.build("hybrid", 5, w, base="lstm")
    assert hy.state_size(10) == 2 * w + 2 * w * 10


def test_seeded_build_is_deterministic_and_leaves_global_rng_alone(config: Config) -> None:
    family, opts = config
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = models.build(family, VOCAB, WIDTH, seed=5, **opts)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = models.build(family, VOCAB, WIDTH, seed=5, **opts)
    c = models.build(family, VOCAB, WIDTH, seed=6, **opts)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    x = tokens(2, 9)
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), a(x))


def test_config_round_trip(config: Config) -> None:
    family, opts = config
    model = models.build(family, VOCAB, WIDTH, seed=4, **opts)
    cfg = json.loads(json.dumps(model.config()))
    again = models.build(**cfg)
    assert again.config() == model.config()
    sa, sb = model.state_dict(), again.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert models.from_config(cfg).options == model.options


def test_backward_reaches_every_parameter(config: Config) -> None:
    family, opts = config
    model = models.build(family, VOCAB, WIDTH, seed=3, **opts)
    model(tokens(2, 19)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.startswith(("positions.pos_emb",)):
            assert p.grad.abs().sum() > 0, name


def test_double_precision() -> None:
    for family in models.families():
        model = models.build(family, VOCAB, WIDTH, seed=0).double()
        assert model(tokens(2, 5)).dtype == torch.float64
