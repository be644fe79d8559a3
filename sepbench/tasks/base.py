"""The task contract: parameters, vocabulary, batches, sampling, decoding, reference solving.

Every task family subclasses :class:`Task`, declares its parameters as :class:`Param` records
(:class:`sepbench.params.Param`, shared with model options and bound parameters),
builds its vocabulary from the validated parameters, and implements two things:

* ``_generate(length, batch_size, rng) -> Batch`` — vectorised numpy generation;
* ``solve(tokens) -> list[str]`` — a reference solver written independently of the generator.

Everything else (validation, seeding, encode/decode, the supervised-target view) lives here once.
numpy only: importing this module never imports torch.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sepbench import coerce
from sepbench.errors import UserError
from sepbench.params import Param as Param  # task modules import both from here
from sepbench.params import int_param as int_param

IGNORE = -100
"""Target id of positions that are not supervised (PyTorch's cross-entropy ignore_index)."""


@dataclass
class Batch:
    """A batch of examples as token ids (numpy int64).

    ``inputs[b, t]`` is the t-th token of row b, right-padded with the task's PAD id;
    ``targets[b, t]`` is the token the model must output after reading ``inputs[b, :t+1]``
    (``IGNORE`` where nothing is supervised); ``lengths[b]`` is the true token length of row b;
    ``prompt_lengths[b]`` is the prefix a model reads before its first output: the first
    supervised position + 1 (= ``lengths`` for single-answer tasks; up to and including the
    first ``[EOS]`` for trace tasks; 1 for tasks supervised at every position). Greedy
    generation starts from ``inputs[b, :prompt_lengths[b]]``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    prompt_lengths: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


class Task(abc.ABC):
    """Base class of every task family (see ../shared/spec/tasks.md for the formats)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    source: ClassVar[str]
    """Where the task comes from: the theory.md source ids and theorem numbers."""
    length_meaning: ClassVar[str]
    """What ``length`` (the problem size N) counts for this task."""
    params_spec: ClassVar[tuple[Param, ...]] = ()
    pad_token: ClassVar[str] = "<pad>"
    binary_answers: ClassVar[tuple[str, str] | None] = None
    """For yes/no tasks, the two answer tokens (positive first); batches are exactly balanced."""
    test_lengths: ClassVar[tuple[int, int]] = (1, 16)
    """An inclusive range of small lengths that property tests draw from (filtered by
    ``check_length``, so e.g. odd lengths of an even-only task are simply skipped)."""

    def __init__(self, **params: Any) -> None:
        spec = {p.name: p for p in self.params_spec}
        unknown = sorted(set(params) - set(spec))
        if unknown:
            allowed = ", ".join(spec) if spec else "none"
            raise UserError(
                f"task '{self.name}': unknown parameter '{unknown[0]}'; allowed: {allowed}"
            )
        self.params: dict[str, Any] = {
            name: p.parse(params[name], f"task '{self.name}'") if name in params else p.default
            for name, p in spec.items()
        }
        self._validate_params()
        self.vocab: tuple[str, ...] = tuple(self._build_vocab())
        if len(set(self.vocab)) != len(self.vocab):
            raise AssertionError(f"task {self.name}: duplicate tokens in vocabulary")
        self.token_to_id: dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        self.pad_id: int = self.token_to_id[self.pad_token]

    # ----------------------------------------------------------------- to implement
    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Cross-parameter checks; raise UserError naming the parameters."""

    @abc.abstractmethod
    def _build_vocab(self) -> Sequence[str]:
        """The vocabulary for the validated parameters; must contain ``pad_token``."""

    @abc.abstractmethod
    def check_length(self, length: int) -> None:
        """Raise UserError if this task cannot be sampled at problem size ``length``."""

    @abc.abstractmethod
    def max_tokens(self, length: int) -> int:
        """The padded token length T of a batch at problem size ``length``."""

    @abc.abstractmethod
    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        """Vectorised generation; ``length`` is already checked."""

    @abc.abstractmethod
    def solve(self, tokens: Sequence[str]) -> list[str]:
        """Reference solver: the supervised outputs, in order, for one decoded input row."""

    # ----------------------------------------------------------------- provided
    def sample(
        self,
        length: int,
        batch_size: int,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> Batch:
        """Draw ``batch_size`` examples at problem size ``length``.

        Give exactly one of ``seed`` (an int: the same seed gives the same bytes) or ``rng``.
        """
        if (seed is None) == (rng is None):
            raise UserError("sample: give exactly one of seed= or rng=")
        if isinstance(length, bool) or not isinstance(length, int | np.integer):
            raise UserError(f"task '{self.name}': length must be an integer, got {length!r}")
        batch_size = coerce.integer("batch_size", batch_size)
        length = int(length)
        self.check_length(length)
        if rng is None:
            rng = np.random.default_rng(coerce.seed(seed))
        batch = self._generate(length, batch_size, rng)
        if self.results_supervised:
            supervise_results(batch, self.token_to_id[self.retrieval_trigger or ""])
        return batch

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Token strings -> int64 ids; an unknown token raises UserError naming it."""
        ids = []
        for tok in tokens:
            try:
                ids.append(self.token_to_id[tok])
            except KeyError:
                raise UserError(f"task '{self.name}': unknown token {tok!r}") from None
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Ids -> token strings, with trailing padding removed."""
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        end = len(arr)
        while end > 0 and arr[end - 1] == self.pad_id:
            end -= 1
        return [self.vocab[i] for i in arr[:end]]

    def supervised(self, batch: Batch, row: int) -> list[str]:
        """The supervised target tokens of one row, in position order."""
        tgt = batch.targets[row]
        return [self.vocab[i] for i in tgt[tgt != IGNORE]]

    def supervised_positions(self, batch: Batch, row: int) -> list[tuple[int, str]]:
        """``(position, token)`` for every supervised position of one row."""
        tgt = batch.targets[row]
        pos = np.flatnonzero(tgt != IGNORE)
        return [(int(t), self.vocab[int(tgt[t])]) for t in pos]

    retrieval_trigger: ClassVar[str | None] = None
    """For tasks with in-context retrieval traces: the token (e.g. ``[ENDSEARCH]``) after which
    the retriever, not the model, writes the next token. None for every other task."""

    results_supervised: bool = False
    """True on the view :meth:`without_retriever` returns: the tokens a retriever would write
    are targets the model must produce."""

    @property
    def answer_is_generated(self) -> bool:
        """Whether the answer is a continuation the model writes after the prompt — a trace and
        its final answer (is_tree with ``cot`` / ``retrieval``) or a multi-token answer
        (passkey, addition) — rather than one token (or one prediction per input position).

        For these tasks success is **exact match of the free-running continuation**: greedy
        decoding from the prompt, each token the model's own (or, for a model with a
        retriever, the retriever's after each ``retrieval_trigger``), compared token for token
        with the reference — the final answer *and* the trace, as W24 scores IsTree
        (:func:`sepbench.training.generate.score_generation`; the trainer's confirmation uses
        it). Default False; tasks whose answer is generated override it.
        """
        return False

    def without_retriever(self) -> Task:
        """This task as a model *without* a retriever meets it.

        The retriever writes the token after each ``retrieval_trigger`` only for models that
        call it (``uses_retrieval``: the ``rag`` family); the task's own targets leave those
        tokens unsupervised (IGNORE) for them. Every other model must produce the retrieval
        results itself: in the returned view (a copy with :attr:`results_supervised` set) the
        target of each trigger position is the token after it, whenever there is one. Tasks
        without a retriever return themselves.
        """
        if self.retrieval_trigger is None or self.results_supervised:
            return self
        view = copy.copy(self)
        view.results_supervised = True
        return view

    def retrieval_result(self, tokens: Sequence[str]) -> str:
        """The retriever's answer for a trace that ends with ``retrieval_trigger``.

        ``tokens`` is everything written so far (prompt and trace). Only tasks that set
        ``retrieval_trigger`` implement it; it searches the context, never the label.
        """
        raise NotImplementedError(f"task '{self.name}' has no retriever")

    def format_row(self, batch: Batch, row: int) -> str:
        """One example as readable text (what `sepbench tasks sample` prints).

        Single-answer tasks: ``input  →  answer``; tasks supervised at several positions: the
        input, then ``position:target`` pairs. Trace tasks override this with a layout of
        their own (e.g. is_tree puts each DFS step on its own line).
        """
        tokens = self.decode(batch.inputs[row])
        sup = self.supervised_positions(batch, row)
        if len(sup) == 1 and sup[0][0] == len(tokens) - 1:
            return " ".join(tokens) + "  →  " + sup[0][1]
        return " ".join(tokens) + "\n  targets: " + " ".join(f"{t}:{tok}" for t, tok in sup)

    def describe(self) -> dict[str, Any]:
        """Plain-data description (for `sepbench tasks show` and docs)."""
        return {
            "name": self.name,
            "summary": self.summary,
            "source": self.source,
            "length": self.length_meaning,
            "params": {
                p.name: {"default": p.default, "allowed": p.allowed(), "doc": p.doc}
                for p in self.params_spec
            },
            "vocab_size": len(self.vocab),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------- shared generation helpers
def balanced_labels(batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean labels, exactly half True (the odd one out drawn at random), in shuffled order."""
    half = batch_size // 2
    extra = int(rng.integers(0, 2)) if batch_size % 2 else 0
    labels = np.zeros(batch_size, dtype=bool)
    labels[: half + extra] = True
    return rng.permutation(labels)


def supervise_results(batch: Batch, trigger: int) -> None:
    """Make the token after every ``trigger`` the target of the trigger's position (in place):
    the retrieval results a model without a retriever must write itself
    (:meth:`Task.without_retriever`). Positions whose next token is beyond the row stay as
    they are."""
    width = batch.inputs.shape[1]
    inside = np.arange(width - 1)[None, :] < (batch.lengths[:, None] - 1)
    at = (batch.inputs[:, :-1] == trigger) & inside
    batch.targets[:, :-1] = np.where(at, batch.inputs[:, 1:], batch.targets[:, :-1])


def ignore_targets(shape: tuple[int, int]) -> np.ndarray:
    """A target array with nothing supervised yet."""
    return np.full(shape, IGNORE, dtype=np.int64)


def single_answer_batch(inputs: np.ndarray, answers: np.ndarray) -> Batch:
    """A fixed-length batch whose only supervised position is the last one."""
    batch_size, width = inputs.shape
    targets = ignore_targets((batch_size, width))
    targets[:, -1] = answers
    lengths = np.full(batch_size, width, dtype=np.int64)
    return Batch(inputs.astype(np.int64, copy=False), targets, lengths, lengths.copy())


def sample_distinct(
    rng: np.random.Generator, batch_size: int, count: int, universe: int | np.ndarray
) -> np.ndarray:
    """``batch_size`` rows of ``count`` distinct integers; row b uniform from ``[0, universe[b])``.

    Each row is a uniformly random *ordered* tuple of distinct values. ``universe`` is an int or
    a per-row int array. Two regimes, both O(batch x count) in memory:

    * dense rows (universe < 2·count): sort ``universe`` uniform keys and keep the first
      ``count`` indices (a random partial permutation); the key array is < 2·count per row;
    * sparse rows: draw with replacement; every entry that repeats the value of an earlier
      entry of its row is redrawn until its value is new to the row (ties among redrawn
      entries go to the earlier position). Every step uses only equality between values,
      positions and fresh uniform draws, so the result is invariant under any relabelling of
      the universe: every ordered tuple of distinct values is equally likely. With
      universe ≥ 2·count a redraw succeeds with probability ≥ 1/2, and only the redrawn entries
      are re-examined (binary search among the row's values), never whole rows.
    """
    univ = np.broadcast_to(np.asarray(universe, dtype=np.int64), (batch_size,))
    if (univ < count).any():
        raise ValueError(f"cannot draw {count} distinct values from {int(univ.min())}")
    out = np.empty((batch_size, count), dtype=np.int64)
    if count == 0:
        return out
    dense = univ < 2 * count
    rows = np.flatnonzero(dense)
    if rows.size:
        width = int(univ[rows].max())
        keys = rng.random((rows.size, width))
        keys[np.arange(width)[None, :] >= univ[rows][:, None]] = 2.0  # outside this row's range
        idx = np.argpartition(keys, count - 1, axis=1)[:, :count]
        order = np.take_along_axis(keys, idx, axis=1).argsort(axis=1)
        out[rows] = np.take_along_axis(idx, order, axis=1)
    rows = np.flatnonzero(~dense)
    if rows.size:
        out[rows] = _distinct_sparse(rng, univ[rows], count)
    return out


def in_sorted(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Elementwise ``needle in haystack`` for a sorted 1-D ``haystack``."""
    if haystack.size == 0:
        return np.zeros(needles.shape, dtype=bool)
    at = np.minimum(np.searchsorted(haystack, needles), haystack.size - 1)
    return np.asarray(haystack[at] == needles)


def _uniform_below(rng: np.random.Generator, high: np.ndarray, width: int) -> np.ndarray:
    """``[len(high), width]`` integers, row b uniform in ``[0, high[b])``.

    numpy's array-bounded ``integers`` is several times slower than a scalar bound, so rows are
    drawn in groups of equal bound (there are few distinct bounds in practice).
    """
    out = np.empty((high.size, width), dtype=np.int64)
    bounds = np.unique(high)
    if bounds.size > 64:
        out[:] = rng.integers(0, high[:, None], size=out.shape, dtype=np.int64)
        return out
    for bound in bounds:
        rows = np.flatnonzero(high == bound)
        out[rows] = rng.integers(0, bound, size=(rows.size, width), dtype=np.int64)
    return out


def _distinct_sparse(rng: np.random.Generator, high: np.ndarray, count: int) -> np.ndarray:
    """The sparse regime of :func:`sample_distinct` (every ``high`` ≥ 2·count)."""
    n = high.size
    span = int(high.max())
    if n > 1 and n * span * count >= 1 << 62:  # keep the int64 codes below from overflowing
        half = n // 2
        return np.concatenate(
            [_distinct_sparse(rng, high[:half], count), _distinct_sparse(rng, high[half:], count)]
        )
    vals = _uniform_below(rng, high, count)
    # sort each row by (value, position): an entry repeating its left neighbour's value repeats
    # an earlier position and is redrawn
    code = np.sort(vals * count + np.arange(count), axis=1)
    srt = code // count
    r, c = np.nonzero(srt[:, 1:] == srt[:, :-1])
    if r.size == 0:
        return vals
    pos = code[r, c + 1] % count
    taken = [(srt + np.arange(n)[:, None] * span).ravel()]  # sorted row * span + value
    while r.size:
        # pending entries in order of (row, new value, position): the first of a tie wins
        key = r * span + rng.integers(0, high[r], dtype=np.int64)
        code = np.sort(key * count + pos)
        key, pos = np.divmod(code, count)
        ok = np.ones(key.size, dtype=bool)
        ok[1:] = key[1:] != key[:-1]
        for values in taken:
            ok &= ~in_sorted(values, key)  # sorted needles: numpy's binary search is fast
        r, new = np.divmod(key, span)
        vals[r[ok], pos[ok]] = new[ok]
        taken.append(key[ok])  # already sorted
        r, pos = r[~ok], pos[~ok]
    return vals


def check_int_length(task: str, length: int, minimum: int, what: str) -> None:
    """The common length check: an integer >= ``minimum`` counting ``what``."""
    if length < minimum:
        raise UserError(
            f"task '{task}': length (the number of {what}) must be >= {minimum}, got {length}"
        )


def check_max_length(task: str, length: int, max_length: int) -> None:
    if length > max_length:
        raise UserError(
            f"task '{task}': length {length} exceeds max_length {max_length} "
            f"(pass --param max_length={length} or larger)"
        )


def round_half_up(x: float | np.ndarray) -> np.ndarray:
    """⌊x + 1/2⌋ as int64: "round" in the wave-2 formats (ties always go up, unlike Python's
    and numpy's round-half-to-even, whose tie direction alternates with the parity)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)
