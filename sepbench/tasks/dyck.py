"""dyck / dyck_next — bounded Dyck languages Dyck-(k, D) (B24 §6, App. H.1; H20; Y21).

Tokens ``(0 )0 (1 )1 … (k-1 )k-1``: an opener and a closer for each of the k bracket types.
A string is in **Dyck-(k, D)** when every closer closes the most recent unclosed opener of the
same type, nothing is left open at the end, and at no point are more than D brackets open.
N (``length``) is the string length; it must be even (every Dyck string has even length).

``dyck`` (recognition; B24-T5 lower bound for 1-layer Transformers, B24-E constant RNN): the
answer at the last position is ``yes`` if the string is in Dyck-(k, D), else ``no``; batches
are exactly half ``yes``.

``dyck_next`` (next-closer prediction; H20's Θ(D log k) RNN, Y21's Transformer): the input is a
string of Dyck-(k, D); the target at every position t is ``)i`` for the type i on top of the
stack after reading t + 1 tokens, or ``_`` when the stack is empty.

**Positives** (both tasks) follow one rule, step by step, with r tokens still to write and d
brackets open: close (the top type) if d = r or d = D; open a uniformly drawn type if d = 0;
otherwise open or close with probability 1/2 each — open only while d + 1 ≤ r − 1, so the
string can still close in time. Every string of Dyck-(k, D) of length N has positive
probability, and every positive has exactly length N and depth ≤ D.

**Negatives** (``dyck``): take a positive and corrupt c ~ U{1, …, max(1, ⌊N/10⌋)} distinct
positions; each corrupted bracket either changes its type (to one of the k − 1 others, uniform)
or flips opener↔closer keeping its type, with probability 1/2 each (with k = 1 it always
flips). An example that is still in Dyck-(k, D) is redrawn whole (a fresh positive, a fresh
corruption), so negatives are distributed as (positive, corruption) pairs conditioned on
leaving the language. A single corruption always leaves it (a type change breaks a matched
pair, a flip unbalances the counts), so redraws only happen when c ≥ 2, i.e. N ≥ 20.

Generation is vectorised across the batch: one numpy step per position carrying a [B, D + 2]
stack of types (sentinel, D live slots, scratch) and each row's top pointer, which is its depth.
``Batch.meta["corruptions"]`` holds each ``dyck`` row's c (0 for positives). The reference
solvers (:func:`is_dyck`, :func:`stack_tops`) are separate plain-Python explicit-stack
algorithms; the vectorised recogniser :func:`in_dyck` (used for redraws) matches brackets by
sorting on nesting level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    Batch,
    Task,
    balanced_labels,
    check_int_length,
    int_param,
    single_answer_batch,
)

EMPTY = "_"
"""The ``dyck_next`` target when no bracket is open."""


# --------------------------------------------------------------------- token helpers
def bracket_tokens(types: int) -> list[str]:
    """The bracket tokens in vocabulary order: ``(0 )0 (1 )1 …`` — ``(i`` then ``)i``."""
    return [tok for i in range(types) for tok in (f"({i}", f"){i}")]


def parse_bracket(token: str) -> tuple[bool, int]:
    """``"(3"`` -> ``(True, 3)``, ``")0"`` -> ``(False, 0)``; anything else raises UserError."""
    if len(token) >= 2 and token[0] in "()" and token[1:].isdigit() and token[1:].isascii():
        return token[0] == "(", int(token[1:])
    raise UserError(f"dyck: {token!r} is not a bracket token like '(0' or ')1'")


# --------------------------------------------------------------------- reference (plain Python)
def is_dyck(tokens: Sequence[str], types: int, depth: int) -> bool:
    """Whether ``tokens`` is a string of Dyck-(types, depth), by an explicit stack.

    Openers push their type; a closer must find its own type on top and pops it; a bracket
    type ≥ ``types``, a push beyond ``depth`` open brackets, a closer on an empty stack or on a
    different type, or a non-empty stack at the end rejects. The empty string is accepted.
    """
    stack: list[int] = []
    for tok in tokens:
        opener, kind = parse_bracket(tok)
        if kind >= types:
            return False
        if opener:
            stack.append(kind)
            if len(stack) > depth:
                return False
        elif not stack or stack.pop() != kind:
            return False
    return not stack


def stack_tops(tokens: Sequence[str]) -> list[str]:
    """After each prefix ``tokens[: t + 1]``, the closer the top of the stack needs (``)i``),
    or ``_`` when nothing is open — the ``dyck_next`` targets.

    Works on any prefix of a well-matched string (brackets may stay open at the end); a closer
    on an empty stack or on a different type raises UserError. Ignores any depth bound.
    """
    stack: list[int] = []
    out: list[str] = []
    for t, tok in enumerate(tokens):
        opener, kind = parse_bracket(tok)
        if opener:
            stack.append(kind)
        elif not stack or stack[-1] != kind:
            raise UserError(f"dyck: closer {tok!r} at position {t} matches no open bracket")
        else:
            stack.pop()
        out.append(f"){stack[-1]}" if stack else EMPTY)
    return out


# --------------------------------------------------------------------- vectorised generation
# Internally every array is time-major, [N, B] (one contiguous row per position), which is what
# the one-step-per-position loop writes; the public helpers take and return [B, N] arrays (views
# of time-major arrays where they produce them).


def _int_dtype(largest: int) -> type[np.signedinteger]:
    """The smallest of int8/int16/int32/int64 holding -largest … largest."""
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def random_bits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Independent fair coins (bool array of ``shape``), eight per random byte."""
    size = int(np.prod(shape))
    raw = np.frombuffer(rng.bytes((size + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw, count=size).view(bool).reshape(shape)


def _walks(
    batch_size: int, length: int, types: int, depth: int, rng: np.random.Generator, tops: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Time-major :func:`sample_walks` (C-contiguous [N, B] arrays).

    Row b owns stack slots ``b·(D + 2) + 0 … D + 1``: slot 0 is a sentinel −1 (so "the top is
    negative" means "depth 0"), slots 1 … D hold the open types, and slot D + 1 is scratch.
    ``slot`` points at the top (slot d), so a row opens iff ``slot < base + min(D, r − 1)``
    and the coin says so, or the top is the sentinel. Every step writes the token's type into
    slot d + 1: for an opener that is the push; for a closer it lands above the live stack,
    where nothing reads it. Everything is in place on preallocated rows: ~12 vector ops a step.
    """
    depth = min(depth, length // 2)  # no walk gets deeper; keeps the stack O(B·N) for huge D
    kind_t = _int_dtype(types)
    coins = random_bits(rng, (length, batch_size))
    draws = rng.integers(0, types, size=(length, batch_size), dtype=kind_t)
    opens = np.empty((length, batch_size), dtype=bool)
    kinds = np.empty((length, batch_size), dtype=kind_t)
    after = np.empty((length, batch_size), dtype=kind_t) if tops else None
    width = depth + 2
    stack = np.full(batch_size * width, -1, dtype=kind_t)
    above = stack[1:]  # above[i] is stack[i + 1]
    base = np.arange(batch_size, dtype=np.intp) * width
    slot = base.copy()
    top = np.full(batch_size, -1, dtype=kind_t)
    empty = np.empty(batch_size, dtype=bool)
    step = np.empty(batch_size, dtype=np.int8)
    limit = min(depth, length - 1)
    bound = base + limit
    for t in range(length):
        if min(depth, length - t - 1) != limit:  # changes only in the last D steps
            limit = min(depth, length - t - 1)
            bound = base + limit
        op, typ = opens[t], kinds[t]
        np.less(slot, bound, out=op)
        op &= coins[t]
        np.less(top, 0, out=empty)
        op |= empty
        op8 = op.view(np.int8)
        np.subtract(draws[t], top, out=typ)  # typ = top + op·(draw − top)
        typ *= op8
        typ += top
        above[slot] = typ
        np.multiply(op8, 2, out=step)
        step -= 1
        slot += step
        if after is not None:
            top = after[t]
        np.take(stack, slot, out=top)
    return opens, kinds, after


def sample_walks(
    batch_size: int,
    length: int,
    types: int,
    depth: int,
    rng: np.random.Generator,
    with_tops: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``batch_size`` positives of Dyck-(types, depth) with exactly ``length`` tokens each.

    Returns ``(opens, kinds, tops)``, all [B, N]: ``opens`` is True at openers, ``kinds`` the
    bracket types, and ``tops`` (only with ``with_tops``) the type on top of the stack after
    each token, −1 when empty (small signed integer dtypes). The module docstring states the
    rule; per step, with d the depth and r = N − t the tokens left, a row opens iff d = 0 or
    (coin and d < min(D, r − 1)); by parity (d ≡ r mod 2) "d < r − 1" is exactly the rule's
    "d + 1 ≤ r − 1 and d ≠ r". One numpy step per position, carrying for each row a stack of
    types (a sentinel slot, D live slots, one scratch slot) and a pointer to its top, from
    which the depth is read; see ``_walks``.
    """
    if length % 2 or length < 0:
        raise UserError(f"dyck: length must be even and >= 0, got {length}")
    opens, kinds, tops = _walks(batch_size, length, types, depth, rng, with_tops)
    return opens.T, kinds.T, None if tops is None else tops.T


def _in_dyck(opens: np.ndarray, kinds: np.ndarray, depth: int) -> np.ndarray:
    """Time-major :func:`in_dyck` ([N, B] -> bool [B])."""
    n, rows = opens.shape
    if n == 0:
        return np.ones(rows, dtype=bool)
    level_t = _int_dtype(n + 1)
    after = np.where(opens, level_t(1), level_t(-1))
    for t in range(1, n):  # running depth (a row loop beats numpy's accumulate along axis 0)
        after[t] += after[t - 1]
    ok = (after.min(axis=0) >= 0) & (after[-1] == 0) & (after.max(axis=0) <= depth)
    idx = np.flatnonzero(ok)
    if idx.size:
        level = np.ascontiguousarray((after[:, idx] + ~opens[:, idx]).T)  # closers: depth before
        order = np.argsort(level, axis=1, kind="stable")
        paired = np.take_along_axis(kinds[:, idx].T, order, axis=1)
        ok[idx] = (paired[:, 0::2] == paired[:, 1::2]).all(axis=1)
    return ok


def in_dyck(opens: np.ndarray, kinds: np.ndarray, depth: int) -> np.ndarray:
    """Row-wise membership in Dyck-(k, depth) of bracket arrays ([B, N] -> bool [B]).

    Vectorised, a different algorithm from the stack: the running depth must stay in
    [0, depth] and end at 0; then give each opener the level it opens (depth after it) and
    each closer the level it closes (depth before it). Within one level the brackets
    alternate opener, closer, opener, … and each opener is closed by the next closer of its
    level, so a stable sort of the positions by level lists the matched pairs side by side;
    the row is in the language iff every pair has equal types. Types are not checked against
    k (arrays built by this module are always in range).
    """
    return _in_dyck(np.asarray(opens, dtype=bool).T, np.asarray(kinds).T, depth)


def _corrupt(
    opens: np.ndarray, kinds: np.ndarray, types: int, rng: np.random.Generator
) -> np.ndarray:
    """Time-major :func:`corrupt`, in place on ([N, B]) ``opens`` and ``kinds``; -> counts."""
    n, rows = opens.shape
    cmax = max(1, n // 10)
    counts = rng.integers(1, cmax + 1, size=rows, dtype=np.int64)
    chosen = np.zeros((n, rows), dtype=bool)
    # Floyd: for j = n - c … n - 1 draw x ~ U{0..j}; take x, or j if x is taken already
    for s in range(cmax):
        r = np.flatnonzero(counts > s)
        j = n - counts[r] + s
        x = rng.integers(0, j + 1)
        x = np.where(chosen[x, r], j, x)
        chosen[x, r] = True
    p, r = np.nonzero(chosen)
    if types >= 2:
        retype = random_bits(rng, (p.size,))
        pt, rt = p[retype], r[retype]
        shift = rng.integers(1, types, size=pt.size)
        kinds[pt, rt] = (kinds[pt, rt] + shift) % types
        p, r = p[~retype], r[~retype]
    opens[p, r] = ~opens[p, r]
    return counts


def corrupt(
    opens: np.ndarray, kinds: np.ndarray, types: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt each row of a bracket batch ([B, N]); returns new ``(opens, kinds, counts)``.

    Row b gets counts[b] ~ U{1, …, max(1, ⌊N/10⌋)} distinct positions, a uniform subset drawn
    by Floyd's algorithm (vectorised over rows); each chosen bracket changes its type (by a
    uniform nonzero shift mod k) or flips opener↔closer, with probability 1/2 each; with
    k = 1 every change is a flip. The inputs are not modified.
    """
    o = np.array(np.asarray(opens, dtype=bool).T, order="C")
    k = np.array(np.asarray(kinds).T, order="C")
    counts = _corrupt(o, k, types, rng)
    return o.T, k.T, counts


def _token_ids(
    opens: np.ndarray, kinds: np.ndarray, types: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """Time-major bracket arrays -> [B, N] int64 ids: ``(i`` -> 1 + 2i, ``)i`` -> 2 + 2i.

    With ``rows``, output row b is column ``rows[b]`` of the inputs.
    """
    small = kinds.astype(_int_dtype(2 * types + 2))
    small *= 2
    small += 2
    small -= opens
    if rows is not None:
        small = small.take(rows, axis=1)
    return small.T.astype(np.int64)


def token_ids(opens: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Vocabulary ids of [B, N] brackets: ``(i`` -> 1 + 2i, ``)i`` -> 2 + 2i (0 is padding)."""
    return 2 * np.asarray(kinds, dtype=np.int64) + 2 - np.asarray(opens, dtype=np.int64)


# --------------------------------------------------------------------- the tasks
_TYPES = int_param("types", 2, "number of bracket types k (tokens (0 )0 … (k-1 )k-1)", 1, (1, 3))
_DEPTH = int_param("depth", 2, "largest nesting depth D of the language", 1, (1, 3, 4))


class _DyckBase(Task):
    length_meaning = "string length (even)"
    params_spec = (_TYPES, _DEPTH)
    test_lengths = (2, 16)

    def _brackets(self) -> list[str]:
        return [self.pad_token, *bracket_tokens(self.params["types"])]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 2, "brackets in the string")
        if length % 2:
            raise UserError(
                f"task '{self.name}': length (the string length) must be even, got {length}"
            )

    def max_tokens(self, length: int) -> int:
        return length


class Dyck(_DyckBase):
    """Recognition of Dyck-(k, D): answer ``yes``/``no`` at the last position."""

    name = "dyck"
    summary = "is the bracket string in Dyck-(k, D)? answer yes/no at the end"
    source = "B24 §6 / App. H.1: Thm 5 (1-layer TF lower bound), 7-state RNN (B24-E); H20"
    binary_answers = ("yes", "no")

    def _build_vocab(self) -> Sequence[str]:
        return [*self._brackets(), "yes", "no"]

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        k, depth = self.params["types"], self.params["depth"]
        labels = balanced_labels(batch_size, rng)
        # negatives are the first n_neg walks (a contiguous block, corrupted in place); rows
        # are put in the shuffled label order at the end
        n_neg = int(np.count_nonzero(~labels))
        opens, kinds, _ = _walks(batch_size, length, k, depth, rng, tops=False)
        counts = np.zeros(batch_size, dtype=np.int64)
        o, kd = opens[:, :n_neg], kinds[:, :n_neg]
        counts[:n_neg] = _corrupt(o, kd, k, rng)
        todo = np.flatnonzero(_in_dyck(o, kd, depth))
        while todo.size:  # still in the language: redraw the whole example
            fresh_o, fresh_k, _ = _walks(todo.size, length, k, depth, rng, tops=False)
            counts[todo] = _corrupt(fresh_o, fresh_k, k, rng)
            o[:, todo], kd[:, todo] = fresh_o, fresh_k
            todo = todo[_in_dyck(fresh_o, fresh_k, depth)]
        rows = np.empty(batch_size, dtype=np.intp)  # output row b is walk rows[b]
        rows[~labels] = np.arange(n_neg)
        rows[labels] = np.arange(n_neg, batch_size)
        answers = np.where(labels, self.token_to_id["yes"], self.token_to_id["no"])
        batch = single_answer_batch(_token_ids(opens, kinds, k, rows), answers)
        batch.meta["corruptions"] = counts[rows]
        return batch

    def solve(self, tokens: Sequence[str]) -> list[str]:
        member = is_dyck(tokens, self.params["types"], self.params["depth"])
        return ["yes" if member else "no"]


class DyckNext(_DyckBase):
    """Next-closer prediction over Dyck-(k, D): the stack top after every token."""

    name = "dyck_next"
    summary = "read a Dyck-(k, D) string; after each token output the closer the stack needs"
    source = "H20 (RNN Θ(D log k) memory, upper + lower); Y21 (2-layer Transformer)"

    def _build_vocab(self) -> Sequence[str]:
        return [*self._brackets(), EMPTY]

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        k, depth = self.params["types"], self.params["depth"]
        opens, kinds, tops = _walks(batch_size, length, k, depth, rng, tops=True)
        assert tops is not None
        small = tops.astype(_int_dtype(2 * k + 2))
        small *= 2
        small += 2
        small[tops < 0] = self.token_to_id[EMPTY]
        lengths = np.full(batch_size, length, dtype=np.int64)
        # every position is supervised, so the prompt a model reads before its first output
        # is one token (the contract: first supervised position >= prompt length - 1)
        prompt = np.ones(batch_size, dtype=np.int64)
        inputs = _token_ids(opens, kinds, k)
        return Batch(inputs, small.T.astype(np.int64), lengths, prompt)

    def solve(self, tokens: Sequence[str]) -> list[str]:
        if not is_dyck(tokens, self.params["types"], self.params["depth"]):
            raise UserError(
                f"dyck_next: the input must be a string of Dyck-({self.params['types']}, "
                f"{self.params['depth']})"
            )
        return stack_tops(tokens)
