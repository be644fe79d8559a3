"""Verify hand-built constructions against the tasks' reference answers.

``verify(name, lengths, dtype)`` builds the registered construction at each N and runs it on

1. **every input** of that size when there are at most ``exhaustive_limit`` of them and the task
   has an enumerator (:data:`ENUMERATORS`: index_lookup — all k^N strings × N queries;
   string_equality / disjointness — all pairs of halves; dyck — all (2k)^N bracket strings;
   dyck_next — all valid Dyck-(k, D) strings);
2. **every position's hard input** (``contexts`` > 0, :data:`EVERY_POSITION`), unless the
   enumeration already covered every input: for each of ``contexts`` contexts, a query at
   *every* position — index_lookup: one random string, the queries @1 … @N; nearest_neighbor:
   one point set and, for each point, a query whose unique nearest point it is at the
   smallest possible margin; associative_recall: one line of N distinct keys, a query for each;
   string_equality / disjointness: one negative per position i (the single differing /
   common position is i). The first three share the context and differ only in the last
   token, so :mod:`~sepbench.constructions.shared_prefix` checks all N queries for about the
   cost of two forward passes (and every float64 run compares it with the full pass on two
   rows); the pair tasks are N full rows;
3. **structured hard inputs** (:data:`HARD_INPUTS`, at most ``hard_limit`` rows,
   and no more than the random rows' budget when ``samples`` is not given:
   e.g. for index_lookup the worst case of every bitwise threshold, one position holding a
   symbol and all others its complement, for evenly spread positions) and **random batches**
   drawn from the task itself (``samples`` rows; by default as many as a fixed work budget
   allows for that network at that token length — :func:`default_samples` — at least
   :data:`MIN_SAMPLES`, at most :data:`MAX_SAMPLES`).

Targets of enumerated and structured inputs come from small vectorised solvers written here,
independently of the task generators (tests compare them with ``Task.solve``). Checking is
teacher-forced (:func:`~sepbench.constructions.base.check_batch`: the argmax at every supervised
position); constructions with ``generate=True`` are checked by greedy decoding
(:func:`sepbench.training.generate.greedy_generate`, the task's retriever in the loop for
retrieval models) — a row is correct when the generated continuation equals the reference.

Precision: ``dtype`` casts the module (float64, float32, bfloat16, float16); ``bits`` instead
runs it in float64 with every number rounded to ``bits`` mantissa bits
(:mod:`~sepbench.constructions.precision`; ``fixed=True``: B24's fixed-point grid).

Each (construction, N, precision) gives one :class:`VerifyRow`: inputs checked (by kind),
errors, the smallest logit gap (correct logit − best other, over all supervised positions),
the first counterexample as tokens, the build's structural hypotheses (``HandBuilt.hypotheses``,
e.g. B24 Lemma 2's address margin) and the verdict: *pass* needs every checked row right
**and** the hypotheses to hold — a network whose proof does not apply is not certified by
passing the rows someone thought of.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench.constructions.base import HandBuilt, check_batch, get
from sepbench.constructions.precision import Rounding, rounded_copy
from sepbench.constructions.shared_prefix import last_logits
from sepbench.errors import UserError
from sepbench.tasks import IGNORE, Task

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DEFAULT_LENGTHS = (8, 16, 32, 64)
EXHAUSTIVE_LIMIT = 1 << 16
"""Enumerate every input when there are at most this many (65,536)."""
HARD_LIMIT = 64
"""Rows of structured hard inputs per length (positions spread evenly)."""
DEFAULT_CONTEXTS = 2
"""Contexts whose every position is queried, by default (:data:`EVERY_POSITION`)."""
MIN_SAMPLES = 16
MAX_SAMPLES = 1024
GENERATE_SAMPLES = 64
"""Default random rows of constructions checked by greedy decoding (``generate=True``)."""
SAMPLE_WORK = float(1 << 33)
"""Default random rows: MAX_SAMPLES, cut so that their forward passes cost at most this many
multiply-adds (:func:`row_cost`)."""
EXHAUSTIVE_WORK = float(1 << 35)
"""Enumerate only when all inputs together cost at most this many multiply-adds."""
CHUNK_WORK = 1 << 23
"""Rows per forward pass: rows × T × max(T, width) ≤ CHUNK_WORK."""


@dataclass
class VerifyRow:
    """The verification of one construction at one N and one precision."""

    construction: str
    length: int
    width: int
    precision: str
    """``float64`` … ``float16``, ``p=12`` (12 mantissa bits) or ``fixed=12``."""
    exhaustive: int
    """Inputs checked by enumeration (every input of this size when > 0)."""
    hard: int
    """Structured hard inputs checked."""
    sampled: int
    """Random task samples checked."""
    errors: int
    min_gap: float
    """Smallest correct-minus-best-other logit over every supervised position (nan if none)."""
    counterexample: str | None
    """The first wrong input as tokens, with the expected and the produced outputs."""
    seconds: float
    failure: str | None = None
    """Why the run itself failed (e.g. a dtype the module does not support), else None."""
    every: int = 0
    """Rows of every-position contexts checked (:data:`EVERY_POSITION`)."""
    hypotheses: str = ""
    """The build's structural hypotheses, as measured (``HandBuilt.hypotheses``)."""
    hypotheses_hold: bool = True

    @property
    def checked(self) -> int:
        return self.exhaustive + self.every + self.hard + self.sampled

    @property
    def verdict(self) -> str:
        ok = self.errors == 0 and self.failure is None and self.checked and self.hypotheses_hold
        return "pass" if ok else "fail"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["checked"] = self.checked
        out["verdict"] = self.verdict
        return out


