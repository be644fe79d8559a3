"""Selective state-space model (family ``ssm``), Mamba style, in plain PyTorch.

One layer (width d, state size n = ``state_dim``) maps the residual stream x[B, T, d] to
x + out_proj(y) where, from u = in_proj(norm(x)) (and the gate z when ``gate=True``):

* step sizes   Δ_t = softplus(dt_proj(u_t))                 [d]     (input-dependent decay)
* decay rates  A = −exp(A_log)                               [d]     (negative, per channel)
* write/read   B_t = B_proj(u_t), C_t = C_proj(u_t)           [n]     (input-dependent)
* state        h_t[c, :] = exp(Δ_t[c] A[c]) h_{t−1}[c, :] + Δ_t[c] u_t[c] B_t      [d × n]
* output       y_t[c] = C_t · h_t[c, :] + D[c] u_t[c];  y ← y ⊙ silu(z_t) if gated.

The decay is one number per channel (Mamba-2's scalar-per-head structure with head dimension 1;
Mamba-1 has one per channel *and* state index). That makes the scan exact and stable in
parallel form: ``ssm_scan.selective_scan`` splits time into chunks, computes each chunk's
outputs with the masked decay matrix exp(L_t − L_s) (s ≤ t, L = cumulative Σ Δ A ≤ 0: only
exponentials of non-positive numbers), and hands states from chunk to chunk in a loop over
T/chunk summaries (linear in T). The state carried between steps is d × n floats per layer.

Bounded precision (option ``state_bits`` p): the state is snapped to 2^p levels on [−1, 1]
after every step (straight-through gradients; :mod:`sepbench.models.precision`), and the
output reads the snapped state, y_t = C_t · snap(h_t). The recurrence is then nonlinear, so the
scan runs its chunk-sequential path with one step per chunk (``ssm_scan.scan``): a loop over
T, much slower than the parallel scan (docs/precision.md has the measurement). Of the
inference options, a quantised model takes the scales only.

Inference time (``sepbench.models.ssm_inference``, ``sepbench.models.collapse``):
``model.with_inference(**options)`` — a weight-sharing copy with the training-free collapse
mitigations (decay/write scaling, state normalisation, sliding window); ``model.state_trace(
inputs, stride)`` — per-layer, per-channel state norms and cumulative log-decays for the
collapse detector.

Parameters (per layer ``layers[l]``; ``torch.nn.Linear`` convention y = x Wᵀ + b):
``norm`` LayerNorm(d) or Identity; ``in_proj.weight`` [2d, d] (rows 0:d → u, d:2d → z) or
[d, d] without gate; ``dt_proj.weight/bias`` [d, d]/[d]; ``B_proj.weight`` [n, d];
``C_proj.weight`` [n, d]; ``A_log`` [d]; ``D`` [d]; ``out_proj.weight/bias`` [d, d].
Model: ``embed.weight`` [vocab, d], ``norm_f``, ``readout.weight/bias`` [vocab, d].
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.access import Weights
from sepbench.models.base import SeqModel, State
from sepbench.models.cards import CARDS
from sepbench.models.collapse import StateTrace
from sepbench.models.precision import Grid, unit
from sepbench.models.ssm_inference import (
    PLAIN,
    Inference,
    layer_scan,
    layer_state,
    layer_step,
    parse_inference,
    state_floats,
)
from sepbench.models.ssm_scan import CHUNK, SCAN_FLOATS, selective_scan
from sepbench.models.transformer import norm

__all__ = ["CHUNK", "SCAN_FLOATS", "SSMLayer", "SSMModel", "selective_scan"]


def state_grid(options: Mapping[str, Any]) -> Grid | None:
    """The SSM state's grid under ``state_bits`` p: [−1, 1] (a range [−R, R] is the same model
    with B_proj / R and C_proj · R: the recurrence and the read are linear in h), 2^p levels;
    None without the option."""
    bits = options.get("state_bits")
    return None if bits is None else unit(int(bits))


class Coefficients(NamedTuple):
    """One layer's recurrence inputs for ``x : [..., T, d]`` (or one step ``[B, d]``)."""

    u: Tensor  # [..., d] the SSM input (after in_proj)
    z: Tensor | None  # [..., d] the gate input
    a: Tensor  # [..., d] log-decay ≤ 0 (after the inference scales)
    x: Tensor  # [..., d] write (after the inference scales)
    B: Tensor  # [..., n]
    C: Tensor  # [..., n]


