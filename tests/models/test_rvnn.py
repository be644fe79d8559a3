"""Tree-recursive families (grc, bbt, beam_tree, rir): reductions against independent references,
depth laws, batching and padding, readouts, gradients of the top-k modes, options, task check."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from sepbench import models, tasks, training
from sepbench.errors import UserError
from sepbench.models.beam_search import rir_depth
from sepbench.tasks.base import Batch, Task, ignore_targets

VOCAB, WIDTH = 9, 8
PAD = 0

ENCODERS: list[tuple[str, dict[str, Any]]] = [
    ("bbt", {}),
    ("beam_tree", {"beam": 3}),
    ("beam_tree", {"beam": 2, "scorer": "parent"}),
    ("beam_tree", {"beam": 3, "topk": "st"}),
    ("beam_tree", {"beam": 3, "scorer": "parent", "topk": "onesoft"}),
    ("rir", {"chunk": 3, "beam": 3}),
    ("rir", {"chunk": 2, "beam": 2, "align": "random"}),
    ("rir", {"chunk": 4, "beam": 3, "align": "rank", "pre_ssm": True}),
]
IDS = [f + "-" + ",".join(f"{k}={v}" for k, v in o.items()) for f, o in ENCODERS]


def build(family: str, seed: int = 0, **opts: Any) -> Any:
    model = models.build(family, VOCAB, WIDTH, seed=seed, **opts)
    return model.eval()


def row(*ids: int) -> Tensor:
    return torch.tensor([list(ids)])


# --------------------------------------------------------------------------- references
def grc_ref(model: Any, left: Tensor, right: Tensor) -> Tensor:
    """The GRC cell written from rvnn.md's equations and the raw weights."""
    c = model.cell
    z = F.gelu(torch.cat([left, right], -1) @ c.fc1.weight.T + c.fc1.bias)
    z = z @ c.fc2.weight.T + c.fc2.bias
    a, b, g, p = z.split(model.width, dim=-1)
    mixed = torch.sigmoid(a) * left + torch.sigmoid(b) * right + torch.sigmoid(g) * p
    return F.layer_norm(mixed, (model.width,), c.norm.weight, c.norm.bias)


def leaves_ref(model: Any, ids: list[int]) -> list[Tensor]:
    """h_i = LN(W·Embed(x_i)); with rir's pre_ssm the model's own leaves (its SSM layers are
    tested with the ssm family), so the reduction above them is still checked independently."""
    if getattr(model, "pre", None) is not None:
        return list(model.leaves(model.embed(torch.tensor([ids])), torch.tensor([len(ids)]))[0])
    e = model.embed.weight[ids] @ model.leaf.weight.T + model.leaf.bias
    h = F.layer_norm(e, (model.width,), model.leaf_norm.weight, model.leaf_norm.bias)
    return list(h)


def head_ref(model: Any, h: Tensor) -> Tensor:
    return F.gelu(h @ model.head.fc1.weight.T + model.head.fc1.bias) @ model.head.fc2.weight.T + (
        model.head.fc2.bias
    )


def pair_logit_ref(model: Any, left: Tensor, right: Tensor) -> float:
    s = model.scorer
    if model.options.get("scorer", "children") == "parent":
        return float(grc_ref(model, left, right) @ s.fc.weight[0])
    m = s.m
    hidden = F.gelu(torch.cat([left[:m], right[:m]]) @ s.fc1.weight.T + s.fc1.bias)
    return float(hidden @ s.fc2.weight[0])


def greedy_ref(model: Any, nodes: list[Tensor]) -> Tensor:
    """Easy-first greedy merging: repeatedly compose the adjacent pair with the largest logit
    (the first on ties)."""
    nodes = list(nodes)
    while len(nodes) > 1:
        logits = [pair_logit_ref(model, nodes[j], nodes[j + 1]) for j in range(len(nodes) - 1)]
        j = int(np.argmax(logits))
        nodes[j : j + 2] = [grc_ref(model, nodes[j], nodes[j + 1])]
    return nodes[0]


