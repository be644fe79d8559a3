"""Plain data of the trainer: the training budget, the trial result, and the seed rule.

Seed rule (the architecture's "training and evaluation streams never share a seed"): a trial
seed ``s`` is expanded with :class:`numpy.random.SeedSequence` into independent child streams,
``SeedSequence(s, spawn_key=(k,))`` for the stream number ``k`` of :data:`STREAMS` — exactly
what ``SeedSequence(s).spawn(...)`` would hand out. Children with different spawn keys are
distinct by construction (the key is hashed into the state), so the training batches, the
periodic evaluation batches, the confirmation batch and the torch seed never coincide, and
a member of an ensemble trained with seed ``s`` sees the same data as ``fit(..., seed=s)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from sepbench.errors import UserError

STREAMS = {"train": 0, "eval": 1, "confirm": 2, "torch": 3}
"""Stream number (SeedSequence spawn key) of each random stream derived from a trial seed."""


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def stream(seed: int, name: str) -> np.random.Generator:
    """The numpy Generator of stream ``name`` (train / eval / confirm) of trial seed ``seed``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(STREAMS[name],)))
    )


def torch_seed(seed: int) -> int:
    """A 63-bit seed for torch's own generator (dropout etc.), from the ``torch`` stream."""
    state = np.random.SeedSequence(seed, spawn_key=(STREAMS["torch"],)).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))


EVAL_LENGTHS = ("exact", "train")
"""Where evaluations are made: at the trial's length, or over the training lengths."""
_TEXT_FIELDS = frozenset({"eval_lengths"})
LATER_FIELDS: dict[str, Any] = {"min_length": 0, "max_length": 0, "eval_lengths": "exact"}
"""Budget fields added after trials began recording their budget; ``to_dict`` leaves them out
at these defaults (the records of trials that train at exactly N do not change)."""


