"""State traces and the state-collapse detector (SM24; spec: capacity.md "Collapse diagnosis").

A :class:`StateTrace` is plain data: per layer, row, traced step t (``steps``: tokens read,
every ``stride``-th) and channel c, the state norm ‖h_t[c, :]‖₂ and the cumulative log-decay
L_t[c] = Σ_{i≤t} a_i[c], plus the mean and variance of all state entries. The SSM produces it
(``SSMModel.state_trace``); the detector below reads nothing else.

:func:`detect_collapse` applies capacity.md's rules, per row and then over rows:

* **outlier** at (layer, t): a channel whose norm > ``factor`` (10) × the median channel norm;
  it is **new** if it was no outlier at the reference step (the last traced step ≤ T_train);
* **variance jump** at (layer, t): variance of the state entries > ``factor`` × its value at
  the reference step;
* a row has **collapsed** at t > T_train if some layer shows a new outlier or a variance jump;
  its onset is the first such t; the model's onset t* is the first traced t by which at least
  half the rows have collapsed (the median row onset; None: fewer than half ever do).
  capacity.md says "first t with an outlier": two refinements, both measured on tiny SSMs
  trained on a counting task (tests/models/test_ssm_collapse.py): the search starts past the
  training length, and an outlier already present at T_train does not count — in those
  models one channel of eight routinely sits above 10 × the median *inside* the training
  length (that is how they count), and without the refinements every model, mitigated or
  not, would "collapse" at the first step past T_train. Raw outliers stay reported
  (``outlier_rows``);
* **first-token retention** ρ_t[c] = exp(L_t[c] − L_1[c]) (what is left at t of the first
  token's write); a channel with median ρ_{T_train} > 0.5 never forgot during training.

Rows are aggregated after the per-row rule, so one odd row cannot set the onset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sepbench.errors import UserError

OUTLIER_FACTOR = 10.0
"""capacity.md: outlier = channel norm > 10 × the median channel norm; variance jump: > 10×."""
RETENTION = 0.5
"""capacity.md: ρ_{T_train} > 0.5 marks a channel that never forgot during training."""


@dataclass(frozen=True, eq=False)
class StateTrace:
    """Per-layer state statistics every ``stride`` tokens (arrays are float64)."""

    steps: tuple[int, ...]
    """Tokens read at each traced step: stride, 2·stride, … ≤ T."""
    norms: np.ndarray
    """``[layers, rows, steps, channels]``: ‖h_t[c, :]‖₂ (the state the layer reads at t)."""
    log_decay: np.ndarray
    """``[layers, rows, steps, channels]``: L_t[c] = Σ_{i≤t} a_i[c] (≤ 0)."""
    first_log_decay: np.ndarray
    """``[layers, rows, channels]``: L_1[c] = a_1[c]."""
    mean: np.ndarray
    """``[layers, rows, steps]``: mean of all state entries h_t[c, i]."""
    variance: np.ndarray
    """``[layers, rows, steps]``: their variance (population)."""

    def retention(self) -> np.ndarray:
        """ρ_t[c] = exp(L_t[c] − L_1[c]) ``[layers, rows, steps, channels]``."""
        return np.asarray(np.exp(self.log_decay - self.first_log_decay[:, :, None, :]))


@dataclass(frozen=True, eq=False)
class CollapseReport:
    """What :func:`detect_collapse` found (module docstring); arrays are over layers × steps."""

    steps: tuple[int, ...]
    train_length: int
    reference_step: int
    """The traced step standing for T_train (the last one ≤ T_train)."""
    median_norm: np.ndarray
    """``[layers, steps]``: the median channel norm, averaged over rows."""
    max_norm: np.ndarray
    """``[layers, steps]``: the largest channel norm, averaged over rows."""
    variance: np.ndarray
    """``[layers, steps]``: the variance of the state entries, averaged over rows."""
    outlier_rows: np.ndarray
    """``[layers, steps]``: fraction of rows with an outlier channel (new or not)."""
    outlier_channels: tuple[tuple[int, ...], ...]
    """Per layer: channels that are new outliers in at least half the rows at some traced
    step past T_train (the collapsing channels)."""
    row_onsets: tuple[int | None, ...]
    onset: int | None
    """t*: the first traced step past T_train by which at least half the rows have collapsed."""
    unforgetting_channels: tuple[tuple[int, ...], ...]
    """Per layer: channels whose median first-token retention at the reference step > 0.5."""


def detect_collapse(
    trace: StateTrace, train_length: int, factor: float = OUTLIER_FACTOR
) -> CollapseReport:
    """Apply the collapse rules (module docstring) to ``trace`` of a model trained at
    ``train_length`` tokens."""
    steps = np.asarray(trace.steps)
    if isinstance(train_length, bool) or not isinstance(train_length, int) or train_length < 1:
        raise UserError(
            f"detect_collapse: train_length must be an integer >= 1, got {train_length!r}"
        )
    if not len(steps) or steps[0] > train_length:
        first = int(steps[0]) if len(steps) else None
        raise UserError(
            f"detect_collapse: the trace needs a step <= train_length {train_length} "
            f"(its first traced step is {first}); trace with a smaller stride"
        )
    if not factor > 1:
        raise UserError(f"detect_collapse: factor must be > 1, got {factor!r}")
    ref = int(np.searchsorted(steps, train_length, side="right") - 1)
    norms = trace.norms  # [l, r, s, c]
    median = np.median(norms, axis=-1)  # [l, r, s]
    outlier = norms > factor * median[..., None]  # [l, r, s, c]
    new = outlier & ~outlier[:, :, ref : ref + 1]
    new[:, :, : ref + 1] = False  # the search starts past the training length
    jump = trace.variance > factor * trace.variance[:, :, ref : ref + 1]
    collapsed = (new.any(axis=-1) | jump).any(axis=0)  # [r, s]
    collapsed[:, : ref + 1] = False
    row_onsets = tuple(int(steps[np.argmax(row)]) if row.any() else None for row in collapsed)
    share = collapsed.cumsum(axis=1).clip(max=1).mean(axis=0)  # rows collapsed by each step
    half = np.flatnonzero(share >= 0.5)
    retention = np.median(trace.retention()[:, :, ref], axis=1)  # [l, c]
    return CollapseReport(
        steps=tuple(int(s) for s in steps),
        train_length=train_length,
        reference_step=int(steps[ref]),
        median_norm=median.mean(axis=1),
        max_norm=norms.max(axis=-1).mean(axis=1),
        variance=trace.variance.mean(axis=1),
        outlier_rows=outlier.any(axis=-1).mean(axis=1),
        outlier_channels=tuple(
            tuple(int(c) for c in np.flatnonzero((layer.mean(axis=0) >= 0.5).any(axis=0)))
            for layer in new
        ),
        row_onsets=row_onsets,
        onset=int(steps[half[0]]) if len(half) else None,
        unforgetting_channels=tuple(
            tuple(int(c) for c in np.flatnonzero(layer > RETENTION)) for layer in retention
        ),
    )