def balanced_ref(model: Any, nodes: list[Tensor]) -> tuple[Tensor, int]:
    """Pair (1, 2), (3, 4), … per level; an odd last node passes up. Returns (root, levels)."""
    levels = 0
    while len(nodes) > 1:
        nxt = [grc_ref(model, nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes, levels = nxt, levels + 1
    return nodes[0], levels


def rir_greedy_ref(model: Any, nodes: list[Tensor], k: int) -> Tensor:
    """RIR with beam 1: chunks of k while the level has ≥ k + ⌊k/2⌋ nodes, each reduced greedily;
    then one greedy chunk."""
    while len(nodes) >= k + k // 2:
        nodes = [greedy_ref(model, nodes[i : i + k]) for i in range(0, len(nodes), k)]
    return greedy_ref(model, nodes)


# --------------------------------------------------------------------------- small inputs
@pytest.mark.parametrize(("family", "opts"), ENCODERS, ids=IDS)
@given(a=st.integers(1, VOCAB - 1), b=st.integers(1, VOCAB - 1))
@settings(max_examples=10, deadline=None)
def test_length_one_and_two_reduce_as_the_cell_says(
    family: str, opts: dict[str, Any], a: int, b: int
) -> None:
    """One token: the root is its leaf. Two tokens: the root is GRC(leaf_a, leaf_b) (the only
    merge, forced, whatever the beam)."""
    model = build(family, **opts)
    with torch.no_grad():
        la, lb = leaves_ref(model, [a, b])
        one = model(row(a))[0, 0]
        two = model(row(a, b))[0]
        (single,) = leaves_ref(model, [a])  # = la unless pre_ssm (bidirectional) mixes b in
        torch.testing.assert_close(one, head_ref(model, single), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            two[1], head_ref(model, grc_ref(model, la, lb)), atol=1e-5, rtol=1e-5
        )
        assert torch.count_nonzero(two[0]) == 0  # readout=last


def test_grc_is_the_cell_run_left_to_right() -> None:
    model = build("grc")
    ids = [3, 1, 4, 1, 5]
    with torch.no_grad():
        out = model(row(*ids))[0]
        h = torch.zeros(WIDTH)
        for t, leaf in enumerate(leaves_ref(model, ids)):
            h = grc_ref(model, h, leaf)
            torch.testing.assert_close(out[t], head_ref(model, h), atol=1e-5, rtol=1e-5)
    assert model.depth == len(ids) and model.state_size(1000) == WIDTH


# --------------------------------------------------------------------------- depth laws
@given(n=st.integers(1, 70), seed=st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_bbt_builds_the_balanced_tree_in_ceil_log2_levels(n: int, seed: int) -> None:
    model = build("bbt", seed=seed)
    ids = torch.randint(1, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    with torch.no_grad():
        out = model(row(*ids))[0, -1]
        root, levels = balanced_ref(model, leaves_ref(model, ids))
    assert model.depth == levels == math.ceil(math.log2(n))
    torch.testing.assert_close(out, head_ref(model, root), atol=1e-4, rtol=1e-4)


def test_bbt_step_counter_builds_the_same_tree_at_long_lengths() -> None:
    """The binary-counter step state reproduces every prefix of the balanced tree (n ≤ 130),
    carrying d·popcount(t) floats."""
    model = build("bbt", readout="every")
    x = torch.randint(1, VOCAB, (2, 130), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(x)
        state = model.init_state(2)
        for t in range(130):
            logits, state = model.step(x[:, t], state)
            assert sum(s.numel() for s in state) == 2 * WIDTH * bin(t + 1).count("1")
            torch.testing.assert_close(logits, full[:, t], atol=1e-4, rtol=1e-4)


def rir_depth_simulated(n: int, k: int) -> int:
    """Sequential steps, counted level by level from the chunking rule."""
    nodes, depth = n, 0
    while nodes > 1:
        if nodes >= k + k // 2:
            depth += k - 1  # every chunk of k runs k - 1 steps in parallel
            nodes = math.ceil(nodes / k)
        else:
            depth += nodes - 1
            nodes = 1
    return depth


@given(n=st.integers(1, 400), k=st.integers(2, 40))
@settings(max_examples=200, deadline=None)
def test_rir_depth_bound(n: int, k: int) -> None:
    """Depth = (k − 1)·(chunked levels) + top chunk − 1 ≤ (k − 1)·log_k n + k + ⌊k/2⌋ − 2, the
    top chunk holding at most k + ⌊k/2⌋ − 1 nodes."""
    depth = rir_depth(n, k)
    assert depth == rir_depth_simulated(n, k)
    if n > 1:
        assert depth <= (k - 1) * math.log(n, k) + k + k // 2 - 2 + 1e-9
    levels = 0
    s = n
    while s >= k + k // 2:
        s, levels = math.ceil(s / k), levels + 1
    assert s <= k + k // 2 - 1 and depth == levels * (k - 1) + s - 1


def test_rir_depth_is_measured_by_the_model() -> None:
    """The model's count of sequential merge steps equals the law, at the spec's example
    (n = 1000, k = 30: 34 chunks then one of 34, 29 + 33 = 62) and at small sizes."""
    assert rir_depth(1000, 30) == 62
    for n, k in [(1000, 30), (100, 10), (23, 3), (5, 3), (44, 30), (45, 30)]:
        model = models.build("rir", VOCAB, 4, seed=0, chunk=k, beam=2).eval()
        x = torch.randint(1, VOCAB, (1, n), generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            model(x)
        assert model.depth == rir_depth(n, k), (n, k)
        assert model.depth <= (k - 1) * math.log(n, k) + k + k // 2 - 2 + 1e-9


def test_beam_tree_depth_is_n_minus_one() -> None:
    model = build("beam_tree")
    with torch.no_grad():
        model(torch.randint(1, VOCAB, (2, 37)))
    assert model.depth == 36


# --------------------------------------------------------------------------- greedy references
@pytest.mark.parametrize("scorer", ["children", "parent"])
@given(n=st.integers(1, 24), seed=st.integers(0, 5))
@settings(max_examples=15, deadline=None)
def test_beam_one_hard_is_greedy_easy_first(scorer: str, n: int, seed: int) -> None:
    model = build("beam_tree", seed=seed, beam=1, scorer=scorer)
    ids = torch.randint(1, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    with torch.no_grad():
        out = model(row(*ids))[0, -1]
        ref = head_ref(model, greedy_ref(model, leaves_ref(model, ids)))
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@given(n=st.integers(1, 60), k=st.integers(2, 6), seed=st.integers(0, 3))
@settings(max_examples=15, deadline=None)
def test_rir_beam_one_is_chunked_greedy(n: int, k: int, seed: int) -> None:
    model = build("rir", seed=seed, beam=1, chunk=k)
    ids = torch.randint(1, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    with torch.no_grad():
        out = model(row(*ids))[0, -1]
        ref = head_ref(model, rir_greedy_ref(model, leaves_ref(model, ids), k))
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_rir_with_one_chunk_is_the_children_beam_tree() -> None:
    """n < k + ⌊k/2⌋: RIR is one inner search, i.e. beam_tree with the children scorer."""
    rir = build("rir", chunk=30, beam=4)
    tree = build("beam_tree", beam=4)
    tree.load_state_dict(rir.state_dict())
    x = torch.randint(1, VOCAB, (3, 44), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(rir(x), tree(x), atol=1e-5, rtol=1e-5)


def test_dense_search_equals_id_search_with_hard_selection() -> None:
    """The two search implementations (id pool with sparse gradients, vectors with merge masks)
    agree in values and in every gradient; ``st`` changes gradients only, not values;
    ``onesoft`` in evaluation selects as ``hard``."""
    from sepbench.models.beam_search import beam_search, beam_search_dense

    x = torch.randint(1, VOCAB, (4, 17), generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([17, 9, 1, 4])
    weights = torch.randn(4, WIDTH, generator=torch.Generator().manual_seed(4))
    for scorer in ("children", "parent"):
        model = build("beam_tree", beam=4, scorer=scorer)
        grads = []
        for mode in ("ids", "hard", "st", "onesoft"):
            model.zero_grad()
            leaves = model.leaves(model.embed(x), lengths)
            start = leaves.new_zeros(4, 1)
            if mode == "ids":
                ids = torch.arange(17).expand(4, 1, 17)
                found = beam_search(model.cell, model.scorer, leaves, ids, lengths, start, 4)
                reference = found
            else:
                found = beam_search_dense(
                    model.cell, model.scorer, leaves[:, None], lengths, start, 4, topk=mode
                )
                torch.testing.assert_close(found.scores, reference.scores, atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(
                    found.mixture(), reference.mixture(), atol=1e-5, rtol=1e-5
                )
            (found.mixture() * weights).sum().backward()
            grads.append(
                {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
            )
        assert {k.split(".")[0] for k in grads[0]} == {
            "embed",
            "leaf",
            "leaf_norm",
            "cell",
            "scorer",
        }
        assert all(g.abs().sum() > 0 for g in grads[0].values())
        for name, g in grads[0].items():
            torch.testing.assert_close(grads[1][name], g, atol=1e-5, rtol=1e-4, msg=name)
        # st's straight-through masks add gradient to the scorer, onesoft in eval adds none
        assert any(
            not torch.allclose(grads[2][k], grads[0][k], atol=1e-6)
            for k in grads[0]
            if "scorer" in k
        )
        assert all(torch.allclose(grads[3][k], grads[0][k], atol=1e-5) for k in grads[0])


# --------------------------------------------------------------------------- batching, readouts
def padded(rows: list[list[int]]) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows])


@pytest.mark.parametrize(("family", "opts"), ENCODERS, ids=IDS)
@given(lengths=st.lists(st.integers(1, 26), min_size=1, max_size=5), seed=st.integers(0, 9))
@settings(max_examples=8, deadline=None)
def test_batched_padded_equals_per_example(
    family: str, opts: dict[str, Any], lengths: list[int], seed: int
) -> None:
    """Each row of a right-padded batch gets the logits it gets alone, at its last real column;
    every other column is 0. (Evaluation mode: rir's alignment draws included.)"""
    model = build(family, pad_id=PAD, **opts)
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in lengths]
    with torch.no_grad():
        out = model(padded(rows))
        for r, ids in enumerate(rows):
            alone = model(row(*ids))[0, -1]
            torch.testing.assert_close(out[r, len(ids) - 1], alone, atol=2e-5, rtol=1e-4)
            others = torch.cat([out[r, : len(ids) - 1], out[r, len(ids) :]])
            assert torch.count_nonzero(others) == 0


@pytest.mark.parametrize(("family", "opts"), ENCODERS, ids=IDS)
def test_last_equals_every_at_the_end_and_step_matches_every(
    family: str, opts: dict[str, Any]
) -> None:
    last = build(family, seed=4, **opts)
    every = build(family, seed=4, readout="every", **opts)
    x = torch.randint(1, VOCAB, (3, 19), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, b = last(x), every(x)
        torch.testing.assert_close(a[:, -1], b[:, -1], atol=1e-5, rtol=1e-5)
        assert torch.count_nonzero(a[:, :-1]) == 0 and torch.count_nonzero(b[:, :-1]) > 0
        state = every.init_state(3)
        for t in range(19):
            logits, state = every.step(x[:, t], state)
            torch.testing.assert_close(logits, b[:, t], atol=2e-5, rtol=1e-4)
            assert sum(s.numel() for s in state) == 3 * every.state_size(t + 1)


def test_every_with_padding_zeroes_pad_columns() -> None:
    model = build("rir", readout="every", pad_id=PAD, chunk=3)
    x = padded([[1, 2, 3, 4, 5], [6, 7]])
    with torch.no_grad():
        out = model(x)
        alone = model(row(6, 7))
    torch.testing.assert_close(out[1, :2], alone[0], atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(out[1, 2:]) == 0 and torch.count_nonzero(out[0]) > 0


# --------------------------------------------------------------------------- gradients
def scorer_grad(model: Any, x: Tensor) -> float:
    model.zero_grad()
    model(x)[:, -1].square().mean().backward()
    return float(sum(p.grad.abs().sum() for p in model.scorer.parameters() if p.grad is not None))


def test_gradients_follow_the_topk_mode() -> None:
    """hard: selections carry no gradient, so with one beam (mixture weight 1) the scorer gets
    exactly none, and with several beams it learns through the scores; st: gradient also flows
    through the merge masks (nonzero with one beam); onesoft: its soft slot trains the scorer."""
    x = torch.randint(1, VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
    quiet = {"dropout": 0.0, "gumbel": False}
    hard1 = models.build("beam_tree", VOCAB, WIDTH, seed=0, beam=1, **quiet)
    st1 = models.build("beam_tree", VOCAB, WIDTH, seed=0, beam=1, topk="st", **quiet)
    hard3 = models.build("beam_tree", VOCAB, WIDTH, seed=0, beam=3, **quiet)
    assert scorer_grad(hard1, x) == 0.0
    assert scorer_grad(st1, x) > 0.0
    assert scorer_grad(hard3, x) > 0.0
    one = models.build("beam_tree", VOCAB, WIDTH, seed=0, beam=1, scorer="parent", **quiet)
    soft = models.build(
        "beam_tree", VOCAB, WIDTH, seed=0, beam=2, scorer="parent", topk="onesoft", **quiet
    )
    assert scorer_grad(one, x) == 0.0
    assert scorer_grad(soft, x) > 0.0
    with torch.no_grad():  # st's forward values are the hard ones
        torch.testing.assert_close(hard1(x), st1(x), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- noise and seeds
def test_noise_is_owned_seeded_and_training_only() -> None:
    x = torch.randint(1, VOCAB, (4, 40), generator=torch.Generator().manual_seed(0))
    for family, opts in [("beam_tree", {"beam": 3}), ("rir", {"chunk": 4, "beam": 3})]:
        a = models.build(family, VOCAB, WIDTH, seed=1, dropout=0.0, **opts)
        b = models.build(family, VOCAB, WIDTH, seed=1, dropout=0.0, **opts)
        c = models.build(family, VOCAB, WIDTH, seed=2, dropout=0.0, **opts)
        c.load_state_dict(a.state_dict())  # same weights, other noise seed
        extra = {"align": "rank"} if family == "rir" else {}
        quiet = models.build(
            family, VOCAB, WIDTH, seed=1, dropout=0.0, gumbel=False, **opts, **extra
        )
        before = torch.random.get_rng_state()
        with torch.no_grad():
            ya = [a(x) for _ in range(3)]
            yb = [b(x) for _ in range(3)]
            yc = c(x)
        assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched
        assert all(torch.equal(p, q) for p, q in zip(ya, yb, strict=True))
        assert not torch.equal(ya[0], ya[1]) and not torch.equal(ya[0], yc)
        with torch.no_grad():
            ev = [m.eval()(x) for m in (a, a, quiet.eval())]
        assert torch.equal(ev[0], ev[1])
        if family == "beam_tree":  # evaluation has no noise at all
            torch.testing.assert_close(ev[0], ev[2], atol=0, rtol=0)


# --------------------------------------------------------------------------- options and tasks
@pytest.mark.parametrize(
    ("family", "opts", "message"),
    [
        ("beam_tree", {"beam": 0}, "option 'beam' must be an integer >= 1, got 0"),
        ("rir", {"beam": 0}, "option 'beam' must be an integer >= 1, got 0"),
        ("rir", {"chunk": 1}, "option 'chunk' must be an integer >= 2, got 1"),
        ("beam_tree", {"topk": "onesoft"}, "'topk'=onesoft needs scorer=parent"),
        ("beam_tree", {"topk": "soft"}, "option 'topk' must be one of hard, onesoft, st"),
        ("rir", {"align": "best"}, "option 'align' must be one of sample, rank, random"),
        ("bbt", {"pad_id": VOCAB}, "option 'pad_id' must be a token id below vocab_size"),
        ("bbt", {"readout": "first"}, "option 'readout' must be one of last, every"),
        ("grc", {"readout": "last"}, "unknown option 'readout'"),
        ("bbt", {"dropout": 1.0}, "option 'dropout' must be a number >= 0 and < 1"),
    ],
)
def test_bad_options_are_one_line_errors(family: str, opts: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        models.build(family, VOCAB, WIDTH, **opts)
    assert message in str(info.value) and "\n" not in str(info.value)


class PaddedToy(Task):
    """A single-answer toy task whose rows are right-padded (for the pad_id check)."""

    name = "padded_toy"
    summary = "toy"
    source = "test"
    length_meaning = "tokens"

    def _build_vocab(self) -> list[str]:
        return ["<pad>", "a", "b"]

    def check_length(self, length: int) -> None:
        pass

    def max_tokens(self, length: int) -> int:
        return length

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        inputs = np.ones((batch_size, length), dtype=np.int64)
        lengths = np.full(batch_size, length, dtype=np.int64)
        lengths[0] = max(1, length - 1)
        inputs[0, lengths[0] :] = 0
        targets = ignore_targets((batch_size, length))
        targets[np.arange(batch_size), lengths - 1] = 2
        return Batch(inputs, targets, lengths, lengths.copy())

    def solve(self, tokens: Any) -> list[str]:
        return ["b"]


def test_check_task_accepts_single_answer_classification_only() -> None:
    listops = tasks.make("listops")
    prefix = tasks.make("prefix_sums")
    for family in ("bbt", "beam_tree", "rir"):
        cls = models.get_class(family)
        cls.check_task(listops)
        cls.check_task(listops, {"readout": "last"}, length=30)
        with pytest.raises(UserError, match="single-answer classification") as info:
            cls.check_task(prefix)
        assert "\n" not in str(info.value)
        cls.check_task(prefix, {"readout": "every"})  # logits at every position
        with pytest.raises(UserError, match="pad_id=0"):
            cls.check_task(PaddedToy())
        cls.check_task(PaddedToy(), {"pad_id": 0})
    models.get_class("grc").check_task(prefix)  # a causal RNN takes any task
    models.get_class("lstm").check_task(prefix)
    assert models.get_class("rir").encoder and not models.get_class("grc").encoder


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize(
    ("family", "opts"),
    [("grc", {}), ("bbt", {}), ("beam_tree", {"beam": 2}), ("rir", {"chunk": 4, "beam": 2})],
)
def test_trains_on_listops_with_the_trainer(family: str, opts: dict[str, Any]) -> None:
    """Smoke test: today's trainer fits each family on short ListOps rows; the loss falls."""
    task = tasks.make("listops")
    model = models.build(family, len(task.vocab), 16, seed=0, **opts)
    budget = training.Budget(
        max_steps=40, batch_size=32, warmup=5, eval_every=20, eval_batch=32, confirm_batch=32
    )
    result = training.fit(model, task, 12, budget, seed=0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.1 and math.isfinite(result.loss)
