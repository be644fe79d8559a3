"""passkey — passkey retrieval in a long context (SM24, "Stuffed Mamba", Chen et al. 2024).

A row of N tokens (N = the whole row: context, query and answer) hides a key of d digits in a
context of filler tokens; after the query ``[Q]`` the model must reproduce the key::

    positions 0 … N−d−2      filler, with the key block ``[KEY] k1 … kd`` written over d + 1 of
                             them starting at p = round(depth · (N − 2d − 2))
    position  N−d−1          ``[Q]``
    positions N−d … N−1      ``k1 … kd`` (the answer, teacher forced)

depth 0 puts the block at the start, depth 1 ends it just before ``[Q]``. N ≥ 2d + 3, so at
least one filler token remains. Fillers ``f0 … f{k−1}``: in ``pattern`` mode the token at
position t is ``f{t mod k}`` — the pattern resumes in phase after the block, as SM24 replaces
one block of a repeated sentence — and in ``random`` mode they are i.i.d. uniform. Key digits
are i.i.d. uniform, leading zeros allowed (SM24's keys are 00000–99999).

Targets: ``[Q]`` → k1 and k_i → k_{i+1}; the last position is IGNORE; ``prompt_lengths`` =
N − d (greedy decoding of d tokens starts after ``[Q]``).

Balancing: with ``depth = uniform``, row i of a batch of B gets depth (π_i + u_i)/B with π a
uniformly random permutation of 0 … B−1 and u_i uniform in [0, 1): each of the B equal depth
bins [j/B, (j+1)/B) holds exactly one row, in random order. ``meta``: ``depth`` (float [B], the
row's depth) and ``key_pos`` (int [B], p).

Decisions where tasks-wave2.md leaves a choice:

* "round" is round-half-up, p = ⌊depth · (N − 2d − 2) + 1/2⌋, not Python's/numpy's
  round-half-to-even: a tie (depth 0.5 at an odd span) then always moves the block towards
  the query, the same way at every span, instead of alternating with the parity of the floor.
* ``depth`` is the one parameter that takes a word *or* a number: ``uniform`` or any number in
  [0, 1] (also as a string, from the CLI).

The reference solver does not use positions: it finds the single ``[KEY]`` and returns the d
tokens after it.
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
    round_half_up,
)

UNIFORM = "uniform"
KEY, QUERY = "[KEY]", "[Q]"
DIGITS = tuple(str(i) for i in range(10))
MAX_DIGITS, MAX_FILLER = 16, 64


def _int_in(name: str, default: int, doc: str, top: int, examples: tuple[int, ...]) -> Param:
    """An integer parameter in 1 … ``top``."""
    return Param(
        name,
        int,
        default,
        doc,
        check=lambda v: 1 <= v <= top,
        rule=f"an integer in 1..{top}",
        examples=examples,
    )


def uniform_depths(batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Depths (π_i + u_i)/B: exactly one row in each of the B equal bins of [0, 1)."""
    return (rng.permutation(batch_size) + rng.random(batch_size)) / batch_size


class Passkey(Task):
    """Passkey retrieval: find the d-digit key hidden in N tokens of filler (SM24)."""

    name = "passkey"
    summary = "a d-digit key hidden at a chosen depth in filler text; after [Q], repeat the key"
    source = "SM24 (Stuffed Mamba, Chen et al. 2024): state capacity and collapse"
    length_meaning = "total token length (context, [Q] and the d answer digits); N >= 2d + 3"
    params_spec = (
        _int_in(
            "digits", 5, "key length d (digits 0-9, leading zeros allowed)", MAX_DIGITS, (1, 3, 16)
        ),
        _int_in("filler", 4, "number of filler tokens k (f0 … f{k-1})", MAX_FILLER, (1, 3, 64)),
        Param(
            "filler_mode",
            str,
            "pattern",
            "pattern: token t is f{t mod k}, in phase after the key; random: i.i.d. uniform",
            choices=("pattern", "random"),
            examples=("random",),
        ),
        Param(
            "depth",
            float,
            UNIFORM,
            "where the key block starts: p = round(depth·(N − 2d − 2)); uniform: one row per "
            "equal depth bin of the batch",
            check=lambda v: 0.0 <= v <= 1.0,
            rule="a number in [0, 1]",
            words=(UNIFORM,),
            examples=(0.0, 0.5, 1.0),
        ),
    )
    test_lengths = (5, 48)

    def _build_vocab(self) -> Sequence[str]:
        k = self.params["filler"]
        return [self.pad_token, *(f"f{i}" for i in range(k)), *DIGITS, KEY, QUERY]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "tokens in the row")
        d = self.params["digits"]
        if length < 2 * d + 3:
            raise UserError(
                f"task '{self.name}': length {length} is shorter than the key needs: with "
                f"digits={d} a row holds the key block, at least one filler token, [Q] and the "
                f"answer, so length must be >= 2·digits + 3 = {2 * d + 3}"
            )

    def max_tokens(self, length: int) -> int:
        return length

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        d, k = self.params["digits"], self.params["filler"]
        filler0, digit0 = 1, 1 + k  # ids of f0 and of the digit 0
        key_id, query_id = digit0 + 10, digit0 + 11
        context = length - d - 1  # positions 0 … N−d−2
        depth_param = self.params["depth"]
        if depth_param == UNIFORM:
            depth = uniform_depths(batch_size, rng)
        else:
            depth = np.full(batch_size, float(depth_param))
        key_pos = round_half_up(depth * (length - 2 * d - 2))
        key = rng.integers(digit0, digit0 + 10, size=(batch_size, d), dtype=np.int64)

        inputs = np.empty((batch_size, length), dtype=np.int64)
        if self.params["filler_mode"] == "pattern":
            inputs[:, :context] = np.arange(context) % k + filler0
        else:
            inputs[:, :context] = rng.integers(
                filler0, filler0 + k, size=(batch_size, context), dtype=np.int64
            )
        block = key_pos[:, None] + np.arange(d + 1)
        rows = np.arange(batch_size)[:, None]
        inputs[rows, block[:, :1]] = key_id
        inputs[rows, block[:, 1:]] = key
        inputs[:, context] = query_id
        inputs[:, context + 1 :] = key

        targets = ignore_targets((batch_size, length))
        targets[:, context : length - 1] = key
        lengths = np.full(batch_size, length, dtype=np.int64)
        prompt = np.full(batch_size, length - d, dtype=np.int64)
        return Batch(inputs, targets, lengths, prompt, {"depth": depth, "key_pos": key_pos})

    @property
    def answer_is_generated(self) -> bool:
        """The key is written digit by digit after [Q]: judged by generation."""
        return True

    def solve(self, tokens: Sequence[str]) -> list[str]:
        tokens = list(tokens)
        for marker in (KEY, QUERY):
            found = tokens.count(marker)
            if found != 1:
                raise UserError(f"passkey: expected exactly one {marker} in the row, found {found}")
        at = tokens.index(KEY)
        if tokens.index(QUERY) < at:
            raise UserError("passkey: [Q] comes before [KEY]")
        d = self.params["digits"]
        key = tokens[at + 1 : at + 1 + d]
        if len(key) != d or not all(tok in DIGITS for tok in key):
            raise UserError(f"passkey: [KEY] must be followed by {d} digits, got {key}")
        return key
