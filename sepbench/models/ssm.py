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
parallel form: ``selective_scan`` splits time into chunks, computes each chunk's outputs with
the masked decay matrix exp(L_t − L_s) (s ≤ t, L = cumulative Σ Δ A ≤ 0: only exponentials of
non-positive numbers), and passes states between chunks with the same identity one level up —
no Python loop over time. The state carried between steps is d × n floats per layer.

Parameters (per layer ``layers[l]``; ``torch.nn.Linear`` convention y = x Wᵀ + b):
``norm`` LayerNorm(d) or Identity; ``in_proj.weight`` [2d, d] (rows 0:d → u, d:2d → z) or
[d, d] without gate; ``dt_proj.weight/bias`` [d, d]/[d]; ``B_proj.weight`` [n, d];
``C_proj.weight`` [n, d]; ``A_log`` [d]; ``D`` [d]; ``out_proj.weight/bias`` [d, d].
Model: ``embed.weight`` [vocab, d], ``norm_f``, ``readout.weight/bias`` [vocab, d].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.models.access import Weights
from sepbench.models.base import SeqModel, State
from sepbench.models.cards import CARDS
from sepbench.models.transformer import norm

CHUNK = 8
"""Time steps per chunk of the parallel scan (work O(T·CHUNK·d), memory likewise)."""
SCAN_FLOATS = 1 << 20
"""Largest intra-chunk tensor (floats) the scan builds at once; more rows are scanned in turn."""


