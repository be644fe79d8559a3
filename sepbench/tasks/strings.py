"""Two-party string problems: string equality (also as next-character prediction) and set
disjointness (B24 §5).

The decision tasks read two halves of N symbols separated by ``|`` and answer at the last
position (:class:`StringEqualityLM` is the dense-supervision variant of equality). They are
the communication-complexity problems behind B24's lower bounds: a one-pass RNN must carry the
first half across the separator (m·p ≥ N/2, Thm 11), and a one-layer Transformer's attention
is a cheap protocol (3m(p + log2 N)H ≥ N, Thm 12); two layers solve both with O(log N) width
(Thm 6, Thm 13). Both are binary and exactly balanced per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    IGNORE,
    Batch,
    Param,
    Task,
    balanced_labels,
    check_int_length,
    int_param,
    single_answer_batch,
)

NEGATIVE_KINDS = ("random", "one", "swap")


def _split(task: str, tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """The two halves of ``x … | y …`` (exactly one separator, equal halves)."""
    if tokens.count("|") != 1:
        raise UserError(f"{task}: expected exactly one '|' separator")
    cut = list(tokens).index("|")
    left, right = list(tokens[:cut]), list(tokens[cut + 1 :])
    if len(left) != len(right):
        raise UserError(f"{task}: the halves differ in length ({len(left)} vs {len(right)})")
    return left, right


class StringEquality(Task):
    """String equality, ``s{x1} … s{xN} | s{y1} … s{yN}`` → ``eq`` / ``neq`` (B24 Thm 6/11/12).

    x is uniform over the alphabet^N. Positives copy it (y = x). A negative's y is made by one
    of three rules (``negatives``; ``mixed`` assigns the negatives of a batch to the three
    rules in equal thirds, up to rounding, in random order):

    * ``random`` — y uniform over all strings ≠ x (redrawn while equal);
    * ``one`` — y differs from x at exactly one position (uniform), where its symbol is
      uniform among the other k − 1;
    * ``swap`` — y is x with the symbols at two positions i < j exchanged, (i, j) uniform over
      the pairs with x_i ≠ x_j: the same multiset of symbols, so counting cannot tell y from x.
      A constant x has no such pair: swap negatives redraw x until it is not constant (so a
      swap negative's x is uniform over the non-constant strings). Needs N ≥ 2, as does
      ``mixed``.

    N = the length of each half; token length 2N + 1; answer at the last position.
    """

    name = "string_equality"
    summary = "two strings of N symbols separated by '|': are they equal?"
    source = "B24 Thm 6 (2-layer TF upper), Thm 11 (RNN m·p ≥ N/2), Thm 12 (1-layer TF lower)"
    length_meaning = "symbols in each half (token length 2N + 1)"
    params_spec = (
        int_param("alphabet", 2, "alphabet size k (symbols s0 … s{k-1})", 2, (3, 5)),
        Param(
            "negatives",
            str,
            "mixed",
            "how negatives are made: random, one (one position differs), swap (two unequal "
            "symbols exchanged: same multiset), or mixed (a third each)",
            choices=(*NEGATIVE_KINDS, "mixed"),
            examples=NEGATIVE_KINDS,
        ),
    )
    binary_answers = ("eq", "neq")
    test_lengths = (1, 16)

    def _build_vocab(self) -> Sequence[str]:
        k = self.params["alphabet"]
        return [self.pad_token, *(f"s{i}" for i in range(k)), "|", "eq", "neq"]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "symbols in each half")
        negatives = self.params["negatives"]
        if length < 2 and negatives in ("swap", "mixed"):
            raise UserError(
                f"task '{self.name}': negatives={negatives} needs length >= 2 (a swap exchanges "
                f"two positions), got {length}; use negatives=random or one"
            )

    def max_tokens(self, length: int) -> int:
        return 2 * length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        k = self.params["alphabet"]
        sym0, sep, eq, neq = 1, 1 + k, 2 + k, 3 + k
        positive = balanced_labels(batch_size, rng)
        x = rng.integers(0, k, size=(batch_size, length), dtype=np.int64)
        y = x.copy()
        neg = np.flatnonzero(~positive)
        mode = self.params["negatives"]
        if mode == "mixed":
            kinds = rng.permutation(np.arange(neg.size) % 3)
        else:
            kinds = np.full(neg.size, NEGATIVE_KINDS.index(mode))
        makers = (_random_negatives, _one_negatives, _swap_negatives)  # NEGATIVE_KINDS order
        for kind, make in enumerate(makers):
            rows = neg[kinds == kind]
            if rows.size:
                make(rng, x, y, rows, k)
        inputs = np.empty((batch_size, 2 * length + 1), dtype=np.int64)
        inputs[:, :length] = x + sym0
        inputs[:, length] = sep
        inputs[:, length + 1 :] = y + sym0
        return single_answer_batch(inputs, np.where(positive, eq, neq))

    def solve(self, tokens: Sequence[str]) -> list[str]:
        left, right = _split(self.name, tokens)
        return ["eq" if all(a == b for a, b in zip(left, right, strict=True)) else "neq"]


def _random_negatives(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, rows: np.ndarray, k: int
) -> None:
    """y[rows] uniform over all strings other than x[rows] (redraw the rows that came out equal)."""
    while rows.size:
        y[rows] = rng.integers(0, k, size=(rows.size, x.shape[1]), dtype=np.int64)
        rows = rows[(y[rows] == x[rows]).all(axis=1)]


def _one_negatives(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, rows: np.ndarray, k: int
) -> None:
    """y[rows] = x[rows] with one uniform position changed to one of the other k − 1 symbols."""
    pos = rng.integers(0, x.shape[1], size=rows.size)
    shift = rng.integers(1, k, size=rows.size)
    y[rows, pos] = (x[rows, pos] + shift) % k


def _swap_negatives(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, rows: np.ndarray, k: int
) -> None:
    """y[rows] = x[rows] with a uniform pair of unequal symbols swapped (x redrawn if constant)."""
    n = x.shape[1]
    todo = rows
    while True:  # constant strings have no unequal pair: redraw them
        todo = todo[(x[todo] == x[todo, :1]).all(axis=1)]
        if todo.size == 0:
            break
        x[todo] = rng.integers(0, k, size=(todo.size, n), dtype=np.int64)
    y[rows] = x[rows]
    todo = rows
    while todo.size:  # (i, j) uniform over ordered pairs i ≠ j, kept when x_i ≠ x_j
        i = rng.integers(0, n, size=todo.size)
        j = rng.integers(0, n - 1, size=todo.size)
        j += j >= i
        ok = x[todo, i] != x[todo, j]
        done, i, j = todo[ok], i[ok], j[ok]
        y[done, i], y[done, j] = x[done, j], x[done, i]
        todo = todo[~ok]


class StringEqualityLM(Task):
    """String equality as next-character prediction: ``s{x1} … s{xN} | s{x1} … s{xN}``, every
    character after ``|`` predicted from the ones before (dense supervision).

    The rows are the strings of the language {x | x : x ∈ alphabet^N}, x uniform. A language
    model of it can predict nothing in the first half (x is uniform) and everything after the
    separator: at the separator and at each copied symbol the target is the next symbol of the
    copy (``targets[t] = inputs[t + 1]`` for t = N … 2N − 1; N targets, x1 … xN). Sequence
    accuracy = the whole copy predicted, which is what deciding equality symbol by symbol
    needs. This is sepbench's formulation of B24's dense-supervision equality task (its exact
    format is not verified here).

    A recurrent model's state after the separator must determine x (it predicts all of it
    from there): at least N·log2 k bits, as in B24 Thm 11's argument. B24 Thm 12's one-layer
    Transformer lower bound does not carry over — fetching x_{j+1} is a lookup by position,
    as in index lookup — so the theory catalogue does not judge this task with the
    string_equality results.

    N = the length of each half; token length 2N + 1; prompt N + 1 (up to the separator).
    """

    name = "string_equality_lm"
    summary = "x | x: after the separator, predict each next character of the copy"
    source = "B24 §6 (dense-supervision variant of string equality; RNN bound as Thm 11)"
    length_meaning = "symbols in each half (token length 2N + 1)"
    params_spec = (int_param("alphabet", 2, "alphabet size k (symbols s0 … s{k-1})", 2, (3, 5)),)
    test_lengths = (1, 16)

    def _build_vocab(self) -> Sequence[str]:
        k = self.params["alphabet"]
        return [self.pad_token, *(f"s{i}" for i in range(k)), "|"]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "symbols in each half")

    def max_tokens(self, length: int) -> int:
        return 2 * length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        k = self.params["alphabet"]
        sym0, sep = 1, 1 + k
        x = rng.integers(0, k, size=(batch_size, length), dtype=np.int64) + sym0
        inputs = np.empty((batch_size, 2 * length + 1), dtype=np.int64)
        inputs[:, :length] = x
        inputs[:, length] = sep
        inputs[:, length + 1 :] = x
        targets = np.full(inputs.shape, IGNORE, dtype=np.int64)
        targets[:, length : 2 * length] = x
        lengths = np.full(batch_size, 2 * length + 1, dtype=np.int64)
        return Batch(inputs, targets, lengths, np.full(batch_size, length + 1, dtype=np.int64))

    def solve(self, tokens: Sequence[str]) -> list[str]:
        left, right = _split(self.name, tokens)
        if left != right:
            raise UserError(f"{self.name}: a row of this language repeats its first half")
        return left


class Disjointness(Task):
    """Set disjointness, ``b{x1} … b{xN} | b{y1} … b{yN}`` → ``disjoint`` / ``intersect``.

    x and y are the indicator vectors of two subsets of {1..N}; the answer is ``intersect`` iff
    some i has x_i = y_i = 1 (B24 Thm 12 / Thm 13).

    * Disjoint rows: each position independently (1,0), (0,1) or (0,0), probability 1/3 each.
    * Intersecting rows: a disjoint pair in which c ≥ 1 positions (uniform among the c-subsets)
      are set to (1,1). c = 1 with probability 3/4 — the hard case: a single witness
      position, otherwise indistinguishable from a disjoint pair — and otherwise c is uniform
      in 2..N (c = 1 always when N = 1).

    N = the length of each half; token length 2N + 1; answer at the last position.
    """

    name = "disjointness"
    summary = "two N-bit sets separated by '|': do they intersect?"
    source = "B24 Thm 12 (1-layer TF lower), Thm 13 (2-layer TF upper); B24 Thm 11 (RNN)"
    length_meaning = "bits in each half (token length 2N + 1)"
    params_spec = ()
    binary_answers = ("disjoint", "intersect")
    test_lengths = (1, 16)

    SINGLE_WITNESS = 0.75
    """Probability that an intersecting row has exactly one common element."""

    def _build_vocab(self) -> Sequence[str]:
        return [self.pad_token, "b0", "b1", "|", "disjoint", "intersect"]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "bits in each half")

    def max_tokens(self, length: int) -> int:
        return 2 * length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        bit0, sep, disjoint, intersect = 1, 3, 4, 5
        positive = balanced_labels(batch_size, rng)
        cell = rng.integers(0, 3, size=(batch_size, length), dtype=np.int8)
        x, y = cell == 0, cell == 1
        rows = np.flatnonzero(~positive)
        many = rng.random(rows.size) >= self.SINGLE_WITNESS
        if length == 1:
            many[:] = False
        # one witness: a uniform position
        single = rows[~many]
        pos = rng.integers(0, length, size=single.size)
        x[single, pos] = y[single, pos] = True
        # c ≥ 2 witnesses: the c smallest of uniform keys mark a uniform c-subset
        multi = rows[many]
        if multi.size:
            count = rng.integers(2, length + 1, size=multi.size)
            keys = rng.random((multi.size, length))
            kth = np.sort(keys, axis=1)[np.arange(multi.size), count - 1]
            chosen = keys <= kth[:, None]
            x[multi] |= chosen
            y[multi] |= chosen
        inputs = np.empty((batch_size, 2 * length + 1), dtype=np.int64)
        inputs[:, :length] = x + bit0
        inputs[:, length] = sep
        inputs[:, length + 1 :] = y + bit0
        return single_answer_batch(inputs, np.where(positive, disjoint, intersect))

    def solve(self, tokens: Sequence[str]) -> list[str]:
        left, right = _split(self.name, tokens)
        first = {i for i, tok in enumerate(left) if tok == "b1"}
        second = {i for i, tok in enumerate(right) if tok == "b1"}
        return ["intersect" if first & second else "disjoint"]
