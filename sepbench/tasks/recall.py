"""Associative recall: single-query (B24 Prop 9, W24-R) and multi-query (Zoology's MQAR).

``associative_recall`` — Input ``k{a1} v{b1} … k{aN} v{bN} k{aj}``: N key/value pairs with keys
distinct within the line (uniform over the ``keys`` key vocabulary), values uniform over the
``values`` value vocabulary (repeats allowed), then one of the N keys again, j uniform. The answer
at the last position is ``v{bj}``. N = number of pairs; token length 2N + 1. Any RNN solving it
needs m·p ≥ N bits of state (B24-P9); a two-layer induction-head Transformer needs O(log N) width.

``mqar`` — the Zoology multi-query associative recall layout (Arora et al. 2023), with N = the
total token length L. See :class:`MQAR` for the rule.

Both draw their distinct keys with :func:`sepbench.tasks.base.sample_distinct`, whose memory
is O(batch x count) whatever the size of the key vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    Batch,
    Param,
    Task,
    check_int_length,
    ignore_targets,
    in_sorted,
    int_param,
    sample_distinct,
    single_answer_batch,
)


class AssociativeRecall(Task):
    """Single-query associative recall (B24 Prop 9; W24's retrieval task).

    ``k{a1} v{b1} … k{aN} v{bN} k{aj}`` → ``v{bj}``: keys distinct within a line and uniform over
    ``k0 … k{keys-1}``; values uniform over ``v0 … v{values-1}`` (values may repeat); the query
    index j uniform in 1..N. N = number of pairs (needs N ≤ ``keys``); token length 2N + 1.
    """

    name = "associative_recall"
    summary = "read N key/value pairs with distinct keys, then a key; output its value"
    source = "B24 Prop 9 (RNN lower bound m·p ≥ N); W24-R; 2-layer induction construction"
    length_meaning = "key/value pairs before the query (token length 2N + 1)"
    params_spec = (
        int_param(
            "keys", 1024, "key vocabulary size (keys k0 … k{keys-1}); must be >= N", 1, (16, 40)
        ),
        int_param("values", 16, "value vocabulary size (values v0 … v{values-1})", 1, (2, 5)),
    )
    test_lengths = (1, 16)

    def _build_vocab(self) -> Sequence[str]:
        nk, nv = self.params["keys"], self.params["values"]
        return [self.pad_token, *(f"k{i}" for i in range(nk)), *(f"v{i}" for i in range(nv))]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "key/value pairs")
        if length > self.params["keys"]:
            raise UserError(
                f"task '{self.name}': length {length} exceeds the key vocabulary "
                f"keys={self.params['keys']} (keys are distinct; pass --param keys={length} "
                "or larger)"
            )

    def max_tokens(self, length: int) -> int:
        return 2 * length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        nk, nv = self.params["keys"], self.params["values"]
        key0, val0 = 1, 1 + nk  # ids of k0 and v0
        keys = sample_distinct(rng, batch_size, length, nk) + key0
        values = rng.integers(val0, val0 + nv, size=(batch_size, length), dtype=np.int64)
        inputs = np.empty((batch_size, 2 * length + 1), dtype=np.int64)
        inputs[:, 0 : 2 * length : 2] = keys
        inputs[:, 1 : 2 * length : 2] = values
        j = rng.integers(0, length, size=batch_size)
        rows = np.arange(batch_size)
        inputs[:, -1] = keys[rows, j]
        return single_answer_batch(inputs, values[rows, j])

    def solve(self, tokens: Sequence[str]) -> list[str]:
        *pairs, query = tokens
        if len(pairs) % 2:
            raise UserError("associative_recall: expected key/value pairs followed by one key")
        table: dict[str, str] = {}
        for key, value in zip(pairs[0::2], pairs[1::2], strict=True):
            if key in table:
                raise UserError(f"associative_recall: key {key!r} occurs twice")
            table[key] = value
        if query not in table:
            raise UserError(f"associative_recall: query {query!r} is not among the keys")
        return [table[query]]


MAX_POWER_A = 10.0
"""Above this, (g + 1)^(1 − power_a) could underflow for long query regions."""


def _power_ok(value: float) -> bool:
    return 0 < value <= MAX_POWER_A


class MQAR(Task):
    """Multi-query associative recall in the Zoology layout (Arora et al. 2023; B24 Thm 8).

    N = the total token length L (``length=256`` is Zoology's ``input_seq_len=256``); P =
    ``pairs``; V = ``vocab``. Token ids are Zoology's: ``_`` = 0, keys ``k{id}`` for ids in
    [1, V/2), values ``v{id}`` for ids in [V/2, V) (V/2 rounded down), plus a padding token at id V
    (batches never contain it: every row has exactly L tokens).

    * Tokens 0 … 2P−1: the pairs ``k v k v …``; the P keys are distinct and uniform over the key
      ids, the P values distinct and uniform over the value ids (as in Zoology).
    * Tokens 2P … L−1: the query region (R = L − 2P slots). Key i (in context order) is queried
      once, at offset 2·g_i of the region, where (g_1, …, g_P) is drawn without replacement
      from 0 … S−1 (S = ⌈R/2⌉ even offsets) with probability ∝ (g + 1)^(power_a − 1), the i-th
      draw going to the i-th key (numpy's ``choice(replace=False, p=…)`` order, as Zoology).
      Generated at once for the whole batch by an exponential race: g's key is E_g / w_g with
      E_g ~ Exp(1) i.i.d.; the P smallest keys, in increasing order, are exactly the successive
      draws without replacement.
    * The target at a key's query position is its value; every other position is unsupervised.
    * Unused region slots hold ``_`` (id 0), or, with ``random_non_queries``, a token uniform over
      the ids 0 … V−1 other than this row's P keys — so each key still appears exactly once in
      the region and a query is recognisable (Zoology draws from all of 0 … V−1, so a filler may
      repeat a key there; that detail is closed here).

    Valid iff S ≥ P, i.e. L ≥ 4P − 1 (for even L this is Zoology's 4P ≤ L), and V/2 − 1 ≥ P.
    ``prompt_lengths`` is the first query position + 1 (the prefix read before the first output).
    """

    name = "mqar"
    summary = "P key/value pairs, then the keys again at power-law offsets; recall each value"
    source = "B24 Thm 8 (RNN lower bound m·p ≥ N/2); Zoology MQAR (Arora et al. 2023)"
    length_meaning = "total token length L (P pairs, then L − 2P query-region slots)"
    params_spec = (
        int_param("pairs", 8, "number of key/value pairs P (each key queried once)", 1, (1, 3, 12)),
        int_param(
            "vocab", 8192, "vocabulary size V (keys [1, V/2), values [V/2, V))", 4, (40, 101)
        ),
        Param(
            "power_a",
            float,
            0.01,
            "query offset g is drawn with probability ∝ (g + 1)^(power_a − 1)",
            check=_power_ok,
            rule=f"a number in (0, {MAX_POWER_A:g}]",
            examples=(0.5, 1.0, 3.0),
        ),
        Param(
            "random_non_queries",
            bool,
            True,
            "fill unused query-region slots with random tokens (else `_`)",
            examples=(False,),
        ),
    )
    test_lengths = (4, 64)

    def _validate_params(self) -> None:
        pairs, vocab = self.params["pairs"], self.params["vocab"]
        if vocab // 2 - 1 < pairs:
            raise UserError(
                f"task '{self.name}': pairs={pairs} distinct keys need vocab >= "
                f"{2 * pairs + 2} (keys are the ids 1 … vocab/2 − 1), got vocab={vocab}"
            )

    def _build_vocab(self) -> Sequence[str]:
        vocab = self.params["vocab"]
        half = vocab // 2
        return [
            "_",
            *(f"k{i}" for i in range(1, half)),
            *(f"v{i}" for i in range(half, vocab)),
            self.pad_token,
        ]

    def check_length(self, length: int) -> None:
        pairs = self.params["pairs"]
        if length < 4 * pairs - 1:
            raise UserError(
                f"task '{self.name}': length (the total token length L) must be >= "
                f"4·pairs − 1 = {4 * pairs - 1} so that the {pairs} queries fit at even offsets "
                f"of the query region, got {length}"
            )

    def max_tokens(self, length: int) -> int:
        return length

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        pairs, vocab = self.params["pairs"], self.params["vocab"]
        half = vocab // 2
        ctx = 2 * pairs
        region = length - ctx
        slots = (region + 1) // 2
        keys = sample_distinct(rng, batch_size, pairs, half - 1) + 1
        values = sample_distinct(rng, batch_size, pairs, vocab - half) + half

        # Exponential race: the P smallest E_g / w_g, in order, are P successive weighted draws.
        scale = np.arange(1, slots + 1, dtype=np.float64) ** (1.0 - self.params["power_a"])
        race = rng.standard_exponential((batch_size, slots))
        race *= scale
        gaps = _smallest_in_order(race, pairs)
        qpos = ctx + 2 * gaps  # query position of key i, in context order

        if self.params["random_non_queries"]:
            # the whole array is drawn at once (cheaper than a copy); the context is overwritten
            inputs = rng.integers(0, vocab, size=(batch_size, length), dtype=np.int64)
            _redraw_keys(rng, inputs, ctx, keys, vocab)
        else:
            inputs = np.zeros((batch_size, length), dtype=np.int64)
        inputs[:, 0:ctx:2] = keys
        inputs[:, 1:ctx:2] = values
        rows = np.arange(batch_size)[:, None]
        inputs[rows, qpos] = keys
        targets = ignore_targets((batch_size, length))
        targets[rows, qpos] = values
        lengths = np.full(batch_size, length, dtype=np.int64)
        prompts = qpos.min(axis=1) + 1  # the prefix read before the first supervised output
        return Batch(inputs, targets, lengths, prompts)

    def solve(self, tokens: Sequence[str]) -> list[str]:
        ctx = 2 * self.params["pairs"]
        table = dict(zip(tokens[0:ctx:2], tokens[1:ctx:2], strict=True))
        if len(table) != ctx // 2:
            raise UserError("mqar: the keys of the context are not distinct")
        return [table[tok] for tok in tokens[ctx:] if tok in table]

    def format_row(self, batch: Batch, row: int) -> str:
        """The context, the query region, and ``position:value`` for each supervised query."""
        tokens = self.decode(batch.inputs[row])
        ctx = 2 * self.params["pairs"]
        sup = self.supervised_positions(batch, row)
        return (
            " ".join(tokens[:ctx])
            + "\n  queries: "
            + " ".join(tokens[ctx:])
            + "\n  targets: "
            + " ".join(f"{t}:{tok}" for t, tok in sup)
        )


def _smallest_in_order(race: np.ndarray, count: int) -> np.ndarray:
    """Column indices of the ``count`` smallest entries of each row, smallest first.

    The race values are positive floats, whose bit patterns order like int64; the low bits of
    each pattern are replaced by the column index, so one plain ``partition`` + ``sort`` of
    int64 (much faster than ``argpartition``) yields the indices. Ties below the kept
    precision (52 − log2(columns) mantissa bits) go to the smaller index.
    """
    idx_bits = max(1, int(race.shape[1] - 1).bit_length())
    low = np.int64((1 << idx_bits) - 1)
    packed = race.view(np.int64)  # ``race`` is consumed: packed in place
    packed &= ~low
    packed |= np.arange(race.shape[1], dtype=np.int64)
    if count < race.shape[1]:
        packed = np.partition(packed, count - 1, axis=1)[:, :count]
    return np.sort(packed, axis=1) & low


def _redraw_keys(
    rng: np.random.Generator, inputs: np.ndarray, start: int, keys: np.ndarray, vocab: int
) -> None:
    """Redraw, in place, every entry of ``inputs[b, start:]`` equal to one of ``keys[b]``.

    Those entries are uniform over ``[0, vocab)``; afterwards they are uniform over ``[0, vocab)``
    minus the row's keys (rejection). Membership is tested without any per-row
    vocabulary-sized table: a per-row Bloom table of m = 64·P bits (at most 4096; O(batch x P))
    rules out most entries at once, and the few candidates (≈ P/m of them) are checked exactly
    by binary search among the row-offset sorted keys. ``inputs`` must be C-contiguous (it is
    scanned whole, which is cheaper than a strided scan of the region).
    """
    batch_size, pairs = keys.shape
    width = inputs.shape[1]
    flat = inputs.ravel()
    assert np.shares_memory(flat, inputs), "inputs must be C-contiguous"
    bits = 1 << min(12, max(6, int(64 * pairs - 1).bit_length()))
    mask = bits - 1
    rows = np.arange(batch_size)
    bloom = np.zeros(batch_size * bits, dtype=bool)
    hashed = keys & mask
    hashed += (rows * bits)[:, None]
    bloom[hashed] = True
    sorted_keys = (np.sort(keys, axis=1) + rows[:, None] * vocab).ravel()
    slot = inputs & mask
    slot += (rows * bits)[:, None]
    cand = np.flatnonzero(bloom[slot])
    cand = cand[cand % width >= start]
    while cand.size:
        cand = cand[in_sorted(sorted_keys, (cand // width) * vocab + flat[cand])]
        flat[cand] = rng.integers(0, vocab, size=cand.size, dtype=np.int64)
