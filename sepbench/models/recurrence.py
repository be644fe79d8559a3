"""Batched recurrences with hand-written backward passes (BPTT) for E stacked RNNs at once.

Used by ensembles of the ``elman``/``lstm``/``gru``/``rag``/``hybrid`` families (E members, each
its own weights and its own data) and by the single sigmoid Elman network (E = 1), which
``torch.nn.RNN`` does not offer.

Why hand-written: a Python loop over time recorded by autograd costs ~20 graph nodes per step;
these ``torch.autograd.Function`` s run the forward loop without a graph (writing into
preallocated buffers with ``out=``) and the backward loop with a handful of fused kernels per
step (``sigmoid_backward``/``tanh_backward``), and compute the recurrent weight gradient with
one batched matmul over all steps at the end.

Layouts (all float tensors; E members, T steps, B rows, H units):

* ``xp : [E, T, B, G·H]`` — the input pre-activations ``W_ih x_t + biases`` for every step
  (G = 1 Elman, 3 GRU, 4 LSTM), computed by the caller;
* ``whh : [E, G·H, H]`` — the recurrent weights (``torch.nn`` orientation: pre = W h);
* the result ``hs : [E, T, B, H]`` — the hidden state after each step; the initial state is 0.

Gate orders here: LSTM ``i, f, o, g`` (the caller permutes torch's ``i, f, g, o`` once per call
so that one call activates the three sigmoid gates); GRU ``r, z, n`` as in torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

_aten = torch.ops.aten


def _act_(x: Tensor, nonlinearity: str) -> None:
    if nonlinearity == "tanh":
        x.tanh_()
    elif nonlinearity == "sigmoid":
        x.sigmoid_()
    else:
        x.relu_()


def _act_backward(grad: Tensor, out: Tensor, nonlinearity: str) -> Tensor:
    """d act / d pre, expressed through the activation's output ``out``."""
    if nonlinearity == "tanh":
        res: Tensor = _aten.tanh_backward(grad, out)
    elif nonlinearity == "sigmoid":
        res = _aten.sigmoid_backward(grad, out)
    else:
        res = _aten.threshold_backward(grad, out, 0)
    return res


def _prev_states(hs_full: Tensor) -> Tensor:
    """``[E, T+1, B, H]`` states (index 0 = initial) -> ``[E, T·B, H]`` view of h_{t-1}."""
    e, t1, b, h = hs_full.shape
    return hs_full[:, : t1 - 1].reshape(e, (t1 - 1) * b, h)


class _ElmanScan(torch.autograd.Function):
    """h_t = act(xp_t + W h_{t-1})."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, whh: Tensor, nonlinearity: str) -> Tensor:
        e, t_len, b, h = xp.shape
        hs = xp.new_empty(e, t_len + 1, b, h)
        hs[:, 0].zero_()
        w_t = whh.transpose(1, 2)
        for t in range(t_len):
            out = hs[:, t + 1]
            torch.baddbmm(xp[:, t], hs[:, t], w_t, out=out)
            _act_(out, nonlinearity)
        ctx.save_for_backward(whh, hs)
        ctx.nonlinearity = nonlinearity
        return hs[:, 1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, Tensor, None]:
        whh, hs = ctx.saved_tensors
        e, t1, b, h = hs.shape
        t_len = t1 - 1
        d_pre = torch.empty(e, t_len, b, h, dtype=hs.dtype, device=hs.device)
        dh = torch.zeros(e, b, h, dtype=hs.dtype, device=hs.device)
        for t in range(t_len - 1, -1, -1):
            dh.add_(d_hs[:, t])
            dp = d_pre[:, t]
            dp.copy_(_act_backward(dh, hs[:, t + 1], ctx.nonlinearity))
            torch.bmm(dp, whh, out=dh)
        d_w = torch.bmm(d_pre.reshape(e, t_len * b, h).transpose(1, 2), _prev_states(hs))
        return d_pre, d_w, None


class _LSTMScan(torch.autograd.Function):
    """Gates (order i, f, o, g) = xp_t + W h_{t-1}; c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, whh: Tensor) -> Tensor:
        e, t_len, b, g4 = xp.shape
        h = g4 // 4
        gates = torch.empty_like(xp)
        hs = xp.new_empty(e, t_len + 1, b, h)
        cs = xp.new_empty(e, t_len + 1, b, h)
        tcs = xp.new_empty(e, t_len, b, h)
        hs[:, 0].zero_()
        cs[:, 0].zero_()
        w_t = whh.transpose(1, 2)
        for t in range(t_len):
            g = gates[:, t]
            torch.baddbmm(xp[:, t], hs[:, t], w_t, out=g)
            g[..., : 3 * h].sigmoid_()
            g[..., 3 * h :].tanh_()
            c = cs[:, t + 1]
            torch.mul(g[..., h : 2 * h], cs[:, t], out=c)
            c.addcmul_(g[..., :h], g[..., 3 * h :])
            torch.tanh(c, out=tcs[:, t])
            torch.mul(g[..., 2 * h : 3 * h], tcs[:, t], out=hs[:, t + 1])
        ctx.save_for_backward(whh, gates, hs, cs, tcs)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, Tensor]:
        whh, gates, hs, cs, tcs = ctx.saved_tensors
        e, t_len, b, g4 = gates.shape
        h = g4 // 4
        d_gates = torch.empty_like(gates)
        dh = torch.zeros(e, b, h, dtype=hs.dtype, device=hs.device)
        dc = torch.zeros_like(dh)
        tmp = torch.empty_like(dh)
        for t in range(t_len - 1, -1, -1):
            g = gates[:, t]
            d = d_gates[:, t]
            gi, gf, go, gg = g[..., :h], g[..., h : 2 * h], g[..., 2 * h : 3 * h], g[..., 3 * h :]
            dh.add_(d_hs[:, t])
            tc = tcs[:, t]
            torch.mul(dh, tc, out=d[..., 2 * h : 3 * h])  # d o (before the sigmoid)
            torch.mul(dh, go, out=tmp)
            dc.add_(_aten.tanh_backward(tmp, tc))
            torch.mul(dc, gg, out=d[..., :h])  # d i
            torch.mul(dc, cs[:, t], out=d[..., h : 2 * h])  # d f
            torch.mul(dc, gi, out=d[..., 3 * h :])  # d g
            dc.mul_(gf)
            d[..., : 3 * h] = _aten.sigmoid_backward(d[..., : 3 * h], g[..., : 3 * h])
            d[..., 3 * h :] = _aten.tanh_backward(d[..., 3 * h :], gg)
            torch.bmm(d, whh, out=dh)
        d_w = torch.bmm(d_gates.reshape(e, t_len * b, g4).transpose(1, 2), _prev_states(hs))
        return d_gates, d_w


