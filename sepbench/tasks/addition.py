"""addition — multi-digit addition with reversed numbers and index hints (MC24, Abacus).

N = digits per operand. Both operands have exactly N digits, the leading one non-zero unless
N = 1; the sum is written with exactly N + 1 digits (its top digit may be 0), so a row has
T = 3N + 3 tokens (6N + 4 with index hints). Layout, with index 1 = units:

* ``lsb`` (default, MC24's reversed numbers): ``a1 … aN + b1 … bN = c1 … c{N+1}``;
* ``msb``: every number reversed, ``aN … a1 + bN … b1 = c{N+1} … c1``;
* ``index_hints``: each digit is preceded by ``i{j}``, j its significance, so the j-th digits
  of a, b and the sum share a hint; the answer's hints are part of the answer.

Example (N = 3, 472 + 389 = 861): ``lsb`` ``2 7 4 + 9 8 3 = 1 6 8 0``; ``msb``
``4 7 2 + 3 8 9 = 0 8 6 1``; hints (``lsb``) ``i1 2 i2 7 i3 4 + i1 9 i2 8 i3 3 = i1 1 i2 6 i3 8
i4 0``.

Targets: teacher forcing over the answer — the token at ``=`` predicts the first answer token
and so on; the last position is IGNORE; ``prompt_lengths`` ends at ``=``.

``meta``:

* ``digit_pos`` [B, T] — each digit's significance j (0 on ``+``, ``=`` and hint tokens). In
  ``lsb`` order without hints it equals MC24's "index within the run of digits", which an
  Abacus embedding computes from the tokens alone; in ``msb`` order the two differ (why MC24
  reverses numbers). Every row of a batch has the same layout (rows are copies of one).
* ``carry_chain`` [B] — the longest run of a carry-generating digit pair (a + b ≥ 10) followed
  by propagating pairs (a + b = 9): the longest dependency of a sum digit on a lower one
  (0 when no pair generates a carry).
* ``long_carry`` [B] (bool) — the rows given a forced long chain (below).

Balancing: uniform digits make carry chains short (the longest is ≈ log10 N). With
``long_carries`` = f, exactly round(f·B) rows, a uniformly random subset, carry a chain of
length ≥ L = ⌈N/2⌉: at a start s uniform among the N − L + 1 where it fits, the pair at s is
uniform over the 45 pairs with a + b ≥ 10, and the L − 1 pairs above it are uniform over the
pairs with a + b = 9 (over 1 … 8 for a at the leading position, which must stay non-zero).
The other rows are uniform and may carry a long chain by chance (often, at small N): "exactly"
counts the forced rows, which ``meta["long_carry"]`` marks. "round" is round-half-up, as in
``passkey``.

Generation is loop-free over digits: a carry enters position i + 1 iff the nearest position
≤ i whose pair does not propagate (a + b ≠ 9) generates (a + b ≥ 10) — one running maximum
over the row gives every carry and every chain length at once. The reference solver parses
both operands into Python ints, adds them and formats the sum; it has no carry loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    Batch,
    Param,
    Task,
    check_int_length,
    check_max_length,
    ignore_targets,
    int_param,
    round_half_up,
)

DIGITS = tuple(str(i) for i in range(10))
PLUS, EQUALS = "+", "="

# ids: <pad> 0, digits 1 … 10, + 11, = 12, i{j} 12 + j
DIGIT0, PLUS_ID, EQUALS_ID, HINT0 = 1, 11, 12, 12

_GEN_A, _GEN_B = (
    np.array(side, dtype=np.int64)
    for side in zip(*[(a, b) for a in range(10) for b in range(10) if a + b >= 10], strict=True)
)
"""The 45 carry-generating digit pairs (a + b ≥ 10); all have a, b ≥ 1."""


def _unit_fraction(v: float) -> bool:
    return 0.0 <= v <= 1.0


@dataclass(frozen=True)
class Layout:
    """Where everything sits in a row of the given (N, order, hints): columns in significance
    order (index 0 = units) for each number's digits, and one template row."""

    a_cols: np.ndarray
    b_cols: np.ndarray
    c_cols: np.ndarray
    equals: int
    template: np.ndarray  # token ids of '+', '=' and hints; digits are filled per row
    digit_pos: np.ndarray  # significance of each digit column, 0 elsewhere


