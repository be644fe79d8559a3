"""The selective scan: all outputs of a diagonal linear recurrence at once, linear in T.

Per row and channel c (a = log-decay ≤ 0, x = write, B / C = write / read vectors of size n):

    h_t[c, :] = exp(a_t[c]) h_{t−1}[c, :] + x_t[c] B_t,   h_0 = 0,   y_t[c] = C_t · h_t[c, :].

Unrolled, with L_t = Σ_{i≤t} a_i,  h_t = Σ_{s≤t} exp(L_t − L_s) x_s B_s.  Time is cut into
chunks of k steps (``CHUNK``):

* **inside a chunk** (quadratic form, no loop): y_t = Σ_{s≤t in chunk} (C_t·B_s) exp(L_t − L_s)
  x_s + exp(L_t − L_start) C_t · H_in, with L measured from the chunk start, so only
  exponentials of non-positive numbers appear (stable for any decay);
* **between chunks** (a loop over T/k chunk summaries, each one [rows, d, n] update): the state
  a chunk hands on is H_out = exp(Λ) H_in + S with Λ = the chunk's total log-decay and
  S = Σ_s exp(L_end − L_s) x_s B_s.

Work O(T·k·d + T·d·n); the intra-chunk tensors are built in slices of at most
``SCAN_FLOATS`` floats (the per-row cost no longer grows with (T/k)²: the earlier version
passed states between chunks through a dense [chunks × chunks × d] decay tensor, 134 MB a row
at T = 8192). The same pieces give the states every ``stride`` steps, the chunk-sequential
renormalisation of ``state_norm`` and, with restarts, the sliding window
(``window_scan``; options in ``sepbench.models.ssm_inference``).

Without gradients the intra-chunk terms are formed in place (no temporaries); with them,
out of place — the same arithmetic. Above the diagonal (s > t) L_t − L_s is clamped to 0 so
exp never overflows, and the read-write products C_t·B_s are zero there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sepbench.models.precision import Grid, quantise

CHUNK = 8
"""Time steps per chunk (intra-chunk work O(T·CHUNK·d); T/CHUNK steps in the inter-chunk loop)."""
SCAN_FLOATS = 1 << 20
"""Largest intra-chunk tensor (floats) built at once; more chunks are processed in turn."""


class Renorm(NamedTuple):
    """State normalisation: after step t ≡ 0 (mod ``every``), h[c] ← h[c]·min(1, τ[c]/‖h[c]‖)."""

    every: int
    tau: Tensor  # [d], ≥ 0


class ScanOut(NamedTuple):
    y: Tensor
    """``[..., T, d]``: y_t = C_t · h_t."""
    states: Tensor | None
    """``[..., T // stride, d, n]``: h_t after t = stride, 2·stride, … tokens (None: not asked)."""


def selective_scan(a: Tensor, x: Tensor, B: Tensor, C: Tensor, chunk: int = CHUNK) -> Tensor:
    """y_t[c] = C_t · h_t[c, :] for all t (module docstring).

    Shapes: ``a, x : [..., T, d]`` (a ≤ 0), ``B, C : [..., T, n]`` → ``[..., T, d]``.
    """
    return scan(a, x, B, C, chunk=chunk).y


def scan(
    a: Tensor,
    x: Tensor,
    B: Tensor,
    C: Tensor,
    *,
    chunk: int = CHUNK,
    stride: int = 0,
    renorm: Renorm | None = None,
    restart: int = 0,
    grid: Grid | None = None,
) -> ScanOut:
    """Outputs of the recurrence and, with ``stride`` > 0, its states every ``stride`` steps.

    With ``renorm`` the state is renormalised after every ``renorm.every``-th step, before that
    step's output is read (the map is nonlinear in h, so the inter-chunk loop is the only
    exact place for it); states at a renormalisation step are the renormalised ones. With
    ``restart`` > 0 the state handed on after every ``restart``-th step is zero: each block
    of ``restart`` steps is scanned from h = 0 (``window_scan`` builds on this). Either way
    the chunk length becomes the largest divisor of that period ≤ ``chunk``, so the points
    where the loop acts are chunk ends.

    With ``grid`` (bounded precision, :mod:`sepbench.models.precision`) the state is snapped
    to the grid after every step, straight-through — nonlinear at every step, so every step is
    its own chunk (period 1): the scan becomes the sequential loop of the inter-chunk pass,
    and each output reads its step's snapped state. Not combinable with ``renorm`` or
    ``restart`` (ValueError; the models refuse those options with a quantised state).
    """
    lead, (t_len, d), n = a.shape[:-2], a.shape[-2:], B.shape[-1]
    if grid is not None and (renorm is not None or restart):
        raise ValueError("a quantised scan takes no renorm and no restart")
    period = 1 if grid is not None else renorm.every if renorm is not None else restart
    if period:
        chunk = max(k for k in range(1, min(chunk, period) + 1) if period % k == 0)
    k = max(1, min(chunk, t_len))
    pad = (-t_len) % k
    flat = [v.reshape(-1, t_len, v.shape[-1]) for v in (a, x, B, C)]
    if pad:  # zero log-decay and zero writes after the end change nothing before it
        flat = [F.pad(v, (0, 0, 0, pad)) for v in flat]
    rows, nc = flat[0].shape[0], (t_len + pad) // k
    a4, x4, B4, C4 = (v.reshape(rows, nc, k, v.shape[-1]) for v in flat)
    L = a4.cumsum(dim=2)  # log-decay from the chunk start through each step

    y, S = _intra(L, x4, B4, C4)
    h_in, h_out, factor = _carry(L[:, :, -1], S, k, t_len, renorm, restart, grid)
    if grid is not None:  # k = 1: the output of each step reads its snapped state H_out
        y = C4 @ h_out.transpose(-1, -2)
    else:
        y = y + torch.exp(L) * (C4 @ h_in.transpose(-1, -2))  # C_t · exp(L_t) H_in [r, c, k, d]
    if factor is not None:  # the output at a renormalisation step reads the rescaled state
        y = torch.cat([y[:, :, :-1], y[:, :, -1:] * factor.unsqueeze(2)], dim=2)
    y = y.reshape(rows, nc * k, d)[:, :t_len].reshape(*lead, t_len, d)
    states = None
    if stride > 0:
        states = _states_at(L, x4, B4, h_in, h_out, stride, t_len).reshape(*lead, -1, d, n)
    return ScanOut(y, states)


def _intra(L: Tensor, x: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """Per chunk (``[rows, chunks, k, ·]``): the outputs from the chunk's own writes,
    Σ_{s≤t} (C_t·B_s) exp(L_t − L_s) x_s, and the state it hands on from a zero start,
    S = Σ_s exp(L_end − L_s) x_s B_s ``[rows, chunks, d, n]``. Computed in slices of chunks."""
    rows, nc, k, d = L.shape
    n = B.shape[-1]
    g = rows * nc
    Lf, xf, Bf, Cf = (v.reshape(g, k, v.shape[-1]) for v in (L, x, B, C))
    causal = torch.ones(k, k, dtype=L.dtype, device=L.device).tril()  # s ≤ t
    step = max(1, SCAN_FLOATS // (k * k * d))
    inplace = not torch.is_grad_enabled()
    ys, Ss = [], []
    for i in range(0, g, step):
        Li, xi, Bi, Ci = Lf[i : i + step], xf[i : i + step], Bf[i : i + step], Cf[i : i + step]
        cb = (Ci @ Bi.transpose(-1, -2)) * causal  # [g, t, s], zero for s > t
        # L_t − L_s ≤ 0 for s ≤ t; above the diagonal clamp it to 0 (there cb = 0) so that
        # exp never overflows into inf · 0
        seg = Li.unsqueeze(2) - Li.unsqueeze(1)  # [g, t, s, d]
        if inplace:  # the same arithmetic without temporaries (no autograd to feed)
            terms = seg.clamp_(max=0).exp_().mul_(cb.unsqueeze(-1)).mul_(xi.unsqueeze(1))
        else:
            terms = seg.clamp(max=0).exp() * cb.unsqueeze(-1) * xi.unsqueeze(1)
        ys.append(terms.sum(dim=2))
        w_end = torch.exp(Li[:, -1:] - Li) * xi  # [g, s, d]
        Ss.append(w_end.transpose(1, 2) @ Bi)  # [g, d, n]
    y = ys[0] if len(ys) == 1 else torch.cat(ys)
    S = Ss[0] if len(Ss) == 1 else torch.cat(Ss)
    return y.reshape(rows, nc, k, d), S.reshape(rows, nc, d, n)


def _carry(
    L_end: Tensor,
    S: Tensor,
    k: int,
    t_len: int,
    renorm: Renorm | None,
    restart: int = 0,
    grid: Grid | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The inter-chunk pass: H_out[c] = exp(Λ_c) H_in[c] + S_c, H_in[c + 1] = H_out[c],
    H_in[0] = 0 — one [rows, d, n] update per chunk. With ``renorm``, H_out is rescaled at
    renormalisation points; with ``restart``, H_in is zero after every restart point; with
    ``grid``, H_out is snapped to it (straight-through). Returns (H_in, H_out, per-chunk
    factors [rows, chunks, d] or None)."""
    rows, nc, d, n = S.shape
    decay = torch.exp(L_end).unsqueeze(-1)  # [r, c, d, 1]
    zero = S.new_zeros(rows, d, n)
    one = S.new_ones(rows, d)
    h = zero
    ins, outs, factors = [], [], []
    for c in range(nc):
        ins.append(h)
        h = decay[:, c] * h + S[:, c]
        end = (c + 1) * k
        if renorm is not None and end % renorm.every == 0 and end <= t_len:
            f = renorm_factor(h, renorm.tau)
            h = h * f.unsqueeze(-1)
            factors.append(f)
        else:
            factors.append(one)
        h = quantise(h, grid)
        outs.append(h)
        if restart and end % restart == 0:
            h = zero
    h_in, h_out = torch.stack(ins, dim=1), torch.stack(outs, dim=1)
    return h_in, h_out, torch.stack(factors, dim=1) if renorm is not None else None


def renorm_factor(h: Tensor, tau: Tensor) -> Tensor:
    """min(1, τ[c] / ‖h[c, :]‖₂) per channel (``h : [..., d, n]`` → ``[..., d]``); a zero
    state keeps factor 1."""
    norm = torch.linalg.vector_norm(h, dim=-1)
    tau = tau.to(h)
    return torch.where(norm > tau, tau / norm.clamp_min(torch.finfo(h.dtype).tiny), 1.0)


def traced_positions(t_len: int, stride: int, device: torch.device) -> Tensor:
    """0-based indices of the steps after which states are returned: stride − 1, 2·stride − 1, …"""
    return torch.arange(t_len // stride, device=device) * stride + (stride - 1)


def _states_at(
    L: Tensor, x: Tensor, B: Tensor, h_in: Tensor, h_out: Tensor, stride: int, t_len: int
) -> Tensor:
    """h_t after t = stride, 2·stride, … ≤ T tokens: a chunk-end state is H_out (renormalised
    where that applies; renormalisation happens only at chunk ends); any other is
    exp(L_t) H_in + Σ_{s≤t in chunk} exp(L_t − L_s) x_s B_s. → ``[rows, m, d, n]``."""
    rows, _, k, d = L.shape
    pos = traced_positions(t_len, stride, L.device)
    c, o = pos // k, pos % k
    if bool((o == k - 1).all()):
        return h_out[:, c]
    Lc, xc, Bc = L[:, c], x[:, c], B[:, c]  # [r, m, k, ·]
    L_t = Lc.gather(2, o.view(1, -1, 1, 1).expand(rows, -1, 1, d))  # [r, m, 1, d]
    after = torch.arange(k, device=L.device).view(1, k) > o.view(-1, 1)  # s > t  [m, k]
    w = torch.exp((L_t - Lc).masked_fill(after[None, :, :, None], float("-inf"))) * xc
    inner = w.transpose(-1, -2) @ Bc  # [r, m, d, n]
    h = torch.exp(L_t.squeeze(2)).unsqueeze(-1) * h_in[:, c] + inner
    at_end = (o == k - 1).view(1, -1, 1, 1)
    return torch.where(at_end, h_out[:, c], h)


def window_scan(
    a: Tensor, x: Tensor, B: Tensor, C: Tensor, window: int, *, stride: int = 0
) -> ScanOut:
    """The sliding window: y_t = C_t · h_t^(W), h_t^(W) = Σ_{t−W<s≤t} exp(L_t − L_s) x_s B_s
    (the state of the last W steps alone), and with ``stride`` those states every ``stride``
    steps. Linear in T, and nothing cancels.

    Cut time into blocks of W steps. For t in block j, the window is the head of block j up
    to t plus the tail of block j − 1 after t − W:

        h_t^(W) = P_t + exp(L_t − L_{jW}) R_{j−1}(t − W + 1),

    with P_t the state of block j alone (``scan`` restarted every W steps; L_{jW} the
    log-decay through the last step of block j − 1) and R_{j−1}(r) = Σ_{r≤s in block j−1}
    exp(L_end − L_s) x_s B_s the suffix state of block j − 1 (a reverse cumulative sum of
    terms whose exponents are ≤ 0). Work O(T·(k + n)·d) — not O(T·W·d) like the banded
    quadratic form capacity.md sketches, and no long state is formed, so the collapsed states
    that nearly cancel in h_t − exp(L_t − L_{t−W}) h_{t−W} never appear. Suffix states take
    T·d·n floats a row, built for groups of rows of at most 4·``SCAN_FLOATS`` floats. The
    restarts need chunk ends at multiples of W: a W with no divisor from 2 to ``CHUNK`` (a
    prime, say) scans one step per chunk — correct, but a Python loop over T (as is a prime
    ``renorm_every``).
    """
    lead, (t_len, d), n = a.shape[:-2], a.shape[-2:], B.shape[-1]
    if window >= t_len:  # every window holds the whole prefix
        return scan(a, x, B, C, stride=stride)
    head = scan(a, x, B, C, stride=stride, restart=window)
    pad = (-t_len) % window
    flat = [F.pad(v.reshape(-1, t_len, v.shape[-1]), (0, 0, 0, pad)) for v in (a, x, B, C)]
    rows, nb = flat[0].shape[0], (t_len + pad) // window
    group = max(1, 4 * SCAN_FLOATS // ((t_len + pad) * d * n))
    ys, states = [], []
    for r in range(0, rows, group):
        ab, xb, Bb, Cb = (v[r : r + group].reshape(-1, nb, window, v.shape[-1]) for v in flat)
        L = ab.cumsum(dim=2)  # from each block's start
        terms = (torch.exp(L[:, :, -1:] - L) * xb).unsqueeze(-1) * Bb.unsqueeze(-2)
        suffix = terms.flip(2).cumsum(dim=2).flip(2)  # R(r), r = 0 … W − 1  [g, b, W, d, n]
        # at local step i of block j the tail is R_{j−1}(i + 1): shift by one step, one block
        tail = F.pad(suffix[:, :-1, 1:], (0, 0, 0, 0, 0, 1, 1, 0))
        tail = torch.exp(L).unsqueeze(-1) * tail  # [g, b, W, d, n]
        ys.append((tail @ Cb.unsqueeze(-1)).squeeze(-1).reshape(-1, nb * window, d))
        if stride > 0:
            pos = traced_positions(t_len, stride, a.device)
            states.append(tail.reshape(-1, nb * window, d, n)[:, pos])
    y = head.y + torch.cat(ys)[:, :t_len].reshape(*lead, t_len, d)
    if head.states is None:
        return ScanOut(y, None)
    return ScanOut(y, head.states + torch.cat(states).reshape(head.states.shape))
