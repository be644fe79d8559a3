"""The ``capacity`` study kind: passkey recall over context length × depth per state size (SM24).

Spec: capacity.md ("Capacity measurement", "Mitigations"). A capacity study is a grid study
(:mod:`sepbench.studies.grid`): per (model entry, size, T_train, seed) the model is trained
once on ``passkey`` rows of T_train tokens (depth ``uniform``), then evaluated — without
further training — on

* the **grid**: every context length L of ``evaluation.lengths`` × every depth of
  ``evaluation.depths`` (default: the 10 bin centres (i + 0.5)/10), ``rows`` rows each;
  score = exact match of the d key digits under greedy decoding;
* the **recent** rows (the collapse probe): ``recent_rows`` rows per L whose key block ends
  within the last ⌊T_train/2⌋ tokens before ``[Q]``, so the key is as close to the query as in
  training and a failure there is the long context itself (collapse), not distance;
* for ``ssm`` models, the same contexts under each **mitigation** of
  ``evaluation.mitigations`` (training-free, ``SSMModel.with_inference``), on the first
  ``mitigation_rows`` rows of every (L, depth) and recent set — the unmitigated model is
  scored on exactly those rows too, so every comparison is paired;
* a **state trace** (``ssm``): per-channel state norms every min(``trace_stride``, T_train)
  tokens over ``trace_rows`` filler-only rows (no key: length isolated from content, as SM24's
  repeated-newlines prompt) of the longest grid length, unmitigated and under each
  mitigation, and what :func:`~sepbench.models.collapse.detect_collapse` finds in it.

The contexts are common random numbers: the rows of (L, depth) are drawn from a stream of
(study seed, L, depth index) only, so every model, seed and mitigation reads the same rows.

Spec format — the grid keys (:class:`~sepbench.studies.grid.GridStudy`) and::

    kind = "capacity"

    [evaluation]
    lengths = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
    depths = [0.05, 0.15, …, 0.95]    # default: 10 bin centres; each in [0, 1]
    rows = 8                          # per (L, depth)
    recent_rows = 16                  # per L
    mitigation_rows = 4               # the first rows of each set, for every mitigation
    trace_rows = 4
    trace_stride = 64
    calibration_rows = 256            # state_norm's reference rows at T_train

    [[evaluation.mitigations]]
    name = "forget_more"
    decay_c = 4.0                     # λ = exp(−1/(c·T_train))
    write_scale = 0.7                 # β

    [[evaluation.mitigations]]
    name = "state_norm"
    norm_multiplier = 1.0             # τ = m × median ‖h_{T_train}[c]‖ over reference rows
    renorm_every = 64

    [[evaluation.mitigations]]
    name = "window"
    window_factor = 1.0               # W = round(factor × T_train) tokens

    [analysis]
    thresholds = [0.95, 0.5]          # θ of T_recall(θ); the first is the headline
    forget_span = 32                  # a model forgets if acc_recent ≥ θ for L ≤ span·T_train

Bad parameters are one-line errors naming the key: a depth outside [0, 1]
(``evaluation.depths[3]``), a context shorter than the key (``evaluation.lengths[0]``, from
the task's own rule N ≥ 2d + 3), a size of 0 (``models[0].sizes[1]``), a mitigation with no
or conflicting settings.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sepbench.studies.grid import GridStudy, distinct
from sepbench.sweep.spec import _Strict

KIND = "capacity"
DEFAULT_BINS = 10
RECENT_FRACTION = 0.5
"""capacity.md: a recent key block ends within the last T_train/2 tokens before ``[Q]``."""


def bin_centres(bins: int = DEFAULT_BINS) -> list[float]:
    """(i + 0.5)/bins for i = 0 … bins − 1 (capacity.md's depth bins)."""
    return [(i + 0.5) / bins for i in range(bins)]


class Mitigation(_Strict):
    """One training-free inference setting of the SSM (``ssm_inference``), stated relative to
    each model's T_train so that one entry means the same thing at every training length.

    Exactly one of: ``decay_c`` and/or ``write_scale`` (forget more, remember less: λ =
    exp(−1/(c·T_train)), β), ``norm_multiplier`` (state normalisation every ``renorm_every``
    tokens, thresholds calibrated on reference rows at T_train), ``window_factor`` (sliding
    window of W = round(factor·T_train) ≥ 1 tokens by state difference)."""

    name: str
    decay_c: float | None = Field(default=None, gt=0)
    write_scale: float | None = Field(default=None, gt=0, le=1)
    norm_multiplier: float | None = Field(default=None, gt=0)
    renorm_every: int | None = Field(default=None, ge=1)
    window_factor: float | None = Field(default=None, gt=0)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or value == "none" or not value.replace("_", "").isalnum():
            raise ValueError(
                f"must be letters, digits and '_' (and not 'none', the unmitigated model), "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Mitigation:
        kinds = [
            k
            for k, on in (
                ("forget_more", self.decay_c is not None or self.write_scale is not None),
                ("state_norm", self.norm_multiplier is not None),
                ("window", self.window_factor is not None),
            )
            if on
        ]
        if len(kinds) != 1:
            raise ValueError(
                "set exactly one of: decay_c / write_scale (forget more), norm_multiplier "
                f"(state normalisation), window_factor (sliding window); got {kinds or 'none'}"
            )
        if self.renorm_every is not None and kinds != ["state_norm"]:
            raise ValueError("renorm_every applies only with norm_multiplier")
        return self

    @property
    def kind(self) -> str:
        if self.norm_multiplier is not None:
            return "state_norm"
        if self.window_factor is not None:
            return "window"
        return "forget_more"

    def window(self, train_length: int) -> int:
        assert self.window_factor is not None
        return max(1, round(self.window_factor * train_length))

    def inference_options(self, train_length: int) -> dict[str, Any]:
        """The ``with_inference`` options at this T_train (state_norm's thresholds excluded:
        the probe calibrates them on the trained model)."""
        if self.kind == "window":
            return {"window": self.window(train_length)}
        if self.kind == "state_norm":
            return {} if self.renorm_every is None else {"renorm_every": self.renorm_every}
        out: dict[str, Any] = {}
        if self.decay_c is not None:
            out["decay_scale"] = math.exp(-1.0 / (self.decay_c * train_length))
        if self.write_scale is not None:
            out["write_scale"] = float(self.write_scale)
        return out

    def describe(self, train_length: int | None = None) -> str:
        """In words, e.g. ``forget more, remember less: λ = exp(−1/(4·T_train)), β = 0.7``."""
        if self.kind == "window":
            w = f" = {self.window(train_length)}" if train_length else ""
            return f"sliding window by state difference, W = {self.window_factor:g}·T_train{w}"
        if self.kind == "state_norm":
            every = self.renorm_every or 64
            return (
                f"state normalisation every {every} tokens, τ[c] = {self.norm_multiplier:g} × "
                "median ‖h_T_train[c]‖"
            )
        parts = []
        if self.decay_c is not None:
            parts.append(f"λ = exp(−1/({self.decay_c:g}·T_train))")
        if self.write_scale is not None:
            parts.append(f"β = {self.write_scale:g}")
        return "forget more, remember less: " + ", ".join(parts)


class Evaluation(_Strict):
    """The ``[evaluation]`` table (module docstring)."""

    lengths: list[int] = Field(min_length=1)
    depths: list[float] = Field(default_factory=bin_centres, min_length=1)
    rows: int = Field(default=8, ge=1)
    recent_rows: int = Field(default=16, ge=0)
    mitigation_rows: int = Field(default=4, ge=1)
    trace_rows: int = Field(default=4, ge=0)
    trace_stride: int = Field(default=64, ge=1)
    calibration_rows: int = Field(default=256, ge=1)
    mitigations: list[Mitigation] = Field(default_factory=list)

    @field_validator("lengths")
    @classmethod
    def _sorted_lengths(cls, value: list[int]) -> list[int]:
        distinct(value)
        return sorted(value)

    @field_validator("depths", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value
            ]
        return value

    @field_validator("depths")
    @classmethod
    def _depths(cls, value: list[float]) -> list[float]:
        return distinct(value)

    @field_validator("mitigations")
    @classmethod
    def _names(cls, value: list[Mitigation]) -> list[Mitigation]:
        distinct([m.name for m in value])
        return value

    @model_validator(mode="after")
    def _rows(self) -> Evaluation:
        if self.mitigation_rows > self.rows:
            raise ValueError(
                f"mitigation_rows ({self.mitigation_rows}) must be <= rows ({self.rows}): the "
                "mitigations are scored on the first rows of the same contexts"
            )
        return self


class Analysis(_Strict):
    """The ``[analysis]`` table: thresholds of T_recall(θ) and the forgetting rule's span."""

    thresholds: list[float] = Field(default_factory=lambda: [0.95, 0.5], min_length=1)
    forget_span: int = Field(default=32, ge=1)

    @field_validator("thresholds")
    @classmethod
    def _unit(cls, value: list[float]) -> list[float]:
        for v in value:
            if not 0 < v <= 1:
                raise ValueError(f"each threshold must be in (0, 1], got {v}")
        return distinct(value)


class CapacitySpec(GridStudy):
    """A capacity study (module docstring)."""

    KIND = KIND

    kind: Literal["capacity"] = "capacity"
    evaluation: Evaluation
    analysis: Analysis = Field(default_factory=Analysis)

    @model_validator(mode="after")
    def _passkey(self) -> CapacitySpec:
        from sepbench import tasks

        if self.task.name != "passkey":
            raise ValueError(
                f"task: a capacity study runs the passkey task, got '{self.task.name}'"
            )
        task = tasks.make(self.task.name, **self.task.params)
        for j, n in enumerate(self.evaluation.lengths):
            try:
                task.check_length(n)
            except ValueError as exc:
                raise ValueError(f"evaluation.lengths[{j}] = {n}: {exc}") from None
        params = {k: v for k, v in self.task.params.items() if k != "depth"}
        for j, d in enumerate(self.evaluation.depths):
            try:
                tasks.make(self.task.name, **params, depth=d)
            except ValueError as exc:
                raise ValueError(f"evaluation.depths[{j}]: {exc}") from None
        return self

    def _cut(self, data: dict[str, Any]) -> None:
        """--quick: contexts up to 1024 tokens (at least the two shortest)."""
        lengths = self.evaluation.lengths
        data["evaluation"]["lengths"] = [n for n in lengths if n <= 1024] or lengths[:2]

    def evaluation_plan(self) -> dict[str, Any]:
        """The ``[evaluation]`` table as data (every trial's key includes it)."""
        data: dict[str, Any] = self.evaluation.model_dump(mode="json")
        return data