# ------------------------------------------------------------------------------------------
# inputs: enumerations and structured hard cases, with independently computed targets
# ------------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Rows to check: token ids, targets (IGNORE where unsupervised), true and prompt lengths."""

    kind: str
    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    prompt_lengths: np.ndarray


def _single(kind: str, inputs: np.ndarray, answers: np.ndarray) -> Chunk:
    rows, width = inputs.shape
    targets = np.full((rows, width), IGNORE, dtype=np.int64)
    targets[:, -1] = answers
    full = np.full(rows, width, dtype=np.int64)
    return Chunk(kind, inputs.astype(np.int64), targets, full, full.copy())


def _digits(index: np.ndarray, base: int, count: int) -> np.ndarray:
    """``[len(index), count]`` base-``base`` digits of ``index``, most significant first."""
    out = np.empty((index.size, count), dtype=np.int64)
    rest = index.copy()
    for col in range(count - 1, -1, -1):
        rest, out[:, col] = np.divmod(rest, base)
    return out


Enumerator = Callable[[Task, int], tuple[int, Callable[[int, int], Chunk]]]
"""``(task, N) -> (count, chunk)``: the number of enumerated candidates and a function giving
the rows of candidates ``[start, stop)`` (rows may be fewer after filtering)."""


def _enum_index_lookup(task: Task, n: int) -> tuple[int, Callable[[int, int], Chunk]]:
    k = task.params["alphabet"]
    sym0, at1 = task.token_to_id["s0"], task.token_to_id["@1"]

    def chunk(start: int, stop: int) -> Chunk:
        idx = np.arange(start, stop, dtype=np.int64)
        string, pos = np.divmod(idx, n)
        x = _digits(string, k, n)
        inputs = np.concatenate([x + sym0, (pos + at1)[:, None]], axis=1)
        return _single("exhaustive", inputs, x[np.arange(idx.size), pos] + sym0)

    return k**n * n, chunk


def _enum_pairs(task: Task, n: int) -> tuple[int, Callable[[int, int], Chunk]]:
    """string_equality and disjointness: every pair of halves (x, y)."""
    if task.name == "string_equality":
        k, sym0 = task.params["alphabet"], task.token_to_id["s0"]
        yes, no = task.token_to_id["eq"], task.token_to_id["neq"]
    else:
        k, sym0 = 2, task.token_to_id["b0"]
        yes, no = task.token_to_id["disjoint"], task.token_to_id["intersect"]
    sep = task.token_to_id["|"]

    def chunk(start: int, stop: int) -> Chunk:
        idx = np.arange(start, stop, dtype=np.int64)
        both = _digits(idx, k, 2 * n)
        x, y = both[:, :n], both[:, n:]
        inputs = np.concatenate([x + sym0, np.full((idx.size, 1), sep), y + sym0], axis=1)
        if task.name == "string_equality":
            positive = (x == y).all(axis=1)
        else:
            positive = ~((x == 1) & (y == 1)).any(axis=1)
        return _single("exhaustive", inputs, np.where(positive, yes, no))

    return k ** (2 * n), chunk


