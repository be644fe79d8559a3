"""Training-free state-collapse mitigations of the SSM (SM24; spec: capacity.md "Mitigations").

Per layer and channel the SSM runs h_t = ā_t ⊙ h_{t−1} + b̄_t x_t with ā = exp(a), a = Δ·A ≤ 0,
and write x = Δ·u along B_t (``sepbench.models.ssm``). ``SSMModel.with_inference(**options)``
returns a weight-sharing copy that changes this recurrence at inference time only:

``decay_scale`` λ ∈ (0, 1], ``write_scale`` β ∈ (0, 1]  — forget more, remember less:
    ā' = λ·ā (a' = a + ln λ), b̄' = β·b̄ (x' = β·x).
``dt_scale`` γ > 0 — the baseline: Δ' = γ·Δ (scales the log-decay and the write together).
    Applied first, then λ and β.
``state_norm`` τ ``[layers][width]`` (from :func:`calibrate_state_norm`), ``renorm_every`` C
    (default 64) — after every C-th token, per layer and channel, h[c] ← h[c]·min(1, τ[c]/‖h[c]‖)
    before that token's output is read (a shrink: SM24's released code multiplies by ‖h‖/τ,
    which enlarges an over-threshold state; capacity.md). Nonlinear in h: the parallel path
    renormalises in its chunk-sequential inter-chunk loop (``ssm_scan.scan``).
``window`` W ≥ 1 — sliding window by state difference: every layer reads
    h_t^(W) = h_t − (Π_{i=t−W+1..t} ā_i) ⊙ h_{t−W} = Σ_{t−W<s≤t} (Π_{i=s+1..t} ā_i) ⊙ b̄_s x_s,
    the state of its last W inputs alone (h_{t−W} = 0 for t ≤ W). Exact for the linear
    recurrence *per layer*: with ≥ 2 layers, layer 2's last W inputs depend on layer 1's
    outputs over 2W − 1 tokens, so the model is not the model run on its last W tokens
    (receptive field layers·(W − 1) + 1). The parallel path splits time into blocks of W
    (``ssm_scan.window_scan``: linear in T, no long state, nothing cancels); the incremental
    path keeps the
    last W states and W − 1 log-decays (W × the state, like a W-token KV cache) and subtracts —
    in float32 a collapsed state loses digits in that difference, so compare the two in
    float64. Not combinable with ``state_norm`` (renormalisation makes the recurrence
    nonlinear, so the difference no longer removes the old tokens): UserError.

The incremental state (``init_state``/``step``): plain and scales — one [B, width, n] tensor per
layer (as without mitigation); ``state_norm`` — those plus a [B] count of tokens read (a float,
exact below 2²⁴ tokens in float32); ``window`` — per layer the last W states [B, W, width, n] and
the last W − 1 log-decays [B, W − 1, width]. ``state_size`` counts exactly these floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sepbench.errors import UserError
from sepbench.models.precision import Grid, quantise
from sepbench.models.ssm_scan import Renorm, ScanOut, renorm_factor, scan, window_scan

if TYPE_CHECKING:
    from sepbench.models.ssm import SSMModel

RENORM_EVERY = 64
"""Default ``renorm_every`` (capacity.md: C = 64)."""


@dataclass(frozen=True)
class Inference:
    """The inference-time options of an SSM (module docstring); the defaults change nothing."""

    decay_scale: float = 1.0
    write_scale: float = 1.0
    dt_scale: float = 1.0
    state_norm: tuple[tuple[float, ...], ...] | None = None
    renorm_every: int = RENORM_EVERY
    window: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The options that differ from the defaults (plain JSON-able data)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = [list(r) for r in value] if f.name == "state_norm" else value
        return out

    def tau(self, layer: int, like: Tensor) -> Tensor:
        """Layer ``layer``'s thresholds τ ``[width]`` in ``like``'s dtype and device."""
        assert self.state_norm is not None
        return torch.tensor(self.state_norm[layer], dtype=like.dtype, device=like.device)

    def adjust(self, delta: Tensor, A: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Log-decay a and write x from step sizes Δ, decay rates A (< 0) and inputs u."""
        if self.dt_scale != 1.0:
            delta = delta * self.dt_scale
        a, x = delta * A, delta * u
        if self.decay_scale != 1.0:
            a = a + math.log(self.decay_scale)
        if self.write_scale != 1.0:
            x = x * self.write_scale
        return a, x


PLAIN = Inference()

_OPTIONS = tuple(f.name for f in fields(Inference))