def layout(n: int, lsb: bool, hints: bool) -> Layout:
    """The row layout at N = ``n`` digits per operand: ``a + b = c`` with c of n + 1 digits,
    each number units first (``lsb``) or reversed, each digit after its hint ``i{j}``."""
    width = 2 if hints else 1  # columns per digit
    template = np.zeros(3 * n + 3 + (3 * n + 1 if hints else 0), dtype=np.int64)
    digit_pos = np.zeros_like(template)

    def number(start: int, count: int) -> np.ndarray:
        sig = np.arange(1, count + 1)
        slot = sig - 1 if lsb else count - sig
        cols = start + width * slot + width - 1
        digit_pos[cols] = sig
        if hints:
            template[cols - 1] = HINT0 + sig
        return cols

    a_cols = number(0, n)
    plus = width * n
    b_cols = number(plus + 1, n)
    equals = plus + 1 + width * n
    c_cols = number(equals + 1, n + 1)
    template[plus], template[equals] = PLUS_ID, EQUALS_ID
    return Layout(a_cols, b_cols, c_cols, equals, template, digit_pos)


def carries(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(carry_out, chain)`` for [B, N] digit arrays in significance order.

    ``carry_out[:, i]``: whether a carry leaves position i; ``chain[:, i]``: the length of the
    generate-then-propagate run ending at i (0 if none). The nearest non-propagating position
    j ≤ i decides both: the carry leaves i iff j generates, and then the run is i − j + 1.
    """
    total = a + b
    n = total.shape[1]
    cols = np.arange(n)
    last = np.maximum.accumulate(np.where(total != 9, cols, -1), axis=1)
    gen_at_last = np.take_along_axis(total, np.maximum(last, 0), axis=1) >= 10
    carry_out = gen_at_last & (last >= 0)
    chain = np.where(carry_out, cols - last + 1, 0)
    return carry_out, chain


class Addition(Task):
    """a + b for two N-digit operands, answer written digit by digit (MC24's format)."""

    name = "addition"
    summary = "add two N-digit numbers (reversed by default, optional index hints)"
    source = "MC24 (Abacus embeddings, McLeish et al. 2024): length generalisation of addition"
    length_meaning = "digits per operand (token length 3N + 3, or 6N + 4 with index hints)"
    params_spec = (
        Param(
            "order",
            str,
            "lsb",
            "lsb: every number written units first (MC24); msb: the usual order",
            choices=("lsb", "msb"),
            examples=("msb",),
        ),
        Param(
            "index_hints",
            bool,
            False,
            "precede each digit by i{j}, j its significance (1 = units)",
            examples=(True,),
        ),
        Param(
            "long_carries",
            float,
            0.0,
            "fraction of rows (exactly round(f·B)) forced to carry a chain of length >= ⌈N/2⌉",
            check=_unit_fraction,
            rule="a number in [0, 1]",
            examples=(0.5, 1.0),
        ),
        int_param(
            "max_length", 64, "largest N with index hints (hints i1 … i{max_length+1})", 1, (8, 40)
        ),
    )
    test_lengths = (1, 12)

    def _build_vocab(self) -> Sequence[str]:
        hints = []
        if self.params["index_hints"]:
            hints = [f"i{j}" for j in range(1, self.params["max_length"] + 2)]
        return [self.pad_token, *DIGITS, PLUS, EQUALS, *hints]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "digits per operand")
        if self.params["index_hints"]:
            check_max_length(self.name, length, self.params["max_length"])

    def max_tokens(self, length: int) -> int:
        return 6 * length + 4 if self.params["index_hints"] else 3 * length + 3

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        n = length
        a = rng.integers(0, 10, size=(batch_size, n), dtype=np.int64)
        b = rng.integers(0, 10, size=(batch_size, n), dtype=np.int64)
        if n > 1:  # leading digits 1 … 9
            a[:, -1] = rng.integers(1, 10, size=batch_size, dtype=np.int64)
            b[:, -1] = rng.integers(1, 10, size=batch_size, dtype=np.int64)
        forced = np.zeros(batch_size, dtype=bool)
        count = int(round_half_up(self.params["long_carries"] * batch_size))
        if count:
            forced[rng.permutation(batch_size)[:count]] = True
            _force_chains(a, b, np.flatnonzero(forced), rng)
        carry_out, chain = carries(a, b)
        c = np.empty((batch_size, n + 1), dtype=np.int64)
        c[:, :n] = a + b
        c[:, 1:n] += carry_out[:, :-1]
        c[:, :n] %= 10
        c[:, n] = carry_out[:, -1]

        lay = layout(n, self.params["order"] == "lsb", self.params["index_hints"])
        width = lay.template.size
        inputs = np.empty((batch_size, width), dtype=np.int64)
        inputs[:] = lay.template
        inputs[:, lay.a_cols] = a + DIGIT0
        inputs[:, lay.b_cols] = b + DIGIT0
        inputs[:, lay.c_cols] = c + DIGIT0
        targets = ignore_targets((batch_size, width))
        targets[:, lay.equals : width - 1] = inputs[:, lay.equals + 1 :]
        lengths = np.full(batch_size, width, dtype=np.int64)
        prompt = np.full(batch_size, lay.equals + 1, dtype=np.int64)
        meta = {
            "digit_pos": np.broadcast_to(lay.digit_pos, (batch_size, width)).copy(),
            "carry_chain": chain.max(axis=1),
            "long_carry": forced,
        }
        return Batch(inputs, targets, lengths, prompt, meta)

    @property
    def answer_is_generated(self) -> bool:
        """The sum is written digit by digit after "=": judged by generation."""
        return True

    def solve(self, tokens: Sequence[str]) -> list[str]:
        tokens = list(tokens)
        if tokens.count(PLUS) != 1 or tokens.count(EQUALS) != 1:
            raise UserError("addition: a row needs exactly one '+' and one '='")
        plus, equals = tokens.index(PLUS), tokens.index(EQUALS)
        if plus > equals:
            raise UserError("addition: '+' must come before '='")
        lsb = self.params["order"] == "lsb"
        a, n = _operand(tokens[:plus], lsb)
        b, n_b = _operand(tokens[plus + 1 : equals], lsb)
        if n != n_b:
            raise UserError(f"addition: the operands differ in length ({n} vs {n_b} digits)")
        total = f"{a + b:0{n + 1}d}"  # most significant digit first
        written = total[::-1] if lsb else total
        if not self.params["index_hints"]:
            return list(written)
        sig = range(1, n + 2) if lsb else range(n + 1, 0, -1)
        return [tok for j, digit in zip(sig, written, strict=True) for tok in (f"i{j}", digit)]


def _operand(tokens: Sequence[str], lsb: bool) -> tuple[int, int]:
    """An operand's value and digit count from its tokens (index hints skipped)."""
    digits = "".join(tok for tok in tokens if not tok.startswith("i"))
    if not digits or not digits.isdigit() or not digits.isascii():
        raise UserError(f"addition: an operand must be digits, got {' '.join(tokens)!r}")
    return int(digits[::-1] if lsb else digits), len(digits)


def _force_chains(a: np.ndarray, b: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> None:
    """Give each row of ``rows`` a chain of length ⌈N/2⌉ (the rule of the module docstring)."""
    n = a.shape[1]
    span = math.ceil(n / 2)
    start = rng.integers(0, n - span + 1, size=rows.size)
    pair = rng.integers(0, _GEN_A.size, size=rows.size)
    a[rows, start], b[rows, start] = _GEN_A[pair], _GEN_B[pair]
    if span == 1:
        return
    cols = start[:, None] + np.arange(1, span)
    prop = rng.integers(0, 10, size=cols.shape, dtype=np.int64)
    top = cols == n - 1  # the leading digit: a and 9 − a both in 1 … 8
    prop[top] = rng.integers(1, 9, size=int(top.sum()), dtype=np.int64)
    a[rows[:, None], cols] = prop
    b[rows[:, None], cols] = 9 - prop
