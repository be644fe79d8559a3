"""Online data: fresh task samples every step, cheap enough to stay off the critical path.

Nothing is written to disk. A :class:`ChunkedSampler` draws from one numpy Generator (see
:mod:`sepbench.training.config` for how generators derive from the trial seed) ``steps`` batches
at a time — one ``task.sample`` call of ``steps * batch_size`` rows, sliced into consecutive
batches — because the vectorised generators cost far less per row in large calls (measured,
64-row batches: dyck N=32 3.8 → 0.3 ms, mqar 2.8 → 0.5 ms, is_tree retrieval 7.7 → 3.7 ms).
Every row is still a fresh sample, used once. The chunk size is a function of the batch size
and the task's token length only (:func:`chunk_steps`), so the data of a trial depend on
(task, length, batch size, seed) alone, and an ensemble member sees exactly ``fit``'s batches.

With a length mixture (``Budget.min_length`` / ``max_length``) every training batch has one
length, drawn uniformly from the task's valid lengths in the range (:func:`training_lengths`);
a chunk first draws its batches' lengths, then one ``task.sample`` call per distinct length.
Held-out rows "in distribution" (``Budget.eval_lengths = "train"``) each get their own length
(:func:`sample_rows`), right-padded to the longest.

Batches become tensors with ``torch.from_numpy`` (zero-copy) plus the flat indices of the
supervised positions, so the loss reads only those rows of the logits (a single-answer task
supervises one position in T). Optionally (:class:`Prefetcher`) the next batches are produced by
a background thread while the current step runs; one thread draws in order, so the bytes are the
same with or without it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

from sepbench.errors import UserError
from sepbench.tasks import IGNORE, Task

T = TypeVar("T")


@dataclass
class Prepared:
    """One training batch on its device.

    ``inputs`` is [B, T] (single model) or [E, B, T] (ensemble); ``sel`` are the flat indices
    (into ``inputs.reshape(-1)``) of the supervised positions and ``sel_targets`` their targets;
    for an ensemble ``member`` gives the member of each selected position and ``counts`` the
    number of supervised positions per member.
    """

    inputs: torch.Tensor
    sel: torch.Tensor
    sel_targets: torch.Tensor
    member: torch.Tensor | None = None
    counts: torch.Tensor | None = None


def pad_to(
    inputs: np.ndarray, targets: np.ndarray, width: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` / ``targets`` right-padded (PAD / IGNORE) to ``width`` tokens."""
    extra = width - inputs.shape[1]
    if extra > 0:
        inputs = np.pad(inputs, ((0, 0), (0, extra)), constant_values=pad_id)
        targets = np.pad(targets, ((0, 0), (0, extra)), constant_values=IGNORE)
    return inputs, targets