def selective_scan(a: Tensor, x: Tensor, B: Tensor, C: Tensor, chunk: int = CHUNK) -> Tensor:
    """y_t[c] = C_t · h_t[c, :] for h_t[c, :] = exp(a_t[c]) h_{t−1}[c, :] + x_t[c] B_t, h_0 = 0,
    for all t at once (a = Δ·A is the log-decay, x = Δ·u the write).

    Shapes: ``a, x : [..., T, d]`` (a ≤ 0), ``B, C : [..., T, n]`` → ``[..., T, d]``.
    """
    lead = a.shape[:-2]
    t_len, d = a.shape[-2:]
    n = B.shape[-1]
    a, x = a.reshape(-1, t_len, d), x.reshape(-1, t_len, d)
    B, C = B.reshape(-1, t_len, n), C.reshape(-1, t_len, n)
    # the intra-chunk tensors hold rows·T·chunk·d floats: keep them cache-sized (ensembles
    # fold their members into the rows) by scanning groups of rows one after another
    rows = max(1, SCAN_FLOATS // max(1, t_len * chunk * d))
    if a.shape[0] > rows:
        parts = [
            _scan(a[i : i + rows], x[i : i + rows], B[i : i + rows], C[i : i + rows], chunk)
            for i in range(0, a.shape[0], rows)
        ]
        return torch.cat(parts).reshape(*lead, t_len, d)
    return _scan(a, x, B, C, chunk).reshape(*lead, t_len, d)


def _scan(a: Tensor, x: Tensor, B: Tensor, C: Tensor, chunk: int) -> Tensor:
    """``selective_scan`` on ``[rows, T, ·]`` tensors."""
    bsz, t_len, d = a.shape
    n = B.shape[-1]
    k = max(1, min(chunk, t_len))
    pad = (-t_len) % k
    if pad:  # zero log-decay and zero writes after the end change nothing before it
        a, x = F.pad(a, (0, 0, 0, pad)), F.pad(x, (0, 0, 0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    nc = (t_len + pad) // k
    a = a.reshape(bsz, nc, k, d)
    x = x.reshape(bsz, nc, k, d)
    Bc = B.reshape(bsz, nc, k, n)
    Cc = C.reshape(bsz, nc, k, n)
    L = a.cumsum(dim=2)  # [b, c, k, d]: log-decay from the chunk start through step t

    # inside each chunk: y_t = Σ_{s<=t} (C_t·B_s) exp(L_t − L_s) x_s
    causal = torch.ones(k, k, dtype=torch.bool, device=a.device).tril()
    seg = L.unsqueeze(3) - L.unsqueeze(2)  # [b, c, t, s, d]
    decay = torch.exp(seg.masked_fill(~causal[:, :, None], float("-inf")))
    cb = Cc @ Bc.transpose(-1, -2)  # [b, c, t, s]
    y = ((cb.unsqueeze(-1) * decay) * x.unsqueeze(2)).sum(dim=3)  # [b, c, t, d]

    if nc > 1:
        # the state each chunk hands on: S_c = Σ_s exp(L_end − L_s) x_s B_s   [b, c, d, n]
        L_end = L[:, :, -1, :]  # [b, c, d]
        w = torch.exp(L_end.unsqueeze(2) - L) * x
        S = torch.einsum("bcsd,bcsn->bcdn", w, Bc)
        # state entering chunk c: Σ_{c' < c} exp(Q_{c−1} − Q_{c'}) S_{c'},  Q = cumsum(L_end)
        Q = L_end.cumsum(dim=1)
        Q_prev = Q - L_end
        before = torch.ones(nc, nc, dtype=torch.bool, device=a.device).tril(-1)
        seg2 = Q_prev.unsqueeze(2) - Q.unsqueeze(1)  # [b, c, c', d]
        D2 = torch.exp(seg2.masked_fill(~before[:, :, None], float("-inf")))
        H_in = torch.einsum("bxyd,bydn->bxdn", D2, S)
        y = y + torch.exp(L) * torch.einsum("bctn,bcdn->bctd", Cc, H_in)
    return y.reshape(bsz, nc * k, d)[:, :t_len]


class SSMLayer(nn.Module):
    """One residual selective-SSM layer (see the module docstring)."""

    def __init__(self, width: int, state_dim: int, layer_norm: bool, gate: bool) -> None:
        super().__init__()
        self.width = width
        self.state_dim = state_dim
        self.gate = gate
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

    def _inputs(self, x: Tensor, w: Weights) -> tuple[Tensor, Tensor | None]:
        uz = w.linear(w.norm(x, "norm"), "in_proj")
        if self.gate:
            u, z = uz.split(self.width, dim=-1)
            return u, z
        return uz, None

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, Weights.of(self))

    def run(self, x: Tensor, w: Weights) -> Tensor:
        """``x : [..., T, width]`` (a leading member dim E when ``w`` is stacked)."""
        u, z = self._inputs(x, w)
        delta = F.softplus(w.linear(u, "dt_proj"))
        a = delta * -torch.exp(w.vector("A_log", delta))
        y = selective_scan(a, delta * u, w.linear(u, "B_proj"), w.linear(u, "C_proj"), self.chunk)
        y = y + w.vector("D", u) * u
        if z is not None:
            y = y * F.silu(z)
        return x + w.linear(y, "out_proj")

    def step(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``x : [B, d]``, state ``h : [B, d, n]`` → (output [B, d], new state)."""
        u, z = self._inputs(x, Weights.of(self))
        delta = F.softplus(self.dt_proj(u))
        decay = torch.exp(delta * -torch.exp(self.A_log))
        h = decay.unsqueeze(-1) * h + (delta * u).unsqueeze(-1) * self.B_proj(u).unsqueeze(1)
        y = (h * self.C_proj(u).unsqueeze(1)).sum(-1) + self.D * u
        if z is not None:
            y = y * F.silu(z)
        return x + self.out_proj(y), h


class SSMModel(SeqModel):
    """Embedding → ``layers`` selective-SSM layers → final norm → readout."""

    family = "ssm"
    summary = CARDS["ssm"].summary
    options_spec = CARDS["ssm"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        self.embed = nn.Embedding(vocab_size, width)
        self.layers = nn.ModuleList(
            SSMLayer(width, o["state_dim"], o["layer_norm"], o["gate"]) for _ in range(o["layers"])
        )
        self.norm_f = norm(width, o["layer_norm"])
        self.readout = nn.Linear(width, vocab_size)

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        return self.run(inputs, Weights.of(self))

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        return self.run(inputs, Weights.stacked(self, params))

    def run(self, inputs: Tensor, w: Weights) -> Tensor:
        """Logits for ``inputs : [B, T]`` (stacked weights: ``[E, B, T]`` → ``[E, B, T, V]``)."""
        x = w.embed(inputs, "embed")
        for i, layer in enumerate(self.layers):
            x = cast(SSMLayer, layer).run(x, w.sub(f"layers.{i}"))
        return w.linear(w.norm(x, "norm_f"), "readout")

    def state_size(self, length: int) -> int:
        return self.options["layers"] * self.width * self.options["state_dim"]

    def init_state(self, batch_size: int) -> State:
        z = self.embed.weight.new_zeros(batch_size, self.width, self.options["state_dim"])
        return tuple(z.clone() for _ in self.layers)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        x = self.embed(tokens)
        new = []
        for layer, h in zip(self.layers, state, strict=True):
            x, h = cast(SSMLayer, layer).step(x, h)
            new.append(h)
        out: Tensor = self.readout(self.norm_f(x))
        return out, tuple(new)