def dyck_scan(
    kinds: np.ndarray, opens: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a Dyck-(k, D) stack over rows of brackets (``kinds`` types, ``opens`` True for
    openers). Returns (valid prefix so far per step [R, N], stack top per step [R, N] (−1 when
    empty), final membership [R])."""
    rows, n = kinds.shape
    stack = np.zeros((rows, depth + 1), dtype=np.int64)
    height = np.zeros(rows, dtype=np.int64)
    ok = np.ones(rows, dtype=bool)
    valid = np.zeros((rows, n), dtype=bool)
    tops = np.full((rows, n), -1, dtype=np.int64)
    r = np.arange(rows)
    for t in range(n):
        kind, opener = kinds[:, t], opens[:, t]
        push = opener & (height < depth)
        ok &= ~(opener & (height >= depth))
        top = stack[r, np.maximum(height - 1, 0)]
        pop = ~opener & (height > 0) & (top == kind)
        ok &= ~(~opener & ~pop)
        stack[r[push], height[push]] = kind[push]
        height = height + push - pop
        valid[:, t] = ok
        tops[:, t] = np.where(height > 0, stack[r, np.maximum(height - 1, 0)], -1)
    return valid, tops, ok & (height == 0)


def _enum_dyck(task: Task, n: int) -> tuple[int, Callable[[int, int], Chunk]]:
    k, depth = task.params["types"], task.params["depth"]
    first = task.token_to_id["(0"]  # brackets are (0 )0 (1 )1 …: id = first + 2·type + closer

    def strings(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        digits = _digits(np.arange(start, stop, dtype=np.int64), 2 * k, n)
        return digits + first, digits // 2, digits % 2 == 0

    if task.name == "dyck":
        yes, no = task.token_to_id["yes"], task.token_to_id["no"]

        def chunk(start: int, stop: int) -> Chunk:
            ids, kinds, opens = strings(start, stop)
            _, _, member = dyck_scan(kinds, opens, depth)
            return _single("exhaustive", ids, np.where(member, yes, no))

    else:
        empty = task.token_to_id["_"]

        def chunk(start: int, stop: int) -> Chunk:
            ids, kinds, opens = strings(start, stop)
            _, tops, member = dyck_scan(kinds, opens, depth)
            ids, tops = ids[member], tops[member]
            targets = np.where(tops >= 0, first + 2 * tops + 1, empty)
            full = np.full(ids.shape[0], n, dtype=np.int64)
            return Chunk("exhaustive", ids, targets, full, np.ones_like(full))

    return (2 * k) ** n, chunk


ENUMERATORS: dict[str, Enumerator] = {
    "index_lookup": _enum_index_lookup,
    "string_equality": _enum_pairs,
    "disjointness": _enum_pairs,
    "dyck": _enum_dyck,
    "dyck_next": _enum_dyck,
}
"""Tasks whose inputs of one size can be enumerated, by task name."""


def _spread(n: int, count: int) -> np.ndarray:
    """At most ``count`` positions of 0..n−1, evenly spread, always with both ends."""
    if n <= count:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, count)).astype(np.int64))


def _hard_index_lookup(task: Task, n: int, limit: int, rng: np.random.Generator) -> Chunk:
    """Position p holds symbol a, every other position symbol b ≠ a: the worst case of every
    bitwise threshold on the averaged code (the attention weights depend on p only)."""
    k = task.params["alphabet"]
    sym0, at1 = task.token_to_id["s0"], task.token_to_id["@1"]
    pos = _spread(n, limit)
    a = rng.integers(0, k, size=pos.size)
    b = (a + rng.integers(1, k, size=pos.size)) % k
    x = np.repeat(b[:, None], n, axis=1)
    x[np.arange(pos.size), pos] = a
    inputs = np.concatenate([x + sym0, (pos + at1)[:, None]], axis=1)
    return _single("hard", inputs, a + sym0)


def _hard_pairs(task: Task, n: int, limit: int, rng: np.random.Generator) -> Chunk:
    """One differing (string_equality) or common (disjointness) position i, at evenly spread
    i, on a background that maximises the other flags' leakage; plus as many positives."""
    pos = _spread(n, max(1, limit // 2))
    rows = np.arange(pos.size)
    sep = task.token_to_id["|"]
    if task.name == "string_equality":
        k, sym0 = task.params["alphabet"], task.token_to_id["s0"]
        x = rng.integers(0, k, size=(pos.size, n))
        y_neg = x.copy()
        y_neg[rows, pos] = (x[rows, pos] + rng.integers(1, k, size=pos.size)) % k
        xs, ys = np.concatenate([x, x]), np.concatenate([y_neg, x])
        answers = np.r_[
            np.full(pos.size, task.token_to_id["neq"]), np.full(pos.size, task.token_to_id["eq"])
        ]
    else:
        sym0 = task.token_to_id["b0"]
        x = np.ones((pos.size, n), dtype=np.int64)  # x all ones, y all zeros: disjoint, dense
        y = np.zeros((pos.size, n), dtype=np.int64)
        y_neg = y.copy()
        y_neg[rows, pos] = 1
        xs, ys = np.concatenate([x, x]), np.concatenate([y_neg, y])
        answers = np.r_[
            np.full(pos.size, task.token_to_id["intersect"]),
            np.full(pos.size, task.token_to_id["disjoint"]),
        ]
    inputs = np.concatenate([xs + sym0, np.full((xs.shape[0], 1), sep), ys + sym0], axis=1)
    return _single("hard", inputs, answers)


def _hard_recall(task: Task, n: int, limit: int, rng: np.random.Generator) -> Chunk:
    """associative_recall: task rows whose query asks for the pair at evenly spread indices j
    (first and last included), so every part of the context is exercised."""
    pos = _spread(n, limit)
    batch = task.sample(n, pos.size, rng=rng)
    rows = np.arange(pos.size)
    inputs = batch.inputs.copy()
    inputs[:, -1] = inputs[rows, 2 * pos]
    return _single("hard", inputs, inputs[rows, 2 * pos + 1])


def _hard_nearest(task: Task, n: int, limit: int, rng: np.random.Generator) -> Chunk:
    """nearest_neighbor: task rows with the nearest point moved (with its label) to evenly
    spread indices i, first and last included."""
    pos = _spread(n, limit)
    batch = task.sample(n, pos.size, rng=rng)
    rows = np.arange(pos.size)
    inputs = batch.inputs.copy()
    p0 = task.token_to_id["p0"]
    codes = inputs[:, 0 : 2 * n : 2] - p0
    query = inputs[:, -1] - p0
    diff = codes ^ query[:, None]
    dist = np.zeros_like(diff)
    for bit in range(task.params["bits"]):
        dist += (diff >> bit) & 1
    near = dist.argmin(axis=1)
    for col in (0, 1):  # swap the pairs (point, label) at `near` and at `pos`
        a, b = inputs[rows, 2 * near + col].copy(), inputs[rows, 2 * pos + col].copy()
        inputs[rows, 2 * pos + col], inputs[rows, 2 * near + col] = a, b
    return _single("hard", inputs, inputs[rows, 2 * pos + 1])


HardInputs = Callable[[Task, int, int, np.random.Generator], Chunk]
HARD_INPUTS: dict[str, HardInputs] = {
    "index_lookup": _hard_index_lookup,
    "string_equality": _hard_pairs,
    "disjointness": _hard_pairs,
    "associative_recall": _hard_recall,
    "nearest_neighbor": _hard_nearest,
}
"""Structured worst cases per task name: ``(task, N, max rows, rng) -> Chunk``."""


@dataclass
class Context:
    """One shared context and a final token per checked position: the rows are
    ``prefix + [finals[r]]``, with the answer ``answers[r]`` at the last position."""

    prefix: np.ndarray
    finals: np.ndarray
    answers: np.ndarray


def _every_index_lookup(task: Task, n: int, rng: np.random.Generator) -> Context:
    """One random string and the queries @1 … @N."""
    k = task.params["alphabet"]
    sym0, at1 = task.token_to_id["s0"], task.token_to_id["@1"]
    x = rng.integers(0, k, size=n)
    return Context(x + sym0, np.arange(n) + at1, x + sym0)


def hamming_nearest(codes: np.ndarray, queries: np.ndarray, bits: int) -> np.ndarray:
    """Index of the unique nearest code to each query in Hamming distance, −1 where the
    nearest is not unique (a vectorised reference solver, independent of the task's)."""
    diff = codes[None, :] ^ queries[:, None]
    dist = np.zeros(diff.shape, dtype=np.int64)
    for bit in range(bits):
        dist += (diff >> bit) & 1
    near = dist.argmin(axis=1)
    best = dist[np.arange(queries.size), near]
    ties = (dist == best[:, None]).sum(axis=1)
    return np.where(ties == 1, near, -1)


def _every_nearest(task: Task, n: int, rng: np.random.Generator) -> Context:
    """N points inside the half-cube {bit β = 0} of the b-bit codes (random β, random points
    and labels) and, for point i, the query c_i with bit β set: it is no point, c_i is its
    unique nearest point (distance 1) and every point next to c_i is at distance 2 — the
    smallest margin the task allows, for every point with such a neighbour. When N exceeds
    the half-cube (2^(b−1) codes; never at the doubling lengths, where N ≤ 2^(b−1)) the
    remaining points lie outside it, get no query, and may shadow (tie or equal) some
    queries, which are then left out."""
    b = task.params["bits"]
    labels = task.params["labels"]
    p0, y0 = task.token_to_id["p0"], task.token_to_id["y0"]
    beta = int(rng.integers(0, b))
    half = 1 << (b - 1)
    inside = min(n, half)
    low = rng.choice(half, size=inside, replace=False)  # codes of b − 1 bits, β inserted below
    codes = ((low >> beta) << (beta + 1)) | (low & ((1 << beta) - 1))
    if n > inside:  # the overflow: distinct codes with bit β set
        outside = rng.choice(half, size=n - inside, replace=False)
        extra = ((outside >> beta) << (beta + 1)) | (1 << beta) | (outside & ((1 << beta) - 1))
        codes = np.concatenate([codes, extra])
    order = rng.permutation(n)
    codes = codes[order]
    lab = rng.integers(0, labels, size=n)
    prefix = np.empty(2 * n, dtype=np.int64)
    prefix[0::2], prefix[1::2] = codes + p0, lab + y0
    asked = np.flatnonzero(((codes >> beta) & 1) == 0)
    queries = codes[asked] | (1 << beta)
    keep = hamming_nearest(codes, queries, b) == asked
    if n <= half and not keep.all():  # pragma: no cover - the construction guarantees it
        raise AssertionError("nearest_neighbor every-position context: a query is ambiguous")
    asked, queries = asked[keep], queries[keep]  # (overflow points may shadow some queries)
    return Context(prefix, queries + p0, lab[asked] + y0)


def _every_recall(task: Task, n: int, rng: np.random.Generator) -> Context:
    """One line of N distinct random keys with random values, and a query for every key."""
    k0, v0 = task.token_to_id["k0"], task.token_to_id["v0"]
    keys = rng.choice(task.params["keys"], size=n, replace=False)
    values = rng.integers(0, task.params["values"], size=n)
    prefix = np.empty(2 * n, dtype=np.int64)
    prefix[0::2], prefix[1::2] = keys + k0, values + v0
    return Context(prefix, keys + k0, values + v0)


def _every_pairs(task: Task, n: int, rng: np.random.Generator) -> Chunk:
    """string_equality / disjointness: a negative for every position i (the only differing /
    common position is i) on :func:`_hard_pairs`' backgrounds — N full rows."""
    block = _hard_pairs(task, n, 2 * n, rng)
    rows = slice(0, n)  # the negatives; _hard_pairs puts its positives after them
    return Chunk("every", block.inputs[rows], block.targets[rows], block.lengths[rows],
                 block.prompt_lengths[rows])  # fmt: skip


EveryPosition = Callable[[Task, int, np.random.Generator], "Context | Chunk"]
EVERY_POSITION: dict[str, EveryPosition] = {
    "index_lookup": _every_index_lookup,
    "nearest_neighbor": _every_nearest,
    "associative_recall": _every_recall,
    "string_equality": _every_pairs,
    "disjointness": _every_pairs,
}
"""A context with every position's hard input, per task name: ``(task, N, rng)`` → a
:class:`Context` (one shared prefix, checked by :mod:`~sepbench.constructions.shared_prefix`)
or a :class:`Chunk` of full rows."""


def shares_prefix(task_name: str) -> bool:
    """Whether the task's every-position contexts share their prefix (cheap to check)."""
    return task_name in ("index_lookup", "nearest_neighbor", "associative_recall")


def chunk_rows(tokens: int, width: int) -> int:
    """Rows per forward pass at this token length and width (bounded memory)."""
    return int(max(1, min(4096, CHUNK_WORK // (tokens * max(tokens, width)))))


HALF_SLOWDOWN = 16
"""CPU kernels for bfloat16/float16 are this much slower (or more): their default random
batches are this much smaller."""


def row_cost(module: nn.Module, tokens: int, width: int) -> float:
    """Rough multiply-adds of one forward pass over a row of ``tokens`` tokens: every token
    meets every weight matrix once (embedding and position *tables* are lookups, not counted),
    and attention adds T² · width per layer-ish (counted once)."""
    dense = sum(
        p.numel()
        for name, p in module.named_parameters()
        if p.dim() == 2 and "embed" not in name and "pos" not in name
    )
    return float(tokens) * max(dense, 1) + float(tokens) * tokens * width


def default_samples(cost: float, dtype: str = "float64") -> int:
    """Random rows checked by default when one row costs ``cost`` (see :func:`row_cost`):
    as many as :data:`SAMPLE_WORK` allows, between :data:`MIN_SAMPLES` and
    :data:`MAX_SAMPLES`."""
    work = SAMPLE_WORK / (HALF_SLOWDOWN if dtype in ("bfloat16", "float16") else 1)
    return int(max(MIN_SAMPLES, min(MAX_SAMPLES, work // max(cost, 1.0))))


def inputs_for(
    hb: HandBuilt,
    *,
    samples: int | None = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    hard_limit: int = HARD_LIMIT,
    seed: int = 0,
    dtype: str = "float64",
    exhaustive_work: float = EXHAUSTIVE_WORK,
    contexts: int = 0,
) -> Iterator[Chunk | Context]:
    """The chunks of rows (and shared-prefix contexts) :func:`check` runs ``hb`` on (see the
    module docstring).

    Enumeration happens when there are at most ``exhaustive_limit`` inputs and they cost at
    most ``exhaustive_work`` (:data:`EXHAUSTIVE_WORK`; pass ``math.inf`` for a choice that
    does not depend on the network, as the width search does); it covers every input, so no
    other rows follow. Otherwise ``contexts`` every-position contexts (:data:`EVERY_POSITION`,
    from their own seeded stream), then the hard rows, then the random ones; ``samples=None``
    picks :func:`default_samples`. The same arguments give the same rows, whatever the network.
    """
    task, n = hb.task, hb.length
    tokens = task.max_tokens(n)
    rows = chunk_rows(tokens, hb.width)
    rng = np.random.default_rng([seed, n])
    cost = row_cost(hb.module, tokens, hb.width)
    enum = ENUMERATORS.get(task.name)
    if enum is not None and not hb.generate:
        count, make = enum(task, n)
        if count <= exhaustive_limit and count * cost <= exhaustive_work:
            for start in range(0, count, rows):
                yield make(start, min(count, start + rows))
            return
    every = EVERY_POSITION.get(task.name)
    if every is not None and contexts > 0 and not hb.generate:
        ctx_rng = np.random.default_rng([seed, n, 1])
        for _ in range(int(contexts)):
            item = every(task, n, ctx_rng)
            if isinstance(item, Context):
                yield item
                continue
            for start in range(0, item.inputs.shape[0], rows):
                sl = slice(start, start + rows)
                yield Chunk("every", item.inputs[sl], item.targets[sl], item.lengths[sl],
                            item.prompt_lengths[sl])  # fmt: skip
    hard = HARD_INPUTS.get(task.name)
    # hard rows share the sampling budget: at most as many as default_samples allows
    hard_rows = min(hard_limit, default_samples(cost, dtype)) if samples is None else hard_limit
    if hard is not None and hard_rows > 0 and not hb.generate:
        block = hard(task, n, hard_rows, rng)
        for start in range(0, block.inputs.shape[0], rows):
            sl = slice(start, start + rows)
            yield Chunk(
                "hard",
                block.inputs[sl],
                block.targets[sl],
                block.lengths[sl],
                block.prompt_lengths[sl],
            )
    total = default_samples(cost, dtype) if samples is None else int(samples)
    if hb.generate and samples is None:  # greedy decoding is a Python loop per token
        total = min(total, GENERATE_SAMPLES)
    done = 0
    while done < total:
        size = min(rows, total - done)
        batch = task.sample(n, size, rng=rng)
        done += size
        yield Chunk("sampled", batch.inputs, batch.targets, batch.lengths, batch.prompt_lengths)


# ------------------------------------------------------------------------------------------
# running a network on the rows
# ------------------------------------------------------------------------------------------


def _precision_label(dtype: str, bits: int | None, fixed: bool) -> str:
    if bits is None:
        return dtype
    return f"fixed={bits}" if fixed else f"p={bits}"


def prepared(module: nn.Module, dtype: str, bits: int | None, fixed: bool) -> nn.Module:
    """A copy of ``module`` cast to ``dtype`` (or rounded to ``bits`` in float64)."""
    if bits is not None:
        return rounded_copy(module, bits, fixed)
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return copy.deepcopy(module).to(DTYPES[dtype]).eval()


def _describe(task: Task, chunk: Chunk, row: int, produced: np.ndarray) -> str:
    tokens = task.decode(chunk.inputs[row, : chunk.lengths[row]])
    sup = np.flatnonzero(chunk.targets[row] != IGNORE)
    want = [task.vocab[int(chunk.targets[row, t])] for t in sup]
    got = [task.vocab[int(produced[t])] for t in sup]
    text = " ".join(tokens)
    if len(text) > 400:
        text = text[:200] + " … " + text[-150:]
    bad = [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g]
    if len(sup) > 1 and bad:
        i = bad[0]
        return f"{text}  → at position {int(sup[i])}: expected {want[i]}, got {got[i]}"
    return f"{text}  → expected {' '.join(want)}, got {' '.join(got)}"


def check(
    hb: HandBuilt,
    dtype: str = "float64",
    *,
    name: str | None = None,
    bits: int | None = None,
    fixed: bool = False,
    samples: int | None = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    hard_limit: int = HARD_LIMIT,
    seed: int = 0,
    stop_at_first: bool = False,
    exhaustive_work: float = EXHAUSTIVE_WORK,
    contexts: int = 0,
) -> VerifyRow:
    """Verify one built network (see the module docstring); ``name`` labels the row."""
    label = _precision_label(dtype, bits, fixed)
    start = time.perf_counter()
    counts = {"exhaustive": 0, "every": 0, "hard": 0, "sampled": 0}
    compare = bits is None and dtype == "float64"  # shared prefix vs full pass, once
    errors = 0
    min_gap = math.inf
    example: str | None = None
    failure: str | None = None
    try:
        module = prepared(hb.module, dtype, bits, fixed)
        run = dataclasses.replace(hb, module=module)
        for chunk in inputs_for(
            hb,
            samples=samples,
            exhaustive_limit=exhaustive_limit,
            hard_limit=hard_limit,
            seed=seed,
            dtype=dtype,
            exhaustive_work=exhaustive_work,
            contexts=contexts,
        ):
            if isinstance(chunk, Context):
                bad, gap, text = _check_context(run, chunk, bits, fixed, compare)
                compare = False
                counts["every"] += int(chunk.finals.size)
                errors += bad
                min_gap = min(min_gap, gap)
                example = example or text
                if errors and stop_at_first:
                    break
                continue
            if chunk.inputs.shape[0] == 0:
                continue
            bad, gap, first, produced = _check_chunk(run, chunk, bits, fixed)
            counts[chunk.kind] += int(chunk.inputs.shape[0])
            errors += bad
            min_gap = min(min_gap, gap)
            if first is not None and example is None:
                example = (
                    produced
                    if isinstance(produced, str)
                    else _describe(hb.task, chunk, first, produced)
                )
            if errors and stop_at_first:
                break
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return VerifyRow(
        construction=name or hb.result_id,
        length=hb.length,
        width=hb.width,
        precision=label,
        exhaustive=counts["exhaustive"],
        hard=counts["hard"],
        sampled=counts["sampled"],
        errors=errors,
        min_gap=min_gap if math.isfinite(min_gap) else math.nan,
        counterexample=example,
        seconds=time.perf_counter() - start,
        failure=failure,
        every=counts["every"],
        hypotheses=hb.hypotheses,
        hypotheses_hold=hb.hypotheses_hold,
    )


@torch.no_grad()
def _check_context(
    run: HandBuilt, ctx: Context, bits: int | None, fixed: bool, compare: bool
) -> tuple[int, float, str | None]:
    """(errors, min gap, first counterexample) of every row of one shared-prefix context.

    ``compare``: also run the full forward pass on the first and the last row and raise when
    its logits differ from the shared-prefix ones (float64 only: the two evaluate the same
    function in a different order)."""
    if ctx.finals.size == 0:
        return 0, math.inf, None
    run.module.eval()
    mode = Rounding(bits, fixed) if bits is not None else contextlib.nullcontext()
    with mode:
        logits = last_logits(run.module, ctx.prefix, ctx.finals).double()
    answers = torch.from_numpy(np.asarray(ctx.answers, dtype=np.int64))
    correct = logits.gather(1, answers[:, None])[:, 0]
    others = logits.scatter(1, answers[:, None], float("-inf")).amax(1)
    gaps = (correct - others).numpy()
    if compare:
        rows = np.unique([0, ctx.finals.size - 1])
        inputs = np.concatenate(
            [np.repeat(ctx.prefix[None], rows.size, 0), ctx.finals[rows, None]], axis=1
        )
        full = run.module(torch.from_numpy(inputs))[:, -1].double()
        scale = max(1.0, float(full.abs().max()))
        if not torch.allclose(full, logits[rows], rtol=1e-7, atol=1e-7 * scale):
            raise RuntimeError(
                "the shared-prefix evaluation disagrees with the module's forward pass"
            )
    bad = np.flatnonzero(gaps <= 0)
    text = None
    if bad.size:
        r = int(bad[0])
        task = run.task
        tokens = task.decode(np.append(ctx.prefix, ctx.finals[r]))
        shown = " ".join(tokens)
        if len(shown) > 400:
            shown = shown[:200] + " … " + shown[-150:]
        want = task.vocab[int(ctx.answers[r])]
        got = task.vocab[int(logits[r].argmax())]
        text = f"{shown}  → expected {want}, got {got}"
    return int(bad.size), float(gaps.min()), text


@torch.no_grad()
def _check_chunk(
    run: HandBuilt, chunk: Chunk, bits: int | None, fixed: bool
) -> tuple[int, float, int | None, np.ndarray | str]:
    """(errors, min gap, first wrong row, that row's argmax outputs — or, for generated
    constructions, the description of its wrong continuation)."""
    mode = Rounding(bits, fixed) if bits is not None else None
    run.module.eval()
    if mode is not None:
        with mode:
            res = check_batch(run, chunk.inputs, chunk.targets)
    else:
        res = check_batch(run, chunk.inputs, chunk.targets)
    errors, first = res.errors, res.first_error
    if run.generate:
        gen_bad, text = _generation_errors(run, chunk, bits, fixed)
        return int(gen_bad.size), res.min_gap, (int(gen_bad[0]) if gen_bad.size else None), text
    produced = np.zeros(chunk.inputs.shape[1], dtype=np.int64)
    if first is not None:
        row = torch.from_numpy(np.ascontiguousarray(chunk.inputs[first : first + 1]))
        if bits is not None:
            with Rounding(bits, fixed):
                logits = run.module(row)
        else:
            logits = run.module(row)
        produced = logits[0].argmax(-1).numpy()
    return errors, res.min_gap, first, produced


def _generation_errors(
    run: HandBuilt, chunk: Chunk, bits: int | None, fixed: bool
) -> tuple[np.ndarray, str]:
    """Rows whose greedy continuation differs from the reference continuation, and a
    description of the first one."""
    from sepbench.training.generate import greedy_generate

    task = run.task
    rows = np.arange(chunk.inputs.shape[0])
    ends = chunk.inputs[rows, chunk.lengths - 1]
    stops = task.encode(task.binary_answers) if task.binary_answers else np.unique(ends)
    if bits is not None:
        with Rounding(bits, fixed):
            gen = greedy_generate(
                run.module, task, chunk.inputs, chunk.prompt_lengths, chunk.inputs.shape[1], stops
            )
    else:
        gen = greedy_generate(
            run.module, task, chunk.inputs, chunk.prompt_lengths, chunk.inputs.shape[1], stops
        )
    bad: list[int] = []
    text = ""
    for b in rows:
        p, n, e = int(chunk.prompt_lengths[b]), int(chunk.lengths[b]), int(gen.ends[b])
        if not (gen.finished[b] and np.array_equal(gen.tokens[b, p:e], chunk.inputs[b, p:n])):
            if not bad:
                want = task.decode(chunk.inputs[b, p:n])
                got = task.decode(gen.tokens[b, p:e])
                k = next(
                    (i for i, (w, g) in enumerate(zip(want, got, strict=False)) if w != g),
                    min(len(want), len(got)),
                )
                prompt = " ".join(task.decode(chunk.inputs[b, :p]))
                if len(prompt) > 300:
                    prompt = prompt[:150] + " … " + prompt[-100:]
                text = (
                    f"{prompt}  → continuation differs at token {k}: expected "
                    f"{' '.join(want[k : k + 6]) or '(end)'}, generated "
                    f"{' '.join(got[k : k + 6]) or '(nothing)'}"
                )
            bad.append(int(b))
    return np.asarray(bad, dtype=np.int64), text


def build(name: str, length: int, **params: Any) -> HandBuilt:
    """``get(name).build(length, **params)``, with unknown parameters a UserError that names
    the allowed ones (instead of a TypeError)."""
    construction = get(name)
    signature = inspect.signature(construction.build)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    allowed = [p for p in signature.parameters if p != "length"]
    unknown = sorted(set(params) - set(allowed))
    if unknown and not takes_any:
        raise UserError(
            f"construction '{name}': unknown parameter '{unknown[0]}'; allowed: "
            f"{', '.join(allowed) or 'none'}"
        )
    return construction.build(int(length), **params)


def verify(
    name: str,
    lengths: Sequence[int] | None = None,
    dtype: str | Sequence[str] = "float64",
    *,
    params: Mapping[str, Any] | None = None,
    bits: int | None = None,
    fixed: bool = False,
    samples: int | None = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    hard_limit: int = HARD_LIMIT,
    seed: int = 0,
    exhaustive_work: float = EXHAUSTIVE_WORK,
    contexts: int = DEFAULT_CONTEXTS,
) -> list[VerifyRow]:
    """Verify construction ``name`` at every N of ``lengths`` and every dtype of ``dtype``.

    ``params`` go to the builder (task parameters, width knobs, seeds). ``bits`` replaces the
    dtypes by simulated precision (``bits`` mantissa bits, or fixed point with ``fixed``).
    ``contexts``: every-position contexts per N (:data:`EVERY_POSITION`).
    Returns one :class:`VerifyRow` per (N, precision).
    """
    get(name)  # unknown name: UserError before any work
    dtypes = [dtype] if isinstance(dtype, str) else list(dtype)
    for d in dtypes:
        if d not in DTYPES:
            raise UserError(f"unknown dtype {d!r}; choose one of {', '.join(DTYPES)}")
    if bits is not None:
        dtypes = ["float64"]
    rows: list[VerifyRow] = []
    for n in lengths or DEFAULT_LENGTHS:
        hb = build(name, int(n), **dict(params or {}))
        for d in dtypes:
            rows.append(
                check(
                    hb,
                    d,
                    name=name,
                    bits=bits,
                    fixed=fixed,
                    samples=samples,
                    exhaustive_limit=exhaustive_limit,
                    hard_limit=hard_limit,
                    seed=seed,
                    exhaustive_work=exhaustive_work,
                    contexts=contexts,
                )
            )
    return rows


def format_rows(rows: Sequence[VerifyRow]) -> str:
    """A plain-text table of verification rows, counterexamples below it."""
    header = ("N", "width", "precision", "exhaust.", "every pos.", "hard", "sampled", "errors",
              "min gap", "seconds", "verdict")  # fmt: skip
    body = [
        (
            str(r.length),
            str(r.width),
            r.precision,
            str(r.exhaustive),
            str(r.every),
            str(r.hard),
            str(r.sampled),
            str(r.errors),
            f"{r.min_gap:.3g}",
            f"{r.seconds:.1f}",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    for r in rows:
        if not r.hypotheses_hold:
            lines.append(f"  N={r.length}: hypotheses fail: {r.hypotheses}")
        if r.failure:
            lines.append(f"  N={r.length} {r.precision}: run failed: {r.failure}")
        if r.counterexample:
            lines.append(f"  N={r.length} {r.precision}: first counterexample: {r.counterexample}")
    return "\n".join(lines)


__all__ = [
    "DEFAULT_LENGTHS",
    "DTYPES",
    "ENUMERATORS",
    "EVERY_POSITION",
    "HARD_INPUTS",
    "Chunk",
    "Context",
    "VerifyRow",
    "build",
    "check",
    "default_samples",
    "dyck_scan",
    "format_rows",
    "inputs_for",
    "verify",
]