class _GRUScan(torch.autograd.Function):
    """a = W h_{t-1} + b_hh; r, z = sigmoid(xp_rz + a_rz); n = tanh(xp_n + r a_n);
    h_t = n + z (h_{t-1} - n)  (torch.nn.GRU's equations)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, whh: Tensor, bhh: Tensor) -> Tensor:
        e, t_len, b, g3 = xp.shape
        h = g3 // 3
        hh = torch.empty_like(xp)  # W h + b_hh, per step
        rz = xp.new_empty(e, t_len, b, 2 * h)
        ns = xp.new_empty(e, t_len, b, h)
        hs = xp.new_empty(e, t_len + 1, b, h)
        hs[:, 0].zero_()
        w_t = whh.transpose(1, 2)
        bias = bhh.unsqueeze(1)
        tmp = xp.new_empty(e, b, h)
        for t in range(t_len):
            a = hh[:, t]
            torch.baddbmm(bias, hs[:, t], w_t, out=a)
            x = xp[:, t]
            r_z = rz[:, t]
            torch.add(x[..., : 2 * h], a[..., : 2 * h], out=r_z)
            r_z.sigmoid_()
            n = ns[:, t]
            torch.addcmul(x[..., 2 * h :], r_z[..., :h], a[..., 2 * h :], out=n)
            n.tanh_()
            torch.sub(hs[:, t], n, out=tmp)
            torch.addcmul(n, r_z[..., h:], tmp, out=hs[:, t + 1])
        ctx.save_for_backward(whh, hh, rz, ns, hs)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        whh, hh, rz, ns, hs = ctx.saved_tensors
        e, t_len, b, g3 = hh.shape
        h = g3 // 3
        d_xp = torch.empty_like(hh)
        d_hh = torch.empty_like(hh)
        dh = torch.zeros(e, b, h, dtype=hs.dtype, device=hs.device)
        tmp = torch.empty_like(dh)
        for t in range(t_len - 1, -1, -1):
            dh.add_(d_hs[:, t])
            r, z, n = rz[:, t, :, :h], rz[:, t, :, h:], ns[:, t]
            dx = d_xp[:, t]
            da = d_hh[:, t]
            # d n (pre-activation) = dh (1 - z) tanh'(n)
            torch.mul(dh, z, out=tmp)
            torch.sub(dh, tmp, out=dx[..., 2 * h :])
            dx[..., 2 * h :] = _aten.tanh_backward(dx[..., 2 * h :], n)
            # d z = dh (h_{t-1} - n);  d r = dn_pre * a_n
            torch.sub(hs[:, t], n, out=da[..., h : 2 * h])
            da[..., h : 2 * h].mul_(dh)
            torch.mul(dx[..., 2 * h :], hh[:, t, :, 2 * h :], out=da[..., :h])
            dx[..., : 2 * h] = _aten.sigmoid_backward(da[..., : 2 * h], rz[:, t])
            da[..., : 2 * h] = dx[..., : 2 * h]
            torch.mul(dx[..., 2 * h :], r, out=da[..., 2 * h :])
            # dh_{t-1} = dh z + W^T da
            torch.baddbmm(tmp, da, whh, out=dh)
        d_w = torch.bmm(d_hh.reshape(e, t_len * b, g3).transpose(1, 2), _prev_states(hs))
        d_b = d_hh.sum(dim=(1, 2))
        return d_xp, d_w, d_b


def elman_scan(xp: Tensor, whh: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """Batched Elman recurrence; see the module docstring for layouts."""
    if nonlinearity not in ("tanh", "sigmoid", "relu"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
    out: Tensor = _ElmanScan.apply(xp, whh, nonlinearity)
    return out


def lstm_scan(xp: Tensor, whh: Tensor) -> Tensor:
    """Batched LSTM recurrence, gate order i, f, o, g; returns the hidden states."""
    out: Tensor = _LSTMScan.apply(xp, whh)
    return out


def gru_scan(xp: Tensor, whh: Tensor, bhh: Tensor) -> Tensor:
    """Batched GRU recurrence (torch's equations); ``xp`` holds W_ih x + b_ih only."""
    out: Tensor = _GRUScan.apply(xp, whh, bhh)
    return out