@dataclass(frozen=True)
class Budget:
    """How much training one trial gets, and the optimiser's settings.

    AdamW with ``lr`` reached by a linear warm-up over ``warmup`` steps, then a cosine decay to
    ``lr * min_lr_ratio`` at ``max_steps``; gradients clipped to norm ``grad_clip`` (0 = off).
    Every ``eval_every`` steps the model is evaluated (teacher forced) on ``eval_batch`` fresh
    held-out examples; when its sequence accuracy reaches the threshold a confirmation
    evaluation on ``confirm_batch`` held-out examples decides whether training stops.

    Training lengths (a *length mixture*, B24 and DE23's protocol): with ``min_length`` or
    ``max_length`` set, each training batch has one length, drawn uniformly from the lengths in
    ``[min_length or N, max_length or N]`` that the task accepts (``task.check_length``: e.g.
    even lengths only for Dyck), N being the trial's length. ``eval_lengths`` says where the
    periodic and confirmation evaluations are made: ``"exact"`` (default) at N, ``"train"``
    in distribution — each held-out row's length drawn uniformly from the training lengths.
    The defaults (0, 0, ``"exact"``) train and evaluate at exactly N, as before these fields
    existed; :meth:`to_dict` leaves them out while they hold their defaults, so recorded
    configurations stay as they were.
    """

    max_steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0
    eval_every: int = 50
    eval_batch: int = 256
    confirm_batch: int = 2048
    min_length: int = 0
    max_length: int = 0
    eval_lengths: str = "exact"

    def __post_init__(self) -> None:
        if self.eval_lengths not in EVAL_LENGTHS:
            raise UserError(
                f"budget: eval_lengths must be one of {', '.join(EVAL_LENGTHS)}, "
                f"got {self.eval_lengths!r}"
            )
        rules: dict[str, tuple[Any, str]] = {
            "max_steps": (lambda v: v >= 1, "an integer >= 1"),
            "batch_size": (lambda v: v >= 1, "an integer >= 1"),
            "warmup": (lambda v: v >= 0, "an integer >= 0"),
            "eval_every": (lambda v: v >= 1, "an integer >= 1"),
            "eval_batch": (lambda v: v >= 1, "an integer >= 1"),
            "confirm_batch": (lambda v: v >= 1, "an integer >= 1"),
            "lr": (lambda v: v > 0, "a number > 0"),
            "min_lr_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
            "weight_decay": (lambda v: v >= 0, "a number >= 0"),
            "beta1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "beta2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "grad_clip": (lambda v: v >= 0, "a number >= 0 (0 = no clipping)"),
            "min_length": (lambda v: v >= 0, "an integer >= 0 (0 = the trial's length)"),
            "max_length": (lambda v: v >= 0, "an integer >= 0 (0 = the trial's length)"),
        }
        for f in fields(self):
            if f.name in _TEXT_FIELDS:
                continue
            value = getattr(self, f.name)
            check, rule = rules[f.name]
            is_int = f.type in (int, "int")
            ok_type = (
                isinstance(value, int | np.integer) and not isinstance(value, bool)
                if is_int
                else isinstance(value, int | float | np.number)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok_type or not check(value):
                raise UserError(f"budget: {f.name} must be {rule}, got {value!r}")
            object.__setattr__(self, f.name, int(value) if is_int else float(value))
        if self.min_length and self.max_length and self.min_length > self.max_length:
            raise UserError(
                f"budget: min_length ({self.min_length}) must be <= max_length ({self.max_length})"
            )

    @property
    def mixed(self) -> bool:
        """Whether training lengths may differ from the trial's length."""
        return bool(self.min_length or self.max_length)

    def length_range(self, length: int) -> tuple[int, int]:
        """The training lengths' range ``(lo, hi)`` for a trial of length ``length``."""
        return (self.min_length or length, self.max_length or length)

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based)."""
        warmup = min(self.warmup, self.max_steps)
        if step < warmup:
            return self.lr * (step + 1) / warmup
        span = max(1, self.max_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)

    def to_dict(self) -> dict[str, Any]:
        """Every field, except the later ones (:data:`LATER_FIELDS`) at their defaults."""
        data = asdict(self)
        for key, default in LATER_FIELDS.items():
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UserError(f"budget: unknown field '{unknown[0]}'; allowed: {', '.join(known)}")
        return cls(**data)


@dataclass
class TrialResult:
    """The outcome of training one model on one (task, length) — plain data, JSON-able.

    ``reached``: the confirmation evaluation's sequence accuracy reached ``threshold``.
    ``steps``: optimiser steps taken (the step of the evaluation that stopped training, or the
    budget). The three accuracies and ``loss`` come from the last confirmation evaluation
    (``confirm_batch`` held-out examples, teacher forced): token = supervised targets
    predicted correctly, sequence = rows whose every supervised target is correct, answer =
    rows whose last supervised target is correct. ``stop`` is ``"reached"``, ``"budget"``,
    ``"diverged"`` (non-finite training loss) or ``"decided"`` (cut short because its
    :class:`StopGroup` was decided; its accuracies then come from that step's periodic
    evaluation, not the confirmation set). ``history`` holds one record per evaluation.
    ``config`` holds everything needed to rerun the trial: task (name, params), length,
    model config, budget, threshold.
    """

    reached: bool
    steps: int
    token_accuracy: float
    sequence_accuracy: float
    answer_accuracy: float
    loss: float
    wall_time: float
    seed: int
    stop: str
    config: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    scoring: str = "teacher forced"
    """How ``sequence_accuracy`` and ``answer_accuracy`` were measured: ``"teacher forced"``,
    or ``"generation"`` for tasks whose answer is a generated continuation — then
    ``sequence_accuracy`` is the exact match of the free-running continuation (trace and
    answer: what ``reached`` is decided on) and ``answer_accuracy`` that of its final answer
    alone (W24 scores IsTree's final answer by generation; the issue's rule is the whole
    continuation — both are recorded)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        return cls(**data)


@dataclass(frozen=True)
class StopGroup:
    """Members of one :func:`~sepbench.training.train` call that stop together.

    The group is *decided* as soon as ``quorum`` of its ``members`` (indices) reached the
    threshold, or as soon as so many failed (ran out of budget or diverged) that the quorum is
    out of reach (:func:`sepbench.rules.decide`); its members still training then stop with
    ``stop = "decided"``. A group of one with quorum 1 is a member on its own (the default).
    """

    members: tuple[int, ...]
    quorum: int = 1

    def __post_init__(self) -> None:
        if not self.members or len(set(self.members)) != len(self.members):
            raise UserError(f"a stop group needs distinct members, got {self.members!r}")
        if not 1 <= self.quorum <= len(self.members):
            raise UserError(
                f"a stop group's quorum must be in 1..{len(self.members)}, got {self.quorum!r}"
            )