class SSMLayer(nn.Module):
    """One residual selective-SSM layer (see the module docstring)."""

    def __init__(
        self, width: int, state_dim: int, layer_norm: bool, gate: bool, grid: Grid | None = None
    ) -> None:
        super().__init__()
        self.width = width
        self.state_dim = state_dim
        self.gate = gate
        self.grid = grid
        """The grid the state is snapped to after every step (``state_bits``; None: none)."""
        self.chunk = CHUNK
        self.norm = norm(width, layer_norm)
        self.in_proj = nn.Linear(width, 2 * width if gate else width)
        self.dt_proj = nn.Linear(width, width)
        self.B_proj = nn.Linear(width, state_dim, bias=False)
        self.C_proj = nn.Linear(width, state_dim, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.empty(width).uniform_(1.0, 16.0)))
        self.D = nn.Parameter(torch.ones(width))
        self.out_proj = nn.Linear(width, width)
        with torch.no_grad():  # Mamba's initial step sizes: log-uniform in [1e-3, 1e-1]
            dt = torch.exp(torch.empty(width).uniform_(math.log(1e-3), math.log(1e-1)))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)

    def coefficients(self, x: Tensor, w: Weights, inf: Inference = PLAIN) -> Coefficients:
        """Δ = softplus(dt_proj(u)), a = Δ·A, write Δ·u, B, C — adjusted by ``inf``."""
        uz = w.linear(w.norm(x, "norm"), "in_proj")
        u, z = uz.split(self.width, dim=-1) if self.gate else (uz, None)
        delta = F.softplus(w.linear(u, "dt_proj"))
        a, write = inf.adjust(delta, -torch.exp(w.vector("A_log", delta)), u)
        return Coefficients(u, z, a, write, w.linear(u, "B_proj"), w.linear(u, "C_proj"))

    def output(self, x: Tensor, y: Tensor, c: Coefficients, w: Weights) -> Tensor:
        """x + out_proj((y + D u) ⊙ silu(z)) from the scan's C_t · h_t."""
        y = y + w.vector("D", c.u) * c.u
        if c.z is not None:
            y = y * F.silu(c.z)
        return x + w.linear(y, "out_proj")

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, Weights.of(self))

    def run(self, x: Tensor, w: Weights, inf: Inference = PLAIN, index: int = 0) -> Tensor:
        """``x : [..., T, width]`` (a leading member dim E when ``w`` is stacked); ``index``:
        this layer's position in the stack (its ``state_norm`` thresholds)."""
        return self.run_traced(x, w, inf, index)[0]

    def run_traced(
        self, x: Tensor, w: Weights, inf: Inference, index: int, stride: int = 0
    ) -> tuple[Tensor, Coefficients, Tensor | None]:
        """``run`` plus the coefficients and (``stride`` > 0) the states read every
        ``stride``-th step ``[..., T // stride, width, n]``."""
        c = self.coefficients(x, w, inf)
        out = layer_scan(inf, index, c.a, c.x, c.B, c.C, stride, self.grid)
        return self.output(x, out.y, c, w), c, out.states

    def step(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``x : [B, d]``, state ``h : [B, d, n]`` → (output [B, d], new state)."""
        out, (h,) = self.step_with(x, (h,), PLAIN, 0, None)
        return out, h

    def step_with(
        self,
        x: Tensor,
        carried: tuple[Tensor, ...],
        inf: Inference,
        index: int,
        count: Tensor | None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One incremental step under ``inf`` (state layout: ``ssm_inference``)."""
        w = Weights.of(self)
        c = self.coefficients(x, w, inf)
        y, carried = layer_step(inf, index, carried, c.a, c.x, c.B, c.C, count, self.grid)
        return self.output(x, y, c, w), carried


class SSMModel(SeqModel):
    """Embedding → ``layers`` selective-SSM layers → final norm → readout."""

    family = "ssm"
    summary = CARDS["ssm"].summary
    options_spec = CARDS["ssm"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        self.embed = nn.Embedding(vocab_size, width)
        self.grid = state_grid(o)
        self.layers = nn.ModuleList(
            SSMLayer(width, o["state_dim"], o["layer_norm"], o["gate"], self.grid)
            for _ in range(o["layers"])
        )
        self.norm_f = norm(width, o["layer_norm"])
        self.readout = nn.Linear(width, vocab_size)
        self.inference: Inference = PLAIN
        """Inference-time mitigations (``with_inference``); not part of ``config()``."""

    def with_inference(self, **options: Any) -> SSMModel:
        """A copy sharing this model's parameters (and modules) that runs with exactly these
        inference options — ``decay_scale``, ``write_scale``, ``dt_scale``, ``state_norm``,
        ``renorm_every``, ``window`` (``sepbench.models.ssm_inference``; none: the plain
        model). Forward, ensemble forward, ``step`` and ``state_trace`` all honour them. An
        unknown option, a bad value or a combination the SSM cannot honour → UserError."""
        inference = parse_inference(
            self.family, len(self.layers), self.width, options, self.grid is not None
        )
        twin = copy.copy(self)
        twin.inference = inference
        return twin

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        return self.run(inputs, Weights.of(self))

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        return self.run(inputs, Weights.stacked(self, params))

    def run(self, inputs: Tensor, w: Weights) -> Tensor:
        """Logits for ``inputs : [B, T]`` (stacked weights: ``[E, B, T]`` → ``[E, B, T, V]``)."""
        x = w.embed(inputs, "embed")
        for i, layer in enumerate(self.layers):
            x = cast(SSMLayer, layer).run(x, w.sub(f"layers.{i}"), self.inference, i)
        return w.linear(w.norm(x, "norm_f"), "readout")

    def state_trace(self, inputs: Tensor, stride: int = 16) -> StateTrace:
        """Per layer and channel, after every ``stride``-th token of ``inputs : [rows, T]``:
        the norm of the state the layer reads, ‖h_t[c, :]‖₂, and the cumulative log-decay
        L_t[c] = Σ_{i≤t} a_i[c] (both under this model's inference options: the renormalised
        state with ``state_norm``, the window's state with ``window``), plus the mean and
        variance of all state entries. Computed by the parallel scan, without gradients;
        statistics in float64. → :class:`sepbench.models.collapse.StateTrace`."""
        self._check_inputs(inputs)
        t_len = inputs.shape[1]
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= t_len:
            raise UserError(
                f"state_trace: stride must be an integer in [1, {t_len}] (the input length), "
                f"got {stride!r}"
            )
        w = Weights.of(self)
        norms, log_decay, first, mean, var = [], [], [], [], []
        with torch.no_grad():
            x = w.embed(inputs, "embed")
            for i, layer in enumerate(self.layers):
                x, c, states = cast(SSMLayer, layer).run_traced(
                    x, w.sub(f"layers.{i}"), self.inference, i, stride
                )
                assert states is not None
                h = states.double()  # [rows, m, d, n]
                L = c.a.double().cumsum(dim=1)  # [rows, T, d]
                norms.append(torch.linalg.vector_norm(h, dim=-1))
                log_decay.append(L[:, stride - 1 :: stride][:, : h.shape[1]])
                first.append(L[:, 0])
                mean.append(h.mean(dim=(-1, -2)))
                var.append(h.var(dim=(-1, -2), unbiased=False))
        arr = lambda xs: np.stack([v.cpu().numpy() for v in xs])  # noqa: E731
        return StateTrace(
            steps=tuple(range(stride, t_len + 1, stride)),
            norms=arr(norms),
            log_decay=arr(log_decay),
            first_log_decay=arr(first),
            mean=arr(mean),
            variance=arr(var),
        )

    def state_size(self, length: int) -> int:
        o = self.options
        return state_floats(self.inference, o["layers"], self.width, o["state_dim"])

    def state_bits(self, length: int) -> int:
        """The card's rule; a window or renormalisation (unquantised only) carries more floats
        (``state_size``), each counting its float's bits."""
        if self.grid is None:
            return self.state_size(length) * self.float_bits()
        return super().state_bits(length)

    def init_state(self, batch_size: int) -> State:
        like = self.embed.weight
        n, inf = self.options["state_dim"], self.inference
        state = [t for _ in self.layers for t in layer_state(inf, batch_size, self.width, n, like)]
        if inf.state_norm is not None:
            state.append(like.new_zeros(batch_size))  # tokens read
        return tuple(state)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        inf = self.inference
        count = None
        if inf.state_norm is not None:
            count, state = state[-1] + 1, state[:-1]
        per = len(state) // len(self.layers)
        x = self.embed(tokens)
        new: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            x, carried = cast(SSMLayer, layer).step_with(
                x, tuple(state[i * per : (i + 1) * per]), inf, i, count
            )
            new.extend(carried)
        if count is not None:
            new.append(count)
        out: Tensor = self.readout(self.norm_f(x))
        return out, tuple(new)
