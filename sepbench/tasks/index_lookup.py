"""index_lookup — B24 Thm 1 (1-layer Transformer, width O(log N)) / Thm 3 (RNN needs m·p ≥ N).

Input ``s{x1} … s{xN} @{p}`` with symbols x_i uniform over the alphabet and p uniform in 1..N;
the answer at the last position is ``s{x_p}``. N = number of symbols; token length N + 1.
Position tokens ``@1 … @max_length`` make the vocabulary independent of N, so one model can be
evaluated beyond its training length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    Batch,
    Task,
    check_int_length,
    check_max_length,
    int_param,
    single_answer_batch,
)


class IndexLookup(Task):
    name = "index_lookup"
    summary = "read N symbols, then a position p; output the p-th symbol"
    source = "B24 Thm 1 (1-layer TF upper bound), Thm 3 (RNN lower bound); W24-R"
    length_meaning = "symbols before the query (token length N + 1)"
    params_spec = (
        int_param("alphabet", 4, "alphabet size k (symbols s0 … s{k-1})", 2, (2, 3, 4, 7)),
        int_param("max_length", 1024, "largest N this vocabulary supports", 1, (16, 40)),
    )
    test_lengths = (1, 16)

    def _build_vocab(self) -> Sequence[str]:
        k, m = self.params["alphabet"], self.params["max_length"]
        return [self.pad_token, *(f"s{i}" for i in range(k)), *(f"@{p}" for p in range(1, m + 1))]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "symbols")
        check_max_length(self.name, length, self.params["max_length"])

    def max_tokens(self, length: int) -> int:
        return length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        k = self.params["alphabet"]
        sym0 = 1  # id of s0
        at1 = 1 + k  # id of @1
        inputs = np.empty((batch_size, length + 1), dtype=np.int64)
        inputs[:, :length] = rng.integers(sym0, sym0 + k, size=(batch_size, length))
        pos = rng.integers(0, length, size=batch_size)
        inputs[:, length] = at1 + pos
        answers = inputs[np.arange(batch_size), pos]
        return single_answer_batch(inputs, answers)

    def solve(self, tokens: Sequence[str]) -> list[str]:
        *symbols, query = tokens
        if not query.startswith("@"):
            raise UserError(f"index_lookup: last token must be a position @p, got {query!r}")
        return [symbols[int(query[1:]) - 1]]