def stack_pairs(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Member ``(inputs, targets)`` pairs -> arrays [E, B, T] (padded to a common T)."""
    width = max(x.shape[1] for x, _ in pairs)
    padded = [pad_to(x, y, width, pad_id) for x, y in pairs]
    return np.stack([p[0] for p in padded]), np.stack([p[1] for p in padded])


def prepare(
    inputs: np.ndarray, targets: np.ndarray, device: torch.device, ensemble: bool
) -> Prepared:
    """Numpy arrays -> :class:`Prepared` on ``device`` (pinned + non-blocking for CUDA)."""
    flat = targets.reshape(-1)
    sel = np.flatnonzero(flat != IGNORE)
    arrays = [np.ascontiguousarray(inputs), sel, np.ascontiguousarray(flat[sel])]
    if ensemble:
        per_member = targets.shape[1] * targets.shape[2]
        member = sel // per_member
        counts = np.bincount(member, minlength=targets.shape[0]).astype(np.float32)
        arrays += [member, counts]
    tensors = [torch.from_numpy(a) for a in arrays]
    if device.type != "cpu":
        tensors = [t.pin_memory().to(device, non_blocking=True) for t in tensors]
    if ensemble:
        return Prepared(*tensors)
    return Prepared(tensors[0], tensors[1], tensors[2])


class Prefetcher(Generic[T]):
    """Calls ``make()`` ahead of time in one background thread (``depth`` items buffered).

    ``enabled=False`` calls ``make()`` inline instead; either way the items come in the order
    ``make`` produced them. Errors in the thread are re-raised by :meth:`next`.
    """

    def __init__(self, make: Callable[[], T], enabled: bool = True, depth: int = 2) -> None:
        self._make = make
        self._enabled = enabled
        self._queue: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if enabled:
            self._thread = threading.Thread(target=self._run, name="sepbench-data", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: tuple[bool, object] = (True, self._make())
            except BaseException as exc:  # forwarded to the consumer
                item = (False, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not item[0]:
                return

    def next(self) -> T:
        if not self._enabled:
            return self._make()
        ok, value = self._queue.get()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CHUNK_ROWS = 2048
"""Rows drawn per ``task.sample`` call (rounded to whole batches) ..."""
CHUNK_TOKENS = 2**21
"""... unless that exceeds this many tokens per array (long trace tasks)."""


def chunk_steps(batch_size: int, tokens: int) -> int:
    """Batches per ``task.sample`` call for a batch size and a padded token length."""
    rows = min(CHUNK_ROWS, CHUNK_TOKENS // max(1, tokens))
    return max(1, rows // batch_size)


def training_lengths(task: Task, lo: int, hi: int) -> list[int]:
    """The lengths in ``[lo, hi]`` at which ``task`` can be sampled (``task.check_length``), in
    increasing order. A UserError when the range is empty or starts below 1, or when the task
    refuses ``hi`` itself (its own message: e.g. beyond its ``max_length``) — lengths inside
    the range that the task refuses (odd ones for Dyck) are left out."""
    if lo < 1 or lo > hi:
        raise UserError(f"training lengths [{lo}, {hi}]: need 1 <= shortest <= longest")
    task.check_length(hi)
    valid = []
    for n in range(lo, hi + 1):
        try:
            task.check_length(n)
        except ValueError:
            continue
        valid.append(n)
    if not valid:
        raise UserError(f"task '{task.name}' accepts no length in [{lo}, {hi}]")
    return valid


class ChunkedSampler:
    """Consecutive training batches of one stream, drawn ``chunk_steps`` batches at a time.

    Each batch is trimmed to its own longest row (trace tasks vary in length). With
    ``lengths`` (more than one), each batch's length is drawn uniformly from them: a chunk
    draws its ``steps`` lengths first, then the rows of each distinct length (increasing) in
    one ``task.sample`` call, handed out in the drawn order.
    """

    def __init__(
        self,
        task: Task,
        length: int,
        batch_size: int,
        rng: np.random.Generator,
        lengths: Sequence[int] | None = None,
    ) -> None:
        self.task, self.length, self.batch_size, self.rng = task, length, batch_size, rng
        mixed = lengths is not None and list(lengths) != [length]
        self.lengths = np.asarray(lengths, dtype=np.int64) if mixed else None
        top = length if self.lengths is None else int(self.lengths.max())
        self.steps = chunk_steps(batch_size, task.max_tokens(top))
        self._inputs = np.empty((0, 0), dtype=np.int64)
        self._targets = self._inputs
        self._lengths = np.empty(0, dtype=np.int64)
        self._batches: list[tuple[np.ndarray, np.ndarray]] = []
        self._next = self.steps

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        if self.lengths is not None:
            return self._next_mixed()
        if self._next == self.steps:
            b = self.task.sample(self.length, self.steps * self.batch_size, rng=self.rng)
            self._inputs, self._targets, self._lengths = b.inputs, b.targets, b.lengths
            self._next = 0
        rows = slice(self._next * self.batch_size, (self._next + 1) * self.batch_size)
        self._next += 1
        width = int(self._lengths[rows].max())
        return self._inputs[rows, :width], self._targets[rows, :width]

    def _next_mixed(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.lengths is not None
        if self._next == self.steps:
            picks = self.lengths[self.rng.integers(0, self.lengths.size, size=self.steps)]
            slots: list[tuple[np.ndarray, np.ndarray] | None] = [None] * self.steps
            bs = self.batch_size
            for n in np.unique(picks):
                at = np.flatnonzero(picks == n)
                b = self.task.sample(int(n), at.size * bs, rng=self.rng)
                for j, slot in enumerate(at):
                    rows = slice(j * bs, (j + 1) * bs)
                    width = int(b.lengths[rows].max())
                    slots[slot] = (b.inputs[rows, :width], b.targets[rows, :width])
            self._batches = [s for s in slots if s is not None]
            self._next = 0
        batch = self._batches[self._next]
        self._next += 1
        return batch


def sample_rows(
    task: Task, lengths: Sequence[int], count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` held-out rows whose lengths are drawn uniformly (row by row) from
    ``lengths``: one ``task.sample`` call per distinct length (increasing), rows in the drawn
    order, right-padded (PAD / IGNORE) to the longest row."""
    options = np.asarray(lengths, dtype=np.int64)
    picks = options[rng.integers(0, options.size, size=count)]
    parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for n in np.unique(picks):
        at = np.flatnonzero(picks == n)
        b = task.sample(int(n), at.size, rng=rng)
        parts[int(n)] = (at, b.inputs, b.targets)
    width = max(int(x.shape[1]) for _, x, _ in parts.values())
    inputs = np.full((count, width), task.pad_id, dtype=np.int64)
    targets = np.full((count, width), IGNORE, dtype=np.int64)
    for at, x, y in parts.values():
        inputs[at, : x.shape[1]] = x
        targets[at, : y.shape[1]] = y
    return inputs, targets


def train_stream(
    task: Task,
    length: int,
    batch_size: int,
    rngs: Sequence[np.random.Generator],
    device: torch.device,
    ensemble: bool,
    lengths: Sequence[int] | None = None,
) -> Callable[[], Prepared]:
    """A maker of training batches: one per call, from each generator of ``rngs`` (each
    batch's length drawn from ``lengths`` when given, see :class:`ChunkedSampler`)."""
    samplers = [ChunkedSampler(task, length, batch_size, rng, lengths) for rng in rngs]
    if ensemble:

        def make() -> Prepared:
            inputs, targets = stack_pairs([s.next() for s in samplers], task.pad_id)
            return prepare(inputs, targets, device, ensemble=True)

    else:
        (sampler,) = samplers

        def make() -> Prepared:
            inputs, targets = sampler.next()
            return prepare(inputs, targets, device, ensemble=False)

    return make
