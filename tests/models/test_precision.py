"""Bounded precision (docs/precision.md): the quantiser, the options, and the bound made real.

The central test enumerates every binary index-lookup prefix of N = 10 symbols, steps each
quantised recurrent model through it and checks (1) every carried number lies on its 2^p-level
grid, (2) the carried states number at most 2^(state numbers · p) — below the 2^N prefixes, so
the count could exceed it — and (3) nothing bypasses them: prefixes that leave the same state
get the same logits from the *parallel* forward pass on every query. The same unquantised
models carry more distinct states than any bound tested, so each check could fail.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import models, tasks, training
from sepbench.errors import UserError
from sepbench.models import cards
from sepbench.models.cards import MAX_BITS
from sepbench.models.precision import (
    FLOAT32_BITS,
    Grid,
    fixed_point,
    inside,
    positive,
    quantise,
    snap,
    snap_,
    unit,
)
from tests.models.conftest import VOCAB, tokens

# ---------------------------------------------------------------------------------- quantiser
GRIDS = st.sampled_from([unit, positive, fixed_point])
BITS = st.integers(1, MAX_BITS)
FLOATS = st.floats(-1e6, 1e6, allow_nan=False, width=32)


def _grid(make: Any, bits: int) -> Grid:
    g: Grid = make(bits)
    return g


@given(GRIDS, st.integers(1, 12))
def test_exactly_two_to_the_p_levels_evenly_spaced_ends_included(make: Any, bits: int) -> None:
    grid = _grid(make, bits)
    dense = torch.linspace(grid.lo - 1, grid.hi + 1, 20 * grid.count + 7)
    got = torch.unique(snap(torch.cat([dense, grid.levels()]), grid))
    assert got.numel() == grid.count == 2**bits
    assert torch.equal(got, grid.levels())
    assert got[0].item() == grid.lo and got[-1].item() == grid.hi
    gaps = got.double().diff()
    ulps = 2 * torch.finfo(torch.float32).eps * max(abs(grid.lo), abs(grid.hi))
    assert torch.allclose(gaps, torch.full_like(gaps, grid.step), rtol=0, atol=ulps)


@settings(max_examples=300)
@given(GRIDS, BITS, st.lists(FLOATS, min_size=1, max_size=16))
def test_snap_range_idempotence_and_monotonicity(make: Any, bits: int, xs: list[float]) -> None:
    grid = _grid(make, bits)
    x = torch.tensor(sorted(xs), dtype=torch.float32)
    q = snap(x, grid)
    assert q.dtype == x.dtype
    assert bool(((q >= grid.lo) & (q <= grid.hi)).all())
    assert torch.equal(snap(q, grid), q)  # idempotent at every p, in float32
    assert bool((q.diff() >= 0).all())  # monotone
    assert torch.equal(snap_(x.clone(), grid), q)  # the kernels' in-place form is the same
    if bits <= FLOAT32_BITS:  # the nearest level, and on the grid to float32 accuracy
        assert bool(((q - x.clamp(grid.lo, grid.hi)).abs() <= grid.step / 2 + 1e-6).all())
        k = (q.double() - grid.lo) / grid.step
        assert torch.allclose(k, k.round(), atol=1e-3)


@given(BITS, st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=8))
def test_float64_snap_is_idempotent_and_on_the_grid(bits: int, xs: list[float]) -> None:
    grid = unit(bits)
    q = snap(torch.tensor(xs, dtype=torch.float64), grid)
    assert q.dtype == torch.float64 and torch.equal(snap(q, grid), q)
    k = (q - grid.lo) / grid.step
    assert torch.allclose(k, k.round(), atol=1e-3)


@given(GRIDS, BITS, st.lists(FLOATS, min_size=1, max_size=16))
def test_gradient_passes_straight_through_inside_the_range_only(
    make: Any, bits: int, xs: list[float]
) -> None:
    grid = _grid(make, bits)
    x = torch.tensor(xs, requires_grad=True)
    out = quantise(x, grid)
    assert torch.equal(out.detach(), snap(x.detach(), grid))  # forward: exactly the levels
    weights = torch.arange(1.0, len(xs) + 1)
    (out * weights).sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, weights * inside(x.detach(), grid))


def test_no_grid_is_the_identity_and_bad_grids_are_refused() -> None:
    x = torch.randn(5, requires_grad=True)
    assert quantise(x, None) is x
    assert positive(1).levels().tolist() == [0.0, 1.0]
    assert unit(1).levels().tolist() == [-1.0, 1.0]
    # B24's balance: step · R ≈ 1 (odd p) or 1/2 (even p), R a power of two
    assert fixed_point(9).hi == 16 and fixed_point(9).step * 16 == pytest.approx(1, rel=0.01)
    assert fixed_point(8).hi == 8 and fixed_point(8).step * 8 == pytest.approx(0.5, rel=0.01)
    for bad in ((0, -1.0, 1.0), (33, -1.0, 1.0), (2, 1.0, 1.0)):
        with pytest.raises(ValueError):
            Grid(*bad)


# ---------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("family", "options", "words"),
    [
        ("lstm", {"state_bits": 0}, ["state_bits", "from 1 to 32"]),
        ("ssm", {"state_bits": 33}, ["state_bits", "from 1 to 32"]),
        ("gru", {"state_bits": 2.5}, ["state_bits", "2.5"]),
        ("elman", {"state_bits": True}, ["state_bits"]),
        ("transformer", {"precision_bits": -1}, ["precision_bits", "from 1 to 32"]),
        ("transformer", {"state_bits": 4}, ["state_bits", "precision_bits", "elman, lstm"]),
        ("lstm", {"precision_bits": 4}, ["precision_bits", "state_bits", "transformer, hybrid"]),
        ("rag", {"precision_bits": 8}, ["precision_bits", "transformer, hybrid"]),
    ],
)
def test_bad_precision_options_are_one_line_errors(
    family: str, options: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(UserError) as err:
        models.build(family, VOCAB, 8, **options)
    message = str(err.value)
    assert "\n" not in message and f"model '{family}'" in message
    for word in words:
        assert word in message


#: the families whose carried numbers the RNN theorems bound (state_bits); the tree encoders
#: and the recurrent-depth families are outside the catalogue's model classes
BOUNDED_STATE = {"elman", "lstm", "gru", "rag", "ssm", "hybrid"}


def test_the_options_exist_where_the_numbers_do() -> None:
    for family in models.families():
        names = set(models.describe(family)["options"])
        assert ("state_bits" in names) == (family in BOUNDED_STATE), family
        assert ("precision_bits" in names) == (family in ("transformer", "hybrid")), family


def test_unset_options_leave_the_model_as_it_was() -> None:
    """Absent from options and config (trial keys and pinned outcomes stay), same weights and
    outputs as with the option given as None."""
    for family in models.families():
        plain = models.build(family, VOCAB, 8, seed=3)
        assert "state_bits" not in plain.options and "precision_bits" not in plain.options
        names = set(models.describe(family)["options"]) & {"state_bits", "precision_bits"}
        none = models.build(family, VOCAB, 8, seed=3, **dict.fromkeys(names))
        assert none.config() == plain.config()
        x = tokens(2, 9)
        assert torch.equal(none.eval()(x), plain.eval()(x))  # eval: no dropout or noise
    assert models.build("lstm", VOCAB, 8, state_bits="4").options["state_bits"] == 4  # CLI


def test_a_one_bit_lstm_carries_its_cell_as_its_output() -> None:
    """At p = 1, c = ±1 and σ(o)·tanh(±1) rounds to ±1: h = c (docs/precision.md)."""
    model = models.build("lstm", VOCAB, 8, seed=0, state_bits=1, layers=2)
    state = model.init_state(4)
    for t in range(6):
        _, state = model.step(tokens(4, 6)[:, t], state)
        assert torch.equal(state[0], state[1])
    two = models.build("lstm", VOCAB, 8, seed=0, state_bits=2)
    state = two.init_state(4)
    for t in range(6):
        _, state = two.step(tokens(4, 6)[:, t], state)
    assert not torch.equal(state[0], state[1])


def test_quantised_ssm_refuses_state_changing_inference_options() -> None:
    model = models.build("ssm", VOCAB, 8, state_bits=2)
    for options in ({"window": 4}, {"state_norm": [[1.0] * 8]}):
        with pytest.raises(UserError, match="quantised state"):
            model.with_inference(**options)
    scaled = model.with_inference(decay_scale=0.5)
    assert scaled(tokens(2, 5)).shape == (2, 5, VOCAB)
    # the traced states are the carried, quantised ones
    trace = model.state_trace(tokens(3, 8), stride=4)
    state = model.init_state(3)
    for t in range(8):
        _, state = model.step(tokens(3, 8)[:, t], state)
    norms = torch.linalg.vector_norm(state[0].detach().double(), dim=-1).numpy()
    assert abs(trace.norms[0, :, -1, :] - norms).max() < 1e-6


# -------------------------------------------------------------------------------- state bits
BIT_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("elman", {}),
    ("elman", {"state_bits": 3, "layers": 2}),
    ("lstm", {"state_bits": 1}),
    ("rag", {"cell": "gru", "state_bits": 5}),
    ("ssm", {"state_bits": 2, "state_dim": 3}),
    ("transformer", {"precision_bits": 8, "layers": 2}),
    ("transformer", {}),
    ("hybrid", {"state_bits": 2}),
    ("hybrid", {"base": "ssm", "state_bits": 4, "precision_bits": 6, "state_dim": 2}),
]


@pytest.mark.parametrize(("family", "options"), BIT_VARIANTS)
def test_state_bits_is_state_numbers_times_their_bits(family: str, options: dict[str, Any]) -> None:
    width = 6
    model = models.build(family, VOCAB, width, seed=0, **options)
    card = cards.card(family)
    recurrent = int(card.state_per_width(options)[0]) * width
    for length in (0, 1, 7):
        cache = model.state_size(length) - recurrent
        expected = recurrent * options.get("state_bits", 32)
        expected += cache * options.get("precision_bits", 32)
        assert model.state_bits(length) == expected == card.state_bits(width, options, length)
        ens = models.build_ensemble(family, VOCAB, width, [0, 1], **options)
        assert ens.state_bits(length) == expected
    assert models.build("lstm", VOCAB, width, state_bits=2).state_bits(5) == 2 * width * 2
    assert models.build(family, VOCAB, width, **options).double().float_bits() == 64


def test_unquantised_ssm_state_bits_count_the_inference_state() -> None:
    model = models.build("ssm", VOCAB, 4, state_dim=2).with_inference(window=3)
    assert model.state_bits(9) == model.state_size(9) * 32


# ------------------------------------------------------------------- kernels: straight-through
@pytest.mark.parametrize(
    ("family", "options", "clamps"),
    [
        ("elman", {"nonlinearity": "relu", "layers": 2}, True),
        ("elman", {}, False),
        ("elman", {"nonlinearity": "sigmoid"}, False),
        ("lstm", {"layers": 2}, True),
        ("gru", {}, False),
        ("ssm", {}, False),
        ("hybrid", {"base": "lstm", "precision_bits": 5}, False),
        ("transformer", {"precision_bits": 4}, False),
    ],
)
@pytest.mark.parametrize("bits", [1, 3])
def test_forward_gradients_equal_the_stepwise_straight_through_gradients(
    family: str, options: dict[str, Any], clamps: bool, bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batched kernels' hand-written backward passes (and the SSM's sequential scan) give
    the gradients autograd gives the step-by-step equations with ``quantise``. Weights are
    scaled up so that relu states and LSTM cells leave [0, 1] / [−1, 1] (the clipped part of
    the estimator is exercised; checked)."""
    key = "precision_bits" if family == "transformer" else "state_bits"
    opts = {**options, key: bits}
    model = models.build(family, VOCAB, 6, seed=1, **opts)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    x, target = tokens(3, 12, seed=2), torch.randn(3, 12, VOCAB, generator=torch.Generator())
    ((model(x) - target) ** 2).mean().backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    state, outs = model.init_state(3), []
    for t in range(12):
        out, state = model.step(x[:, t], state)
        outs.append(out)
    ((torch.stack(outs, 1) - target) ** 2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        scale = float(p.grad.abs().max())  # weights ×3: float noise grows with the gradient
        assert float((fast[name] - p.grad).abs().max()) <= 1e-4 * scale + 1e-6, name
    if clamps:
        assert _clamped_somewhere(model, x, monkeypatch)


def _clamped_somewhere(model: Any, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether some relu state or LSTM cell left the grid's range before snapping (a spy on
    the step path's ``quantise``)."""
    seen = []

    def spy(value: torch.Tensor, grid: Grid | None) -> torch.Tensor:
        if grid is not None:
            seen.append(bool(((value < grid.lo) | (value > grid.hi)).any()))
        return quantise(value, grid)

    monkeypatch.setattr("sepbench.models.rnn.quantise", spy)
    state = model.init_state(x.shape[0])
    for t in range(x.shape[1]):
        _, state = model.step(x[:, t], state)
    return bool(seen) and any(seen)


# ---------------------------------------------------------------- the bound is real (Deliver 2)
N = 10
"""Binary index-lookup prefixes enumerated: 2^10 = 1024, more than every bound below."""
TASK = tasks.make("index_lookup", alphabet=2, max_length=16)

# (family, options, width): m = state numbers · width = 2, so the bound 2^(m·p) ≤ 256 < 2^N
BOUND_MODELS: list[tuple[str, dict[str, Any], int]] = [
    ("elman", {}, 2),
    ("elman", {"nonlinearity": "sigmoid"}, 2),
    ("elman", {"nonlinearity": "relu"}, 2),
    ("gru", {}, 2),
    ("lstm", {}, 1),
    ("rag", {"cell": "lstm"}, 1),
    ("gru", {"layers": 2}, 1),
    ("ssm", {"state_dim": 1, "layer_norm": False}, 2),
    ("ssm", {"layers": 2, "state_dim": 1, "layer_norm": False}, 1),
    ("hybrid", {"base": "gru"}, 2),
    ("hybrid", {"base": "ssm", "state_dim": 1, "layer_norm": False, "precision_bits": 4}, 2),
]


def _prefixes() -> torch.Tensor:
    """Every string of N symbols s0/s1 (token ids 1, 2), ``[2^N, N]``."""
    rows = list(itertools.product((1, 2), repeat=N))
    return torch.tensor(rows, dtype=torch.long)


def _carried(model: Any, prefixes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the recurrent state after each prefix, flattened ``[rows, m]``; its attention cache
    ``[rows, …]``, empty for a pure RNN) by stepping."""
    state = model.init_state(prefixes.shape[0])
    with torch.no_grad():
        for t in range(prefixes.shape[1]):
            _, state = model.step(prefixes[:, t], state)
    parts = state[:-2] if model.family == "hybrid" else state
    rows = prefixes.shape[0]
    rec = torch.cat([torch.movedim(s, _batch_dim(s, rows), 0).reshape(rows, -1) for s in parts], 1)
    cache = state[-2:] if model.family == "hybrid" else ()
    flat = [c.reshape(rows, -1) for c in cache]
    return rec, torch.cat(flat, 1) if flat else rec.new_zeros(rows, 0)


def _batch_dim(s: torch.Tensor, rows: int) -> int:
    return 0 if s.shape[0] == rows else 1  # RNN states are [layers, rows, width]


def _distinct(rows: torch.Tensor) -> int:
    return int(torch.unique(rows, dim=0).shape[0])


def _check_bound(model: Any, bits: int) -> None:
    prefixes = _prefixes()
    rec, cache = _carried(model, prefixes)
    m = int(cards.card(model.family).state_per_width(model.options)[0]) * model.width
    assert rec.shape[1] == m
    levels = model_grid(model).levels()
    assert bool(torch.isin(rec, levels).all()), "a carried number off the grid"
    assert _distinct(rec) <= 2 ** (m * bits) < 2**N
    if "precision_bits" in model.options:  # the cache is on the attention grid
        assert bool(torch.isin(cache, _attention_levels(model)).all())
    if model.family == "hybrid":
        return  # its cache grows with every position: the state is not the recurrent part alone
    # nothing bypasses the state: the parallel forward pass on prefix + query depends on the
    # prefix only through the carried state
    groups = torch.unique(rec, dim=0, return_inverse=True)[1]
    at1 = 1 + TASK.params["alphabet"]
    with torch.no_grad():
        for query in range(N):
            row = torch.full((prefixes.shape[0], 1), at1 + query)
            logits = model(torch.cat([prefixes, row], 1))[:, -1]
            first = torch.zeros(int(groups.max()) + 1, dtype=torch.long)
            first.scatter_reduce_(
                0, groups, torch.arange(prefixes.shape[0]), reduce="amin", include_self=False
            )
            torch.testing.assert_close(logits, logits[first[groups]], atol=1e-5, rtol=0)


def model_grid(model: Any) -> Grid:
    grid: Grid | None
    if getattr(model, "core", None) is not None:
        grid = model.core.grid
    elif model.family == "ssm":
        grid = model.grid
    else:
        grid = model.ssm_layers[0].grid
    assert grid is not None
    return grid


def _attention_levels(model: Any) -> torch.Tensor:
    return fixed_point(model.options["precision_bits"]).levels()


@pytest.mark.parametrize(("family", "options", "width"), BOUND_MODELS)
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_carried_states_never_exceed_two_to_the_state_bits_random_weights(
    family: str, options: dict[str, Any], width: int, bits: int
) -> None:
    for seed, scale in ((0, 1.0), (0, 3.0), (1, 3.0)):
        _check_bound(_random(family, {**options, "state_bits": bits}, width, seed, scale), bits)


def _random(family: str, options: dict[str, Any], width: int, seed: int, scale: float) -> Any:
    """The seeded initial weights, times ``scale`` (3: states spread over their range)."""
    model = models.build(family, len(TASK.vocab), width, seed=seed, **options)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


@pytest.mark.parametrize(("family", "options", "width"), BOUND_MODELS)
def test_the_bound_could_fail_unquantised_models_carry_more_states(
    family: str, options: dict[str, Any], width: int
) -> None:
    counts = []
    for scale in (1.0, 3.0):  # the weights the bound tests use (seed 0)
        rec, _ = _carried(_random(family, options, width, 0, scale), _prefixes())
        counts.append(_distinct(rec))
    assert max(counts) > 2 ** (rec.shape[1] * 4)


BUDGET = training.Budget(max_steps=40, warmup=5, eval_every=20, eval_batch=64, lr=3e-2)


@pytest.mark.parametrize(("family", "options", "width"), BOUND_MODELS)
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_carried_states_never_exceed_two_to_the_state_bits_trained_weights(
    family: str, options: dict[str, Any], width: int, bits: int
) -> None:
    """Briefly trained through ``training.fit`` (the weights move; the bound still holds)."""
    model = models.build(family, len(TASK.vocab), width, seed=2, state_bits=bits, **options)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = training.fit(model, TASK, N, BUDGET, seed=bits, threads=1)
    assert result.steps > 0 and math.isfinite(result.loss)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert result.config["model"]["options"]["state_bits"] == bits
    _check_bound(model, bits)


def test_quantised_ensembles_train_and_members_keep_the_bound() -> None:
    ens = models.build_ensemble("lstm", len(TASK.vocab), 1, [3, 4], state_bits=2)
    outcome = training.train(ens, TASK, N, BUDGET, [3, 4], threads=1)
    for result, member in zip(outcome.results, outcome.models, strict=True):
        assert member.options["state_bits"] == 2 and result.steps > 0
        _check_bound(member, 2)
