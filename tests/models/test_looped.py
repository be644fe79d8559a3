"""The looped Transformer: k iterations == k applications of its block (an independent
re-implementation from the parameters), forward_all, injection and state_init modes, Abacus
ids against the addition task, step-wise decoding at any iteration count, errors."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import models, tasks
from sepbench.errors import UserError
from sepbench.models.abacus import abacus_ids
from sepbench.models.access import Weights
from sepbench.models.depth import forward_all
from tests.models.conftest import VOCAB, tokens

WIDTH = 8
Params = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- the reference
def _lin(x: torch.Tensor, p: Params, name: str) -> torch.Tensor:
    out = x @ p[name + ".weight"].T
    return out + p[name + ".bias"] if name + ".bias" in p else out


def _ln(x: torch.Tensor, p: Params, name: str) -> torch.Tensor:
    if name + ".weight" not in p:
        return x
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * p[name + ".weight"] + p[name + ".bias"]


def _layer(x: torch.Tensor, p: Params, pre: str, heads: int, dh: int) -> torch.Tensor:
    """One pre-norm causal layer, written from its definition (softmax over s ≤ t)."""
    b, t, _ = x.shape
    h = _ln(x, p, pre + "ln1")
    q, k, v = (_lin(h, p, pre + "attn." + n).view(b, t, heads, dh) for n in ("W_Q", "W_K", "W_V"))
    scores = torch.einsum("bthd,bshd->bhts", q, k) / dh**0.5
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    att = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = torch.einsum("bhts,bshd->bthd", att, v).reshape(b, t, heads * dh)
    x = x + _lin(y, p, pre + "attn.W_O")
    if pre + "mlp.fc1.weight" in p:
        x = x + _lin(
            torch.relu(_lin(_ln(x, p, pre + "ln2"), p, pre + "mlp.fc1")), p, pre + "mlp.fc2"
        )
    return x


def _naive_abacus(row: list[int], lo: int, hi: int) -> list[int]:
    out, run = [], 0
    for tok in row:
        run = run + 1 if lo <= tok <= hi else 0
        out.append(run)
    return out


def reference(model: Any, x: torch.Tensor, k: int) -> torch.Tensor:
    """Logits after k iterations, from the parameters and the definition in lengthgen.md:
    e = Embed(x) + positions; h_0; h_r = Block(inject(h_{r−1}, e)); logits = Head(h_k)."""
    o = model.options
    p = {n: t.detach() for n, t in model.named_parameters()}
    e = p["embed.weight"][x]
    if o["pos"] == "learned":
        e = e + p["positions.pos_emb"][: x.shape[1]]
    if o["pos"] == "abacus":
        ids = [_naive_abacus(r, o["digit_min"], o["digit_max"]) for r in x.tolist()]
        e = e + p["abacus.weight"][torch.tensor(ids)]
    h = {"zero": torch.zeros_like(e), "embed": e, "noise": torch.zeros_like(e)}[o["state_init"]]
    for r in range(k):
        if o["injection"] == "add":
            h = h + e
        elif o["injection"] == "concat":
            h = _lin(torch.cat([h, e], -1), p, "inject")
        elif r == 0:  # none: the input enters once
            h = h + e
        for layer in range(o["block_layers"]):
            h = _layer(h, p, f"layers.{layer}.", o["heads"], o["head_dim"])
    return _lin(_ln(h, p, "norm_f"), p, "readout")


CASES: list[dict[str, Any]] = [
    {"injection": "add", "state_init": "zero"},
    {"injection": "concat", "state_init": "embed", "block_layers": 2, "heads": 2},
    {"injection": "none", "state_init": "zero", "pos": "learned", "max_len": 16},
    {"injection": "none", "state_init": "embed", "mlp_width": 0, "layer_norm": False},
    {"injection": "add", "state_init": "noise", "pos": "abacus", "digit_max": 3, "abacus_max": 20},
]


@pytest.mark.parametrize("opts", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_k_iterations_equal_k_applications_of_the_block(opts: dict[str, Any]) -> None:
    """For k below, at and far above the training R = 3 (noise: evaluation mode, h_0 = 0);
    in double precision, so that only a different function could tell them apart."""
    model = models.build("looped", VOCAB, WIDTH, seed=3, iterations=3, **opts).double().eval()
    x = tokens(2, 13, seed=4)
    for k in (1, 2, 3, 7, 12):
        torch.testing.assert_close(model(x, iterations=k), reference(model, x, k))
    torch.testing.assert_close(model(x), reference(model, x, 3))
    # the iteration count matters: the outputs at different k are not all the same
    assert not torch.allclose(model(x, iterations=1), model(x, iterations=7))


@pytest.mark.parametrize("family", ["looped", "dtnet"])
def test_forward_all_equals_forward_at_each_count(family: str) -> None:
    opts = {"heads": 2, "injection": "concat"} if family == "looped" else {}
    model = models.build(family, VOCAB, WIDTH, seed=1, iterations=2, **opts)
    x = tokens(3, 10, seed=2)
    every = model.forward_all(x, 9)
    assert every.shape == (9, 3, 10, VOCAB)
    for r in range(1, 10):
        torch.testing.assert_close(every[r - 1], model(x, iterations=r), atol=1e-6, rtol=0)
    torch.testing.assert_close(forward_all(model, x, 9), every, atol=0, rtol=0)
    assert model.forward_all(x).shape[0] == 2  # default: the training R


@pytest.mark.parametrize("family", ["looped", "dtnet"])
def test_ensemble_forward_all_matches_members(family: str) -> None:
    ens = models.build_ensemble(family, VOCAB, WIDTH, [3, 8], iterations=2)
    x = tokens(2, 2, 9, seed=1)
    every = forward_all(ens, x, 5)
    assert every.shape == (5, 2, 2, 9, VOCAB)
    for e in range(2):
        member = ens.member(e)
        torch.testing.assert_close(every[:, e], member.forward_all(x[e], 5), atol=1e-5, rtol=0)


def test_injection_none_ignores_e_after_the_first_iteration() -> None:
    """``iterate`` (iterations 2, 3, …) reads e under add/concat but not under none."""
    x = tokens(2, 9, seed=7)
    for injection, reads in [("add", True), ("concat", True), ("none", False)]:
        model = models.build("looped", VOCAB, WIDTH, seed=0, injection=injection)
        w = Weights.of(model)
        e, h = model.start(x, w)
        other = torch.randn_like(e)
        same = torch.allclose(model.iterate(h, e, w), model.iterate(h, other, w))
        assert same != reads, injection
        # and the first iteration does read the input under every mode
        y = x.clone()
        y[:, 0] = (y[:, 0] + 1) % VOCAB
        assert not torch.allclose(model(x, iterations=1), model(y, iterations=1))


def test_state_init_noise_draws_from_the_models_generator() -> None:
    def build(init: str) -> Any:
        return models.build("looped", VOCAB, WIDTH, seed=9, state_init=init, iterations=2)

    x = tokens(2, 6, seed=1)
    a, b, zero = build("noise"), build("noise"), build("zero")
    expected_gen = copy.deepcopy(a.generator)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    first = a(x)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched
    assert torch.equal(first, b(x))  # deterministic per build seed
    assert not torch.equal(first, a(x))  # fresh noise at every training-mode call
    # the drawn h_0 is N(0, 0.02²) from the generator
    c = build("noise")
    e, h0 = c.start(x, Weights.of(c))
    noise = torch.randn(e.shape, generator=expected_gen) * 0.02
    torch.testing.assert_close(h0, noise, atol=0, rtol=0)
    # same weights as state_init=zero; in evaluation mode h_0 = 0, so the outputs coincide
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), zero.parameters(), strict=True))
    a.eval()
    torch.testing.assert_close(a(x), zero(x), atol=0, rtol=0)
    assert torch.equal(a(x), a(x))
    # other seeds draw other noise
    other = models.build("looped", VOCAB, WIDTH, seed=10, state_init="noise")
    assert other.generator.initial_seed() != a.generator.initial_seed()


def test_state_init_embed_and_zero() -> None:
    x = tokens(2, 6, seed=1)
    for init in ("zero", "embed"):
        model = models.build("looped", VOCAB, WIDTH, seed=2, state_init=init)
        e, h0 = model.start(x, Weights.of(model))
        torch.testing.assert_close(h0, e if init == "embed" else torch.zeros_like(e))


def test_ensemble_eval_mode_reaches_the_template() -> None:
    ens = models.build_ensemble("looped", VOCAB, WIDTH, [1, 2], state_init="noise")
    x = tokens(2, 2, 7)
    assert not torch.equal(ens(x), ens(x))  # training mode: noise
    ens.eval()
    assert not ens.template.training
    torch.testing.assert_close(ens(x)[1], ens.member(1).eval()(x[1]), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- Abacus
@pytest.mark.parametrize("n", [1, 2, 5, 17, 40])
def test_abacus_ids_equal_the_addition_tasks_digit_pos(n: int) -> None:
    lsb = tasks.make("addition").sample(n, 16, seed=n)
    ids = abacus_ids(torch.from_numpy(lsb.inputs), 1, 10).numpy()
    np.testing.assert_array_equal(ids, lsb.meta["digit_pos"])
    # the model embeds exactly these ids (evaluation mode: no offset)
    model = models.build("looped", 13, WIDTH, seed=0, pos="abacus").eval()
    x = torch.from_numpy(lsb.inputs)
    e, _ = model.start(x, Weights.of(model))
    expected = model.embed.weight[x] + model.abacus.weight[torch.from_numpy(lsb.meta["digit_pos"])]
    torch.testing.assert_close(e, expected, atol=0, rtol=0)
    if n > 1:  # in msb order the run index is not the significance (why MC24 reverse numbers)
        msb = tasks.make("addition", order="msb").sample(n, 4, seed=n)
        ids = abacus_ids(torch.from_numpy(msb.inputs), 1, 10).numpy()
        assert not np.array_equal(ids, msb.meta["digit_pos"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=30), min_size=1, max_size=4))
def test_abacus_ids_are_the_run_index(rows: list[list[int]]) -> None:
    t = min(len(r) for r in rows)
    x = torch.tensor([r[:t] for r in rows])
    expected = [_naive_abacus(r, 2, 4) for r in x.tolist()]
    assert abacus_ids(x, 2, 4).tolist() == expected


def test_abacus_training_offset_is_one_k_per_pass_within_the_table() -> None:
    model = models.build("looped", 13, WIDTH, seed=0, pos="abacus", abacus_offset=5, abacus_max=30)
    x = torch.from_numpy(tasks.make("addition").sample(6, 4, seed=0).inputs)
    plain = abacus_ids(x, 1, 10)
    seen = set()
    for _ in range(40):
        ids = model._abacus_ids(x)
        k = ids - plain
        assert torch.all(k[plain == 0] == 0)  # non-digits keep id 0
        shift = k[plain > 0].unique()
        assert shift.numel() == 1 and 0 <= int(shift) <= 5  # one k per pass, in 0 … offset
        seen.add(int(shift))
    assert seen == set(range(6))
    model.eval()
    assert torch.equal(model._abacus_ids(x), plain)  # no offset at evaluation
    # a digit run of 7 (the 6-digit sum) + offset 5 = 12 fits; a table of 11 does not in
    # training, while evaluation (no offset) still fits
    short = models.build("looped", 13, WIDTH, pos="abacus", abacus_offset=5, abacus_max=11)
    with pytest.raises(UserError, match=r"digit run of 7 tokens plus abacus_offset 5 exceeds"):
        short(x)
    short.eval()
    short(x)
    with pytest.raises(UserError, match="abacus_max 11"):
        short(torch.from_numpy(tasks.make("addition").sample(12, 2, seed=0).inputs))


# --------------------------------------------------------------------------- stepping
@pytest.mark.parametrize(
    "opts",
    [
        {"state_init": "noise", "injection": "concat", "heads": 2},
        {"pos": "abacus", "digit_max": 3, "abacus_offset": 4, "abacus_max": 40},
        {"pos": "rope", "block_layers": 2, "injection": "none"},
        {"pos": "sinusoidal", "state_init": "embed"},
    ],
)
def test_step_matches_forward_at_any_iteration_count(opts: dict[str, Any]) -> None:
    """Evaluation mode (where noise and offsets are off); the state holds exactly
    state_size(t, iterations) floats per row."""
    model = models.build("looped", VOCAB, WIDTH, seed=5, iterations=2, **opts).eval()
    x = tokens(3, 14, seed=6)
    for count in (1, 2, 5):
        full = model(x, iterations=count)
        state = model.init_state(3, iterations=count)
        assert sum(s.numel() for s in state) == 3 * model.state_size(0, iterations=count)
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            torch.testing.assert_close(logits, full[:, t], atol=2e-5, rtol=1e-4)
            assert sum(s.numel() for s in state) == 3 * model.state_size(t + 1, count)


def test_state_size_formula() -> None:
    m = models.build("looped", 5, 16, iterations=6, block_layers=2, heads=4, head_dim=3)
    assert m.state_size(10) == 6 * 2 * 2 * 4 * 3 * 10
    assert m.state_size(10, iterations=12) == 2 * m.state_size(10)
    abacus = models.build("looped", 13, 16, iterations=3, pos="abacus")
    assert abacus.state_size(7) == 3 * 1 * 2 * 1 * 16 * 7 + 1


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [0, -2, 1.5, "x", True])
def test_iteration_counts_must_be_positive_integers(bad: Any) -> None:
    model = models.build("looped", VOCAB, WIDTH)
    x = tokens(1, 4)
    for call in (
        lambda: model(x, iterations=bad),
        lambda: model.forward_all(x, bad),
        lambda: model.init_state(1, iterations=bad),
        lambda: model.state_size(3, iterations=bad),
    ):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == f"iterations must be an integer >= 1, got {bad!r}"
    with pytest.raises(UserError, match=r"'iterations' must be an integer >= 1, got 0"):
        models.build("looped", VOCAB, WIDTH, iterations=0)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"injection": "gate"}, ["'injection'", "add, concat, none"]),
        ({"state_init": "ones"}, ["'state_init'", "zero, embed, noise"]),
        ({"pos": "alibi"}, ["'pos'", "none, abacus, learned, sinusoidal, rope"]),
        ({"abacus_offset": 3}, ["'abacus_offset'", "pos=abacus"]),
        ({"pos": "abacus", "abacus_offset": -1}, ["'abacus_offset'", ">= 0"]),
        ({"pos": "abacus", "abacus_offset": 9, "abacus_max": 9}, ["'abacus_offset'", "< abacus"]),
        ({"pos": "abacus", "digit_min": 5, "digit_max": 4}, ["'digit_max'", ">= digit_min"]),
        ({"pos": "abacus", "digit_max": 7}, ["'digit_max'", "vocabulary of 7"]),
        ({"pos": "rope", "head_dim": 3}, ["'pos'", "even head_dim"]),
        ({"block_layers": 0}, ["'block_layers'", ">= 1"]),
    ],
)
def test_bad_options(options: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(UserError) as err:
        models.build("looped", VOCAB, WIDTH, **options)
    assert "model 'looped'" in str(err.value) and "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)
