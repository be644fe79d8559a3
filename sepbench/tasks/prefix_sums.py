"""prefix_sums — running parity of a bit string (SC21 / BA22, "deep thinking").

Input ``x1 … xN`` of i.i.d. uniform bits (tokens ``0``, ``1``); the target at position t is
(x1 + … + xt) mod 2, so every position is supervised (causal: the answer at t depends on the
first t bits only) and ``prompt_lengths`` = 1. With uniform bits every prefix parity is itself
uniform, so no balancing is needed. N = number of bits; token length N.

Example: ``1 0 1 1 0 0 1 0`` → targets ``1 1 0 1 1 1 0 0``.

SC21/BA22 train non-causal recurrent nets on 10,000 strings per n (distinct for n < 24) and
count a row correct only if all N outputs are; at N ≤ 16 a training set sees essentially all
2^N strings, so in-distribution accuracy measures fit only — extrapolation is the question.

Generation draws eight bits per random byte and takes a cumulative XOR; the reference solver
is a plain running XOR over the tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import Batch, Task, check_int_length
from sepbench.tasks.dyck import random_bits

BITS = ("0", "1")
BIT0 = 1  # id of "0"; "1" is 2


class PrefixSums(Task):
    """The parity of every prefix of an N-bit string."""

    name = "prefix_sums"
    summary = "read N bits; after each bit output the parity of the bits so far"
    source = "SC21 / BA22 (deep-thinking recurrent nets): extrapolation with more iterations"
    length_meaning = "bits in the string (token length N, every position supervised)"
    params_spec = ()
    test_lengths = (1, 24)

    def _build_vocab(self) -> Sequence[str]:
        return [self.pad_token, *BITS]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "bits")

    def max_tokens(self, length: int) -> int:
        return length

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        bits = random_bits(rng, (batch_size, length)).view(np.uint8)
        parity = np.bitwise_xor.accumulate(bits, axis=1)
        inputs = bits.astype(np.int64)
        inputs += BIT0
        targets = parity.astype(np.int64)
        targets += BIT0
        lengths = np.full(batch_size, length, dtype=np.int64)
        prompt = np.ones(batch_size, dtype=np.int64)
        return Batch(inputs, targets, lengths, prompt)

    def solve(self, tokens: Sequence[str]) -> list[str]:
        out, parity = [], 0
        for tok in tokens:
            if tok not in BITS:
                raise UserError(f"prefix_sums: expected bits '0'/'1', got {tok!r}")
            parity ^= tok == "1"
            out.append(BITS[parity])
        return out
