"""The ``lengthgen`` study kind: train short, test long (lengthgen.md "Protocol"; DE23, BA22, MC24).

A lengthgen study is a grid study (:mod:`sepbench.studies.grid`): per (model entry, size, L,
seed) the model is trained once on a **length mixture** — every batch one length drawn uniformly
from [L_min, L] (``budget.mixture``: ``{ min = L_min }``, DE23's uniform curriculum), early
stopping judged in distribution (held-out rows of training lengths, the trainer's
``eval_lengths = "train"``) — and then, without further training, evaluated at

* every **test length** of ``evaluation.lengths`` (each > L: extrapolation), and every
  **in-distribution** length of ``evaluation.in_distribution`` (each ≤ the smallest L), on
  ``evaluation.rows`` rows per length drawn from one evaluation stream (study seed,
  "lengthgen.eval", length) — the same rows for every model, seed and iteration count, and
  disjoint from every training stream (those derive from the trial seeds);
* for a recurrent-depth family (``looped``, ``dtnet``) at every **test-time iteration count**
  of ``evaluation.iterations`` (one ``forward_all`` pass to the largest gives them all), plus
  its training count R; other families have no iteration knob (their records say
  ``iterations = null``).

Training option ``[training]``: ``alpha`` (BA22's progressive-loss weight α ∈ [0, 1]) and
``max_backprop`` (MC24's truncation m ≥ 1) — the progressive loss
:func:`sepbench.models.depth.progressive_loss`, applied to the recurrent-depth families only (the
others have no iterations to draw); absent = the plain loss after R iterations. The training
table is part of every trial's key (through the evaluation plan, :meth:`evaluation_plan`) but not
of the training seed, so a model trained with and without the progressive loss starts from the
same initialisation (common random numbers).

Records (``details["points"]``), one per (length, iterations)::

    {"length": 64, "iterations": 32, "train_iterations": 8, "in_distribution": false,
     "rows": 256, "acc_row": 0.98, "acc_pos": 0.999, "hits": "11…"}

``acc_row``: every supervised token of the row right, teacher forced — BA22's and MC24's
measure; for the generated answers of ``addition`` it equals greedy exact match (the argument in
:mod:`sepbench.studies.capacity_probe`: the model is causal, so teacher-forced argmaxes that are
all right are what greedy decoding writes). ``acc_pos``: the fraction of supervised tokens right
(DE23's per-token score).

Bad specs are one-line errors naming the key: a test length ≤ the longest training length
(presented as extrapolation), an in-distribution length above the shortest, an iteration count
< 1, no mixture, an unknown task or a task a model cannot answer (``SeqModel.check_task``: a
tree encoder on a task that is not a single-answer classification), a tree encoder without the
task's ``pad_id`` (the trainer's in-distribution evaluation pads rows of mixed lengths, and an
encoder with ``readout=last`` without ``pad_id`` would read the pads as leaves and answer in
the wrong column: found in a first run, where it scored the held-out rows at ~0.02).

Spec format — the grid keys (:class:`~sepbench.studies.grid.GridStudy`, with ``budget.mixture``
required) and::

    kind = "lengthgen"

    [training]                   # optional; recurrent-depth families only
    alpha = 1.0                  # progressive loss weight (BA22)
    max_backprop = 8             # MC24's truncated backprop (optional)

    [evaluation]
    lengths = [24, 32, 48, 64, 96, 128]   # test lengths, each > max(train_lengths)
    in_distribution = [8, 16]             # reference lengths, each <= min(train_lengths)
    rows = 256                            # per length (DE23: 512)
    iterations = [16, 32, 64]             # test-time iteration counts (depth families)
    bin_width = 16                        # report bins of this many lengths (default: L)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sepbench.studies.grid import GridStudy, distinct
from sepbench.sweep.spec import _Strict

KIND = "lengthgen"
DEPTH_FAMILIES = ("looped", "dtnet")
"""Families with a test-time iteration knob (:class:`sepbench.models.depth.DepthModel`)."""


class Training(_Strict):
    """The ``[training]`` table: BA22's progressive loss for the recurrent-depth families."""

    alpha: float | None = Field(default=None, ge=0, le=1)
    max_backprop: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _alpha_first(self) -> Training:
        if self.max_backprop is not None and self.alpha is None:
            raise ValueError("max_backprop needs alpha (the progressive loss it truncates)")
        return self

    @property
    def progressive(self) -> bool:
        return self.alpha is not None


