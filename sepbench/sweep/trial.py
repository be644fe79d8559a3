"""Trials: one training run at one width, its canonical configuration, key and seed.

A trial is identified by the sha256 of its canonical configuration (sorted-key JSON of every
field that can change its outcome), so the store can tell a finished trial from a new one
without trusting names or order.

Seed rule. The seed a trial trains with is derived, never chosen:
``derive_seed(study seed, search key, attempt)`` — the first 63 bits of a sha256. The *search
key* is the trial configuration without width, attempt and seed, so all widths of one search
share a seed (common random numbers: the width comparison is not blurred by data noise), and a
re-probe (attempt 1, 2, …) gets a fresh, equally reproducible one. The trainer splits that seed
into independent training / evaluation streams itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sepbench.training.config import Budget

SEED_BITS = 63


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def digest(obj: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


def derive_seed(*parts: Any) -> int:
    """A non-negative 63-bit seed from any JSON-able parts (same parts, same seed)."""
    raw = hashlib.sha256(canonical_json(["sepbench.sweep.seed", *parts]).encode()).digest()
    return int.from_bytes(raw[:8], "big") >> (64 - SEED_BITS)


@dataclass(frozen=True)
class TrialBudget:
    """The study's budget resolved for one length (``spec.Budget.at``): training steps, batch
    size, learning rate (a number, or a tuple: one member per rate), the other fields of
    :class:`sepbench.training.Budget` the study sets, and the shortest training length of a
    length mixture (0: none). Its fields are part of every trial key (:meth:`identity`)."""

    steps: int
    batch_size: int
    lr: float | tuple[float, ...]
    options: dict[str, Any] = field(default_factory=dict)
    min_length: int = 0

    @property
    def lrs(self) -> tuple[float, ...]:
        """The learning rates, one per member of a restart."""
        return self.lr if isinstance(self.lr, tuple) else (self.lr,)

    def identity(self) -> dict[str, Any]:
        """What trial keys hash: every field, ``min_length`` only when a mixture sets it (keys
        written before mixtures existed stay valid)."""
        data = asdict(self)
        if isinstance(self.lr, tuple):
            data["lr"] = list(self.lr)
        if not self.min_length:
            del data["min_length"]
        return data

    def for_trainer(self) -> Budget:
        """The trainer's :class:`sepbench.training.Budget` (validated: a UserError names a bad
        field), with the first learning rate (the probe gives each member its own)."""
        from sepbench.training.config import Budget

        fields = {"max_steps": self.steps, "batch_size": self.batch_size, "lr": self.lrs[0]}
        if self.min_length:
            fields["min_length"] = self.min_length
        return Budget.from_dict({**fields, **self.options})


@dataclass(frozen=True)
class MemberSpec:
    """One member of a probe: its index, restart, learning rate and training seed."""

    index: int
    restart: int
    lr: float
    seed: int


def member_seed(seed: int, restart: int) -> int:
    """The training seed of restart ``restart`` of a trial with seed ``seed``: the trial's own
    seed for restart 0 (so a one-member probe is the trial as it always was), else
    ``derive_seed(seed, "restart", restart)``."""
    return seed if restart == 0 else derive_seed(seed, "restart", restart)


@dataclass(frozen=True)
class SearchConfig:
    """What every trial of one minimal-width search shares: the task, the model, the length,
    the seed replicate, the threshold, the budget, the study seed and the trainer — and the
    labels the study shows them under. A trial refers to it (:attr:`TrialSpec.search`); plain
    data, picklable for the process-pool and Ray executors."""

    task: str
    task_params: dict[str, Any]
    family: str
    model_options: dict[str, Any]
    length: int
    replicate: int
    threshold: float
    budget: TrialBudget
    study_seed: int
    task_label: str = ""
    model_label: str = ""
    trainer: str = "single"
    """``single`` (one ``training.fit``) or ``ensemble`` (``training.train`` of a batched
    ensemble, possibly with the other seeds probing the same width); see
    ``StudySpec.trainer``."""
    restarts: int = 1
    """Members per learning rate (``StudySpec.restarts``)."""
    rule: str = "best_of"
    """When the members succeed (``StudySpec.rule``, :mod:`sepbench.rules`)."""

    def identity(self) -> dict[str, Any]:
        """The configuration the search key hashes (no labels: they only name things).

        ``trainer``, ``restarts`` and ``rule`` are included only when they differ from their
        defaults (``single``, 1, ``best_of``), and the budget's mixture only when set (see
        :meth:`TrialBudget.identity`), so trial keys written before they existed stay valid.
        """
        config = {
            "task": {"name": self.task, "params": self.task_params},
            "model": {"family": self.family, "options": self.model_options},
            "length": self.length,
            "replicate": self.replicate,
            "threshold": self.threshold,
            "budget": self.budget.identity(),
            "study_seed": self.study_seed,
        }
        if self.trainer != "single":
            config["trainer"] = self.trainer
        if self.restarts != 1:
            config["restarts"] = self.restarts
        if self.rule != "best_of":
            config["rule"] = self.rule
        return config

    @property
    def size(self) -> int:
        """K, the members of every probe: restarts × learning rates."""
        return self.restarts * len(self.budget.lrs)

    @cached_property
    def key(self) -> str:
        """The search key: sha256 of :meth:`identity`."""
        return digest(self.identity())

    def seed(self, attempt: int) -> int:
        """The training seed of every trial of this search with this attempt number."""
        return derive_seed(self.study_seed, self.key, attempt)

    def trial(self, width: int, attempt: int = 0) -> TrialSpec:
        return TrialSpec(self, width, attempt, self.seed(attempt))

    def describe(self) -> str:
        return (
            f"{self.task_label or self.task} / {self.model_label or self.family} "
            f"N={self.length} seed#{self.replicate}"
        )


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its search's configuration, the width, the attempt and the derived seed
    (plain data: picklable and JSON-able)."""

    search: SearchConfig
    width: int
    attempt: int
    seed: int

    @property
    def search_key(self) -> str:
        return self.search.key

    def members(self) -> list[MemberSpec]:
        """The probe's K members, restart-major: restart r and learning rate j is member
        ``r · len(lrs) + j``. The members of one restart share a seed (their data and initial
        weights), so the rates are compared on the same draws."""
        rates = self.search.budget.lrs
        return [
            MemberSpec(r * len(rates) + j, r, lr, member_seed(self.seed, r))
            for r in range(self.search.restarts)
            for j, lr in enumerate(rates)
        ]

    def config(self) -> dict[str, Any]:
        """The full canonical configuration (what the key hashes)."""
        return {
            **self.search.identity(),
            "width": self.width,
            "attempt": self.attempt,
            "seed": self.seed,
        }

    @property
    def key(self) -> str:
        return digest(self.config())

    def batch_key(self) -> str:
        """What trials must share to train as one ensemble: everything but the replicate,
        the attempt and the seed."""
        config = self.search.identity()
        del config["replicate"]
        return digest({**config, "width": self.width})

    def describe(self) -> str:
        return f"{self.search.describe()} width={self.width}" + (
            f" attempt {self.attempt}" if self.attempt else ""
        )


@dataclass(frozen=True)
class ProbeOutcome:
    """What the search needs from one trial, plus the trainer's full record.

    ``reached``: the accuracy threshold was reached (the only field the search reads).
    ``accuracy``: the accuracy the threshold was compared with (None if not measured).
    ``details``: JSON-able extra data (e.g. ``TrialResult.to_dict()``), stored verbatim.
    """

    reached: bool
    accuracy: float | None = None
    steps: int | None = None
    wall_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.reached, bool):
            raise TypeError(f"ProbeOutcome.reached must be a bool, got {self.reached!r}")
        if self.accuracy is not None and not math.isfinite(self.accuracy):
            object.__setattr__(self, "accuracy", None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeOutcome:
        return cls(**data)
