"""H20 stacks (dyck_next_elman, dyck_next_lstm, dyck_recognize_rnn) and the B24-E automaton.

Three kinds of evidence, each against the plain-Python reference solvers of tasks.dyck:

* exhaustive state-space closure: the network's step function is run on every (reachable
  hidden state, token) pair, paired with the reference stack; when no new pair appears, the
  network is right on *every* string of *every* length (the hidden states are exact bits);
* exhaustive forward passes over all strings of small length, and sampled batches at N = 2048;
* hypothesis property tests over random parameters and seeds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions
from sepbench.constructions import HandBuilt, check_batch
from sepbench.constructions.dyck_automaton import automaton_width
from sepbench.constructions.dyck_rnn import elman_width, lstm_width, recognizer_width
from sepbench.tasks.dyck import EMPTY, in_dyck, is_dyck, stack_tops

Move = tuple[int, Hashable, int | None]  # (token id, next reference state, expected output id)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny recurrences: one intra-op thread is faster and does not fight the other tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def closure(
    hb: HandBuilt, init: Hashable, moves: Callable[[Hashable], list[Move]], limit: int = 5000
) -> int:
    """Breadth-first search over (exact hidden state, reference state) pairs through the
    model's ``step``; asserts the expected output after every move; returns the number of
    pairs (finite: the search ends only when the pairs are closed under every move)."""
    model: Any = hb.module  # a SeqModel: init_state / step
    start = model.init_state(1)
    seen: set[tuple[bytes, ...]] = set()
    frontier: list[tuple[tuple[torch.Tensor, ...], Hashable]] = [(start, init)]
    seen.add((*(t.numpy().tobytes() for t in start), repr(init).encode()))
    with torch.no_grad():
        while frontier:
            batch_states, toks, refs, wants = [], [], [], []
            for state, ref in frontier:
                for tok, nxt, want in moves(ref):
                    batch_states.append(state)
                    toks.append(tok)
                    refs.append(nxt)
                    wants.append(want)
            if not toks:
                break
            stacked = tuple(
                torch.cat([s[i] for s in batch_states], dim=1) for i in range(len(start))
            )
            logits, new = model.step(torch.tensor(toks), stacked)
            got = logits.argmax(-1).tolist()
            frontier = []
            for j, (ref, want) in enumerate(zip(refs, wants, strict=True)):
                if want is not None:
                    assert got[j] == want, f"wrong output after reaching {ref!r}"
                state = tuple(t[:, j : j + 1].clone() for t in new)
                key = (*(t.numpy().tobytes() for t in state), repr(ref).encode())
                if key not in seen:
                    seen.add(key)
                    frontier.append((state, ref))
            assert len(seen) < limit, "state space does not close: the state is not exact"
    return len(seen)


def _brackets(hb: HandBuilt) -> list[tuple[int, bool, int]]:
    out = []
    for tok, idx in hb.task.token_to_id.items():
        if tok[:1] in ("(", ")"):
            out.append((idx, tok[0] == "(", int(tok[1:])))
    return out


def next_closer_moves(hb: HandBuilt) -> Callable[[Hashable], list[Move]]:
    """Valid continuations of Dyck-(k, D) and the dyck_next target after each."""
    depth = hb.task.params["depth"]
    ids = hb.task.token_to_id

    def moves(ref: Hashable) -> list[Move]:
        stack: tuple[int, ...] = tuple(ref)  # type: ignore[arg-type]
        out: list[Move] = []
        for idx, opener, kind in _brackets(hb):
            if opener and len(stack) < depth:
                new = (*stack, kind)
            elif not opener and stack and stack[-1] == kind:
                new = stack[:-1]
            else:
                continue
            out.append((idx, new, ids[f"){new[-1]}" if new else EMPTY]))
        return out

    return moves


def recognition_moves(hb: HandBuilt) -> Callable[[Hashable], list[Move]]:
    """Every token from every state; after each prefix the answer is yes iff the prefix is
    in Dyck-(k, D) (the recogniser answers at every position)."""
    depth = hb.task.params["depth"]
    yes, no = hb.task.token_to_id["yes"], hb.task.token_to_id["no"]

    def moves(ref: Hashable) -> list[Move]:
        out: list[Move] = []
        for idx, opener, kind in _brackets(hb):
            new: Hashable
            if ref == "dead":
                new = "dead"
            else:
                stack: tuple[int, ...] = tuple(ref)  # type: ignore[arg-type]
                if opener:
                    new = (*stack, kind) if len(stack) < depth else "dead"
                else:
                    new = stack[:-1] if stack and stack[-1] == kind else "dead"
            out.append((idx, new, yes if new == () else no))
        return out

    return moves


# --------------------------------------------------------------------------- widths
@pytest.mark.parametrize("k", [2, 4, 8, 16])
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_h20_widths_are_exact(k: int, d: int) -> None:
    lg = int(math.log2(k))
    assert elman_width(k, d) == 6 * d * lg - 2 * d
    assert lstm_width(k, d) == 3 * d * lg - d
    assert recognizer_width(k, d) == 6 * d * lg - 2 * d + 2 * lg + 2
    for name, want in [
        ("dyck_next_elman", 6 * d * lg - 2 * d),
        ("dyck_next_lstm", 3 * d * lg - d),
        ("dyck_recognize_rnn", 6 * d * lg - 2 * d + 2 * lg + 2),
    ]:
        hb = constructions.get(name).build(4, types=k, depth=d)
        assert hb.width == want == hb.module.width
        assert (
            hb.module.get_parameter("rnn.weight_hh_l0").shape[1] == want
        )  # the network really has that width
        assert hb.result_id == "H20"


def test_non_power_of_two_and_single_type_widths() -> None:
    assert elman_width(3, 2) == 6 * 2 * 2 - 4  # ⌈log2 3⌉ = 2
    assert lstm_width(5, 3) == 3 * 3 * 3 - 3
    assert elman_width(1, 2) == 4 * 2  # one bit for k = 1
    assert lstm_width(1, 2) == 2 * 2


def test_automaton_width() -> None:
    assert automaton_width(2, 2) == 13
    hb = constructions.get("dyck22_automaton").build(10)
    assert hb.width == hb.module.width == 13 and hb.result_id == "B24-E"
    for n in (2, 64, 2048):  # constant in N
        assert constructions.get("dyck22_automaton").build(n).width == 13


# --------------------------------------------------------------------------- all lengths
@pytest.mark.parametrize("name", ["dyck_next_elman", "dyck_next_lstm"])
@pytest.mark.parametrize(("k", "d"), [(2, 2), (3, 2), (4, 3), (2, 4)])
def test_next_closer_state_space_closes(name: str, k: int, d: int) -> None:
    hb = constructions.get(name).build(2, types=k, depth=d)
    pairs = closure(hb, (), next_closer_moves(hb))
    stacks = sum(k**i for i in range(d + 1))
    if name == "dyck_next_lstm":
        assert pairs == stacks  # one exact (h, c) per stack: the cell *is* the stack
    else:  # a nonempty stack of depth < D has a push form (P) and a pop form (Q)
        assert pairs == stacks + sum(k**i for i in range(1, d))


@pytest.mark.parametrize("name", ["dyck_recognize_rnn", "dyck22_automaton"])
@pytest.mark.parametrize(("k", "d"), [(2, 2), (3, 2), (2, 3)])
def test_recognizers_state_space_closes(name: str, k: int, d: int) -> None:
    hb = constructions.get(name).build(2, types=k, depth=d)
    closure(hb, (), recognition_moves(hb))


# --------------------------------------------------------------------------- exhaustive forward
def _all_strings(n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every string of n brackets over k types: (token ids, opens, kinds)."""
    idx = np.arange((2 * k) ** n)
    digits = (idx[:, None] // (2 * k) ** np.arange(n)[::-1][None, :]) % (2 * k)
    return digits + 1, digits % 2 == 0, digits // 2  # ids: (i -> 1 + 2i, )i -> 2 + 2i


@pytest.mark.parametrize("name", ["dyck_recognize_rnn", "dyck22_automaton"])
def test_recognizers_on_every_string_up_to_length_8(name: str) -> None:
    # 87,380 strings through forward (the closure test above covers every length)
    hb = constructions.get(name).build(2)
    yes = hb.task.token_to_id["yes"]
    for n in range(1, 9):
        inputs, opens, kinds = _all_strings(n, 2)
        got = np.empty(len(inputs), dtype=bool)
        with torch.no_grad():
            for i in range(0, len(inputs), 1 << 17):
                chunk = torch.from_numpy(inputs[i : i + (1 << 17)])
                got[i : i + len(chunk)] = hb.module(chunk)[:, -1].argmax(-1).numpy() == yes
        np.testing.assert_array_equal(got, in_dyck(opens, kinds, 2), err_msg=f"n={n}")
        if n <= 5:  # the plain explicit-stack solver too
            toks = [[hb.task.vocab[i] for i in row] for row in inputs]
            assert got.tolist() == [is_dyck(t, 2, 2) for t in toks]


def _dyck_strings(n: int, k: int, d: int) -> list[list[str]]:
    """Every string of Dyck-(k, d) of length n (depth-first enumeration)."""
    out: list[list[str]] = []

    def grow(prefix: list[str], stack: list[int]) -> None:
        left = n - len(prefix)
        if left == 0:
            out.append(list(prefix))
            return
        if len(stack) < min(d, left - 1):
            for t in range(k):
                grow([*prefix, f"({t}"], [*stack, t])
        if stack:
            grow([*prefix, f"){stack[-1]}"], stack[:-1])

    grow([], [])
    return out


@pytest.mark.parametrize("name", ["dyck_next_elman", "dyck_next_lstm"])
def test_next_closer_on_every_dyck_string_up_to_length_10(name: str) -> None:
    for n in (2, 4, 6, 8, 10):
        hb = constructions.get(name).build(n, types=2, depth=3)
        rows = _dyck_strings(n, 2, 3)
        inputs = np.array([hb.task.encode(r) for r in rows])
        targets = np.array([hb.task.encode(stack_tops(r)) for r in rows])
        res = check_batch(hb, inputs, targets)
        assert res.errors == 0 and res.min_gap >= 0.5 - 1e-6, (n, res)


# --------------------------------------------------------------------------- long inputs
@pytest.mark.parametrize(
    ("name", "k", "d"),
    [
        ("dyck_next_elman", 2, 2),
        ("dyck_next_elman", 4, 3),
        ("dyck_next_lstm", 2, 2),
        ("dyck_next_lstm", 8, 4),
        ("dyck_recognize_rnn", 2, 2),
        ("dyck22_automaton", 2, 2),
    ],
)
def test_long_inputs(name: str, k: int, d: int) -> None:
    n = 2048
    hb = constructions.get(name).build(n, types=k, depth=d)
    batch = hb.task.sample(length=n, batch_size=8, seed=11)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0 and res.min_gap >= 0.5 - 1e-6, res


@settings(max_examples=12)
@given(
    name=st.sampled_from(
        ["dyck_next_elman", "dyck_next_lstm", "dyck_recognize_rnn", "dyck22_automaton"]
    ),
    k=st.integers(1, 5),
    d=st.integers(1, 4),
    half=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_random_batches(name: str, k: int, d: int, half: int, seed: int) -> None:
    if name == "dyck22_automaton" and k**d > 64:
        d = 2  # keep the one-hot automaton small
    hb = constructions.get(name).build(2 * half, types=k, depth=d)
    batch = hb.task.sample(length=2 * half, batch_size=32, seed=seed)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0, (res, hb.task.decode(batch.inputs[res.first_error or 0]))


# --------------------------------------------------------------------------- the checks bite
@pytest.mark.parametrize(
    "name", ["dyck_next_elman", "dyck_next_lstm", "dyck_recognize_rnn", "dyck22_automaton"]
)
def test_a_damaged_network_fails(name: str) -> None:
    hb = constructions.get(name).build(32)
    batch = hb.task.sample(length=32, batch_size=64, seed=3)
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
    with torch.no_grad():
        hb.module.get_parameter("rnn.weight_hh_l0").zero_()  # forget everything between steps
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0


def test_low_gain_breaks_the_steps() -> None:
    # with L = 1 the sigmoids are not steps: the construction needs its large gain
    hb = constructions.get("dyck_next_elman").build(64, scale=1.0)
    batch = hb.task.sample(length=64, batch_size=64, seed=5)
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0


def test_precision_bfloat16_still_exact() -> None:
    # the state is a bit vector: 8 mantissa bits suffice at any N (see the module docstring)
    for name in ("dyck_next_elman", "dyck_next_lstm"):
        hb = constructions.get(name).build(512)
        batch = hb.task.sample(length=512, batch_size=8, seed=9)
        hb.module.to(torch.bfloat16)
        assert check_batch(hb, batch.inputs, batch.targets).errors == 0, name


def test_registry_metadata() -> None:
    reg = constructions.registry()
    for name, task, rid, form in [
        ("dyck_next_elman", "dyck_next", "H20", "D log k"),
        ("dyck_next_lstm", "dyck_next", "H20", "D log k"),
        ("dyck_recognize_rnn", "dyck", "H20", "D log k"),
        ("dyck22_automaton", "dyck", "B24-E", "constant"),
    ]:
        c = reg[name]
        assert (c.task, c.result_id, c.form) == (task, rid, form)
    assert len(list(itertools.islice(reg, 1))) == 1