class Evaluation(_Strict):
    """The ``[evaluation]`` table (module docstring)."""

    lengths: list[int] = Field(min_length=1)
    in_distribution: list[int] = Field(default_factory=list)
    rows: int = Field(default=256, ge=1)
    iterations: list[int] = Field(default_factory=list)
    bin_width: int | None = Field(default=None, ge=1)

    @field_validator("lengths", "in_distribution")
    @classmethod
    def _sorted(cls, value: list[int]) -> list[int]:
        distinct(value)
        return sorted(value)

    @field_validator("iterations")
    @classmethod
    def _counts(cls, value: list[int]) -> list[int]:
        for v in value:
            if isinstance(v, bool) or v < 1:
                raise ValueError(f"each iteration count must be an integer >= 1, got {v}")
        distinct(value)
        return sorted(value)


class LengthgenSpec(GridStudy):
    """A length-generalisation study (module docstring)."""

    KIND = KIND

    kind: Literal["lengthgen"] = "lengthgen"
    training: Training = Field(default_factory=Training)
    evaluation: Evaluation

    @model_validator(mode="after")
    def _protocol(self) -> LengthgenSpec:
        from sepbench import models, tasks

        if self.budget.mixture is None:
            raise ValueError(
                "budget.mixture: a lengthgen study trains on a length mixture [L_min, L]; "
                "set budget.mixture = { min = L_min }"
            )
        task = tasks.make(self.task.name, **self.task.params)
        longest, shortest = max(self.train_lengths), min(self.train_lengths)
        ev = self.evaluation
        for j, n in enumerate(ev.lengths):
            if n <= longest:
                raise ValueError(
                    f"evaluation.lengths[{j}] = {n} is not longer than the longest training "
                    f"length {longest}: test lengths are extrapolation (list lengths within "
                    "training in evaluation.in_distribution)"
                )
        for j, n in enumerate(ev.in_distribution):
            if n > shortest:
                raise ValueError(
                    f"evaluation.in_distribution[{j}] = {n} exceeds the shortest training "
                    f"length {shortest}"
                )
        for key, values in (("lengths", ev.lengths), ("in_distribution", ev.in_distribution)):
            for j, n in enumerate(values):
                try:
                    task.check_length(n)
                except ValueError as exc:
                    raise ValueError(f"evaluation.{key}[{j}] = {n}: {exc}") from None
        for i, (m, _label) in enumerate(self.model_labels()):
            cls = models.get_class(m.family)
            for size in m.sizes:
                options = m.size_options(size)
                try:
                    cls.check_task(task, options, longest)
                except ValueError as exc:
                    raise ValueError(f"models[{i}]: {exc}") from None
                last = cls.encoder and options.get("readout", "last") == "last"
                if last and options.get("pad_id") != task.pad_id:
                    raise ValueError(
                        f"models[{i}]: the in-distribution evaluation pads rows of mixed "
                        f"lengths, which an encoder with readout=last reads only with "
                        f"options.pad_id = {task.pad_id} (the task's pad id)"
                    )
        return self

    def _cut(self, data: dict[str, Any]) -> None:
        """--quick: the two shortest test lengths, 64 rows, the smallest iteration count."""
        data["evaluation"]["lengths"] = self.evaluation.lengths[:2]
        data["evaluation"]["rows"] = min(64, self.evaluation.rows)
        data["evaluation"]["iterations"] = self.evaluation.iterations[:1]

    def evaluation_plan(self) -> dict[str, Any]:
        """The ``[evaluation]`` table and the ``[training]`` table as data (both part of every
        trial's key; the training seed does not depend on them)."""
        data: dict[str, Any] = self.evaluation.model_dump(mode="json")
        data["training"] = self.training.model_dump(mode="json")
        return data

    def train_min(self, length: int) -> int:
        """L_min: the shortest training length at L = ``length``."""
        assert self.budget.mixture is not None
        return self.budget.mixture.shortest(length)