def parse_inference(
    family: str, layers: int, width: int, options: Mapping[str, Any], quantised: bool = False
) -> Inference:
    """Validate ``with_inference`` options; UserError naming the option and what is allowed.
    A ``quantised`` model (``state_bits``) takes the scales only: the window by state
    difference and the renormalisation both act on an unquantised state."""
    where = f"{family}.with_inference"
    for name in ("window", "state_norm"):
        if quantised and options.get(name) is not None:
            raise UserError(
                f"{where}: {name!r} cannot be combined with a quantised state (state_bits): it "
                "acts on the unquantised linear recurrence; the scales (decay_scale, "
                "write_scale, dt_scale) apply"
            )
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise UserError(
            f"{where}: unknown option {unknown[0]!r}; the options are {', '.join(_OPTIONS)}"
        )

    def scale(name: str, upper: float | None) -> float:
        value = options.get(name, 1.0)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0 or (upper and value > upper):
            allowed = "in (0, 1]" if upper else "a finite number > 0"
            raise UserError(f"{where}: {name} must be {allowed}, got {value!r}")
        return float(value)

    def count(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{where}: {name} must be an integer >= 1, got {value!r}")
        return value

    window = options.get("window")
    if window is not None:
        window = count("window", window)
    thresholds = options.get("state_norm")
    if thresholds is not None:
        thresholds = _thresholds(where, thresholds, layers, width)
        if window is not None:
            raise UserError(
                f"{where}: 'window' cannot be combined with 'state_norm' (the window by state "
                "difference is exact only for the linear recurrence; renormalisation makes it "
                "nonlinear); use one of them"
            )
    elif "renorm_every" in options:
        raise UserError(f"{where}: 'renorm_every' applies only with 'state_norm' thresholds")
    return Inference(
        decay_scale=scale("decay_scale", 1.0),
        write_scale=scale("write_scale", 1.0),
        dt_scale=scale("dt_scale", None),
        state_norm=thresholds,
        renorm_every=count("renorm_every", options.get("renorm_every", RENORM_EVERY)),
        window=window,
    )


def _thresholds(where: str, value: Any, layers: int, width: int) -> tuple[tuple[float, ...], ...]:
    try:
        arr = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (layers, width) or not np.isfinite(arr).all() or (arr < 0).any():
        raise UserError(
            f"{where}: state_norm must be thresholds >= 0 of shape [layers, width] = "
            f"[{layers}, {width}] (see calibrate_state_norm), got shape {arr.shape}"
        )
    return tuple(tuple(float(v) for v in row) for row in arr)


# ------------------------------------------------------------------ the two computation paths
def layer_scan(
    inf: Inference,
    layer: int,
    a: Tensor,
    x: Tensor,
    B: Tensor,
    C: Tensor,
    stride: int = 0,
    grid: Grid | None = None,
) -> ScanOut:
    """The parallel path of one layer under ``inf``: outputs C_t · (state read at t) and, with
    ``stride``, the states read after every ``stride``-th token. With ``grid`` (``state_bits``)
    the state is snapped after every step (``ssm_scan.scan``'s sequential path)."""
    if inf.window is not None:
        return window_scan(a, x, B, C, inf.window, stride=stride)
    renorm = None
    if inf.state_norm is not None:
        renorm = Renorm(inf.renorm_every, inf.tau(layer, a))
    return scan(a, x, B, C, stride=stride, renorm=renorm, grid=grid)


def layer_state(inf: Inference, batch: int, width: int, n: int, like: Tensor) -> tuple[Tensor, ...]:
    """One layer's incremental state before the first token (module docstring)."""
    if inf.window is not None:
        return (
            like.new_zeros(batch, inf.window, width, n),
            like.new_zeros(batch, inf.window - 1, width),
        )
    return (like.new_zeros(batch, width, n),)


def layer_step(
    inf: Inference,
    layer: int,
    carried: tuple[Tensor, ...],
    a: Tensor,
    x: Tensor,
    B: Tensor,
    C: Tensor,
    count: Tensor | None,
    grid: Grid | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The incremental path of one layer: ``a, x : [B, width]``, ``B, C : [B, n]``, ``count``
    the tokens read including this one (``state_norm`` only), ``grid`` the state's grid
    (``state_bits``) → (C_t · state read, new state)."""
    decay = torch.exp(a).unsqueeze(-1)
    write = x.unsqueeze(-1) * B.unsqueeze(1)
    if inf.window is not None:
        past, log_decays = carried  # h_{t−W} … h_{t−1};  a_{t−W+1} … a_{t−1}
        h = decay * past[:, -1] + write
        back = torch.exp(log_decays.sum(dim=1) + a).unsqueeze(-1)  # Π_{i=t−W+1..t} ā_i
        read = h - back * past[:, 0]
        past = torch.cat([past, h.unsqueeze(1)], dim=1)[:, 1:]
        log_decays = torch.cat([log_decays, a.unsqueeze(1)], dim=1)[:, 1:]
        return (read * C.unsqueeze(1)).sum(-1), (past, log_decays)
    (h,) = carried
    h = decay * h + write
    if inf.state_norm is not None:
        assert count is not None
        due = (torch.remainder(count, inf.renorm_every) == 0).unsqueeze(-1)
        h = h * torch.where(due, renorm_factor(h, inf.tau(layer, h)), 1.0).unsqueeze(-1)
    h = quantise(h, grid)
    return (h * C.unsqueeze(1)).sum(-1), (h,)


def state_floats(inf: Inference, layers: int, width: int, n: int) -> int:
    """Floats per row of the incremental state (module docstring)."""
    if inf.window is not None:
        return layers * (inf.window * width * n + (inf.window - 1) * width)
    return layers * width * n + (1 if inf.state_norm is not None else 0)


# ------------------------------------------------------------------------------ calibration
def calibrate_state_norm(
    model: SSMModel, inputs: Tensor, multiplier: float = 1.0
) -> tuple[tuple[float, ...], ...]:
    """Thresholds τ[layer][c] = ``multiplier`` × the median over the rows of ``inputs``
    ``[rows, T_train]`` (reference rows at the training length; capacity.md: 256 of them) of
    ‖h_{T_train}[c, :]‖₂, the unmitigated model's state norm after the last token. Pass the
    result as ``model.with_inference(state_norm=…)``."""
    if not (isinstance(multiplier, int | float) and math.isfinite(multiplier) and multiplier > 0):
        raise UserError(f"calibrate_state_norm: multiplier must be > 0, got {multiplier!r}")
    trace = model.with_inference().state_trace(inputs, stride=int(inputs.shape[-1]))
    median = np.median(trace.norms[:, :, -1, :], axis=1)  # [layers, width]
    return tuple(tuple(float(multiplier * v) for v in row) for row in median)
