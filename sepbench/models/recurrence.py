"""Batched recurrences with hand-written backward passes (BPTT) for E stacked RNNs at once.

Used by ensembles of the ``elman``/``lstm``/``gru``/``rag``/``hybrid`` families (E members, each
its own weights and its own data) and by the single sigmoid Elman network (E = 1), which
``torch.nn.RNN`` does not offer.

Why hand-written: a Python loop over time recorded by autograd costs ~20 graph nodes per step.
These ``torch.autograd.Function`` s run the forward loop without a graph, writing into
preallocated buffers, and the backward loop with a handful of fused kernels per step
(``sigmoid_backward``/``tanh_backward`` with ``out=``), accumulating the recurrent weight
gradient with one batched matmul per step.

Layout: time-major and *feature-major* — a step's states are ``[E, H, B]`` (features before
batch rows), so pre-activations are ``W @ h`` (``[E, G·H, H] @ [E, H, B]``) and every gate is a
contiguous run of H·B floats per member: elementwise kernels stay vectorised even at H = 8,
where slicing gates out of a ``[..., G·H]`` last dimension would not.

* the input pre-activations ``W_ih x_t + biases`` of every step (G = 1 Elman, 3 GRU, 4 LSTM),
  either as a tensor ``xp : [T, E, G·H, B]`` (layers above the first), or — for the first layer,
  whose input is a token — as a per-token table ``table : [E, G·H, V]`` plus the token ids
  ``idx : [T, E, B]``, gathered step by step (no [T, E, G·H, B] tensor, no transposes; the table's
  gradient is scatter-added step by step);
* ``whh : [E, G·H, H]`` — the recurrent weights (``torch.nn`` orientation: pre = W h);
* the result ``hs : [T, E, H, B]`` — the hidden state after each step; the initial state is 0.

Gate orders here: LSTM ``i, f, o, g`` (the caller permutes torch's ``i, f, g, o`` once per call
so that the three sigmoid gates are adjacent); GRU ``r, z, n`` as in torch.

Bounded precision (``grid``, :mod:`sepbench.models.precision`): every carried number is snapped
to the grid in place right after it is computed — the Elman/GRU state, the LSTM cell and then
h = o·tanh(snapped cell) — so the next step, the next layer and the readout read only snapped
values. The backward passes are the straight-through ones: gradients pass the snap unchanged
where the number lay inside the grid's range (the mask of :func:`~sepbench.models.precision.
inside`, needed only where the cell can leave it: the LSTM cell and relu states) and each
activation's derivative reads its unsnapped output (the Elman kernel keeps those; the GRU's
and the LSTM's backward never read a snapped value through a derivative). Without a grid the
loops are exactly the unquantised ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sepbench.models.precision import Grid, inside, snap_

_aten = torch.ops.aten


class _Source:
    """A step's input pre-activations: ``xp[t]``, or ``table`` gathered at ``idx[t]``."""

    def __init__(self, data: Tensor, idx: Tensor | None) -> None:
        self.data = data
        self.idx = idx
        if idx is None:
            self.steps = data.unbind(0)
            self.length = data.shape[0]
        else:
            e, f, _ = data.shape
            t_len, _, b = idx.shape
            self.length = t_len
            self.index = idx.unsqueeze(2).expand(t_len, e, f, b).unbind(0)

    def shape(self) -> tuple[int, int, int, int]:
        """(T, E, F, B)."""
        if self.idx is None:
            t, e, f, b = self.data.shape
            return t, e, f, b
        t, e, b = self.idx.shape
        return t, e, self.data.shape[1], b

    def load(self, t: int, out: Tensor) -> Tensor:
        """Write step t's pre-activations ``[E, F, B]`` into ``out``."""
        if self.idx is None:
            out.copy_(self.steps[t])
        else:
            torch.gather(self.data, 2, self.index[t], out=out)
        return out

    def grad_buffer(self) -> Tensor | None:
        """Where the backward pass accumulates d(table) (None in xp mode: the caller keeps the
        full per-step gradient buffer and returns it as d(xp))."""
        return None if self.idx is None else torch.zeros_like(self.data)

    def accumulate(self, buffer: Tensor | None, t: int, d: Tensor) -> None:
        if buffer is not None:
            buffer.scatter_add_(2, self.index[t], d)


def _act_(x: Tensor, nonlinearity: str) -> None:
    if nonlinearity == "tanh":
        x.tanh_()
    elif nonlinearity == "sigmoid":
        x.sigmoid_()
    else:
        x.relu_()


def _act_backward(grad: Tensor, out: Tensor, nonlinearity: str, result: Tensor) -> None:
    """``result = grad · act'(pre)``, expressed through the activation's output ``out``."""
    if nonlinearity == "tanh":
        _aten.tanh_backward.grad_input(grad, out, grad_input=result)
    elif nonlinearity == "sigmoid":
        _aten.sigmoid_backward.grad_input(grad, out, grad_input=result)
    else:
        _aten.threshold_backward.grad_input(grad, out, 0, grad_input=result)


class _ElmanScan(torch.autograd.Function):
    """h_t = act(xp_t + W h_{t-1}); with a grid, h_t = snap(act(·)) (straight-through)."""

    @staticmethod
    def forward(
        ctx: Any,
        data: Tensor,
        idx: Tensor | None,
        whh: Tensor,
        nonlinearity: str,
        grid: Grid | None,
    ) -> Tensor:
        src = _Source(data, idx)
        t_len, e, h, b = src.shape()
        hs = data.new_empty(t_len + 1, e, h, b)
        hs[0].zero_()
        h_steps = hs.unbind(0)
        raws = None if grid is None else data.new_empty(t_len, e, h, b)  # act(pre) unsnapped
        for t in range(t_len):
            out = src.load(t, h_steps[t + 1])
            out.baddbmm_(whh, h_steps[t])
            _act_(out, nonlinearity)
            if raws is not None:
                assert grid is not None
                raws[t].copy_(out)
                snap_(out, grid)
        ctx.save_for_backward(data, idx, whh, hs, raws)
        ctx.nonlinearity = nonlinearity
        ctx.grid = grid
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, None, Tensor, None, None]:
        data, idx, whh, hs, raws = ctx.saved_tensors
        src = _Source(data, idx)
        t1, e, h, b = hs.shape
        d_pre = hs.new_empty(t1 - 1, e, h, b)
        d_src = src.grad_buffer()
        dh = hs.new_empty(e, h, b)
        d_w = torch.zeros_like(whh)
        w_t = whh.transpose(1, 2)
        h_steps, d_steps, g_steps = hs.unbind(0), d_pre.unbind(0), d_hs.unbind(0)
        # the activation's derivative reads its own (unsnapped) output; only relu can leave
        # the grid's range ([0, 1]), so only relu needs the straight-through mask
        outs = h_steps[1:] if raws is None else raws.unbind(0)
        masks = (
            inside(raws, ctx.grid).unbind(0)
            if ctx.nonlinearity == "relu" and raws is not None
            else None
        )
        for t in range(t1 - 2, -1, -1):
            if t == t1 - 2:
                dh.copy_(g_steps[t])
            else:  # dL/dh_t = its own gradient + W^T (dL/dpre_{t+1})
                torch.baddbmm(g_steps[t], w_t, d_steps[t + 1], out=dh)
            if masks is not None:
                dh.mul_(masks[t])
            dp = d_steps[t]
            _act_backward(dh, outs[t], ctx.nonlinearity, dp)
            d_w.baddbmm_(dp, h_steps[t].transpose(1, 2))
            src.accumulate(d_src, t, dp)
        return (d_pre if d_src is None else d_src), None, d_w, None, None


class _LSTMScan(torch.autograd.Function):
    """Gates (order i, f, o, g) = xp_t + W h_{t-1}; c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    @staticmethod
    def forward(
        ctx: Any, data: Tensor, idx: Tensor | None, whh: Tensor, grid: Grid | None
    ) -> Tensor:
        src = _Source(data, idx)
        t_len, e, g4, b = src.shape()
        h = g4 // 4
        gates = data.new_empty(t_len, e, g4, b)  # activated: sigmoid(i, f, o), tanh(g)
        hs = data.new_empty(t_len + 1, e, h, b)
        cs = data.new_empty(t_len + 1, e, h, b)
        tcs = data.new_empty(t_len, e, h, b)  # tanh(c_t)
        qs = data.new_empty(t_len, e, h, b)  # o_t (1 - tanh(c_t)^2) = dh_t -> dc_t factor
        hs[0].zero_()
        cs[0].zero_()
        # 1 where the cell lay inside the grid's range before snapping (straight-through mask)
        c_masks = None if grid is None else data.new_empty(t_len, e, h, b)
        g_steps = gates.unbind(0)
        h_steps, c_steps, tc_steps, q_steps = (
            hs.unbind(0),
            cs.unbind(0),
            tcs.unbind(0),
            qs.unbind(0),
        )
        sig_steps = gates[:, :, : 3 * h].unbind(0)
        i_steps, f_steps = gates[:, :, :h].unbind(0), gates[:, :, h : 2 * h].unbind(0)
        o_steps, gg_steps = gates[:, :, 2 * h : 3 * h].unbind(0), gates[:, :, 3 * h :].unbind(0)
        for t in range(t_len):
            src.load(t, g_steps[t]).baddbmm_(whh, h_steps[t])
            sig_steps[t].sigmoid_()
            gg_steps[t].tanh_()
            c = c_steps[t + 1]
            torch.mul(f_steps[t], c_steps[t], out=c)
            c.addcmul_(i_steps[t], gg_steps[t])
            if c_masks is not None:  # the carried cell is the snapped one; h reads it
                assert grid is not None
                torch.abs(c, out=c_masks[t]).le_(grid.hi)
                snap_(c, grid)
            torch.tanh(c, out=tc_steps[t])
            torch.mul(o_steps[t], tc_steps[t], out=h_steps[t + 1])
            if grid is not None:  # |o tanh(c)| < 1: inside the grid, the mask is 1
                snap_(h_steps[t + 1], grid)
            _aten.tanh_backward.grad_input(o_steps[t], tc_steps[t], grad_input=q_steps[t])
        ctx.save_for_backward(data, idx, whh, gates, hs, cs, tcs, qs, c_masks)
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, None, Tensor, None]:
        data, idx, whh, gates, hs, cs, tcs, qs, c_masks = ctx.saved_tensors
        src = _Source(data, idx)
        t_len, e, g4, b = gates.shape
        h = g4 // 4
        d_gates = torch.empty_like(gates)
        d_src = src.grad_buffer()
        dh = hs.new_empty(e, h, b)
        dc = torch.zeros_like(dh)
        d_w = torch.zeros_like(whh)
        w_t = whh.transpose(1, 2)
        h_steps, c_steps, tc_steps, q_steps = (
            hs.unbind(0),
            cs.unbind(0),
            tcs.unbind(0),
            qs.unbind(0),
        )
        i_steps, f_steps = gates[:, :, :h].unbind(0), gates[:, :, h : 2 * h].unbind(0)
        gg_steps, sig_steps = gates[:, :, 3 * h :].unbind(0), gates[:, :, : 3 * h].unbind(0)
        d_steps, dsig_steps = d_gates.unbind(0), d_gates[:, :, : 3 * h].unbind(0)
        di_steps, df_steps = d_gates[:, :, :h].unbind(0), d_gates[:, :, h : 2 * h].unbind(0)
        do_steps = d_gates[:, :, 2 * h : 3 * h].unbind(0)
        dg_steps = d_gates[:, :, 3 * h :].unbind(0)
        grad_steps = d_hs.unbind(0)
        for t in range(t_len - 1, -1, -1):
            if t == t_len - 1:
                dh.copy_(grad_steps[t])
            else:  # dL/dh_t = its own gradient + W^T (dL/dgates_{t+1})
                torch.baddbmm(grad_steps[t], w_t, d_steps[t + 1], out=dh)
            dc.addcmul_(dh, q_steps[t])  # dc already holds f_{t+1} dL/dc_{t+1}
            if c_masks is not None:  # through the snap: dL/dc before it (clipped STE)
                dc.mul_(c_masks[t])
            torch.mul(dh, tc_steps[t], out=do_steps[t])
            torch.mul(dc, gg_steps[t], out=di_steps[t])
            torch.mul(dc, c_steps[t], out=df_steps[t])
            torch.mul(dc, i_steps[t], out=dg_steps[t])
            dc.mul_(f_steps[t])
            _aten.sigmoid_backward.grad_input(dsig_steps[t], sig_steps[t], grad_input=dsig_steps[t])
            _aten.tanh_backward.grad_input(dg_steps[t], gg_steps[t], grad_input=dg_steps[t])
            d_w.baddbmm_(d_steps[t], h_steps[t].transpose(1, 2))
            src.accumulate(d_src, t, d_steps[t])
        return (d_gates if d_src is None else d_src), None, d_w, None


class _GRUScan(torch.autograd.Function):
    """a = W h_{t-1} + b_hh; r, z = sigmoid(xp_rz + a_rz); n = tanh(xp_n + r a_n);
    h_t = n + z (h_{t-1} - n)  (torch.nn.GRU's equations)."""

    @staticmethod
    def forward(
        ctx: Any, data: Tensor, idx: Tensor | None, whh: Tensor, bhh: Tensor, grid: Grid | None
    ) -> Tensor:
        src = _Source(data, idx)
        t_len, e, g3, b = src.shape()
        h = g3 // 3
        hh = data.new_empty(t_len, e, g3, b)  # W h + b_hh, per step
        rz = data.new_empty(t_len, e, 2 * h, b)
        ns = data.new_empty(t_len, e, h, b)
        hmn = data.new_empty(t_len, e, h, b)  # h_{t-1} - n_t
        hs = data.new_empty(t_len + 1, e, h, b)
        x = data.new_empty(e, g3, b)  # this step's input pre-activations
        hs[0].zero_()
        bias = bhh.unsqueeze(2)
        a_steps, h_steps, rz_steps, n_steps = hh.unbind(0), hs.unbind(0), rz.unbind(0), ns.unbind(0)
        an_steps, hmn_steps = hh[:, :, 2 * h :].unbind(0), hmn.unbind(0)
        arz_steps = hh[:, :, : 2 * h].unbind(0)
        r_steps, z_steps = rz[:, :, :h].unbind(0), rz[:, :, h:].unbind(0)
        x_rz, x_n = x[:, : 2 * h], x[:, 2 * h :]
        for t in range(t_len):
            src.load(t, x)
            torch.baddbmm(bias, whh, h_steps[t], out=a_steps[t])
            r_z = rz_steps[t]
            torch.add(x_rz, arz_steps[t], out=r_z)
            r_z.sigmoid_()
            n = n_steps[t]
            torch.addcmul(x_n, r_steps[t], an_steps[t], out=n)
            n.tanh_()
            torch.sub(h_steps[t], n, out=hmn_steps[t])
            torch.addcmul(n, z_steps[t], hmn_steps[t], out=h_steps[t + 1])
            if grid is not None:  # h ∈ (−1, 1) lies inside the grid: the backward is unchanged
                snap_(h_steps[t + 1], grid)
        ctx.save_for_backward(data, idx, whh, hh, rz, ns, hmn, hs)
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor, None, Tensor, Tensor, None]:
        data, idx, whh, hh, rz, ns, hmn, hs = ctx.saved_tensors
        src = _Source(data, idx)
        t_len, e, g3, b = hh.shape
        h = g3 // 3
        d_xp = torch.empty_like(hh)
        d_hh = torch.empty_like(hh)
        d_src = src.grad_buffer()
        dh = hs.new_zeros(e, h, b)
        tmp = torch.zeros_like(dh)
        d_w = torch.zeros_like(whh)
        w_t = whh.transpose(1, 2)
        h_steps, n_steps, grad_steps = hs.unbind(0), ns.unbind(0), d_hs.unbind(0)
        r_steps, z_steps = rz[:, :, :h].unbind(0), rz[:, :, h:].unbind(0)
        rz_steps, hmn_steps = rz.unbind(0), hmn.unbind(0)
        an_steps = hh[:, :, 2 * h :].unbind(0)
        dx_steps, dxn_steps = d_xp.unbind(0), d_xp[:, :, 2 * h :].unbind(0)
        dxrz_steps = d_xp[:, :, : 2 * h].unbind(0)
        da_steps, dar_steps = d_hh.unbind(0), d_hh[:, :, :h].unbind(0)
        daz_steps, darz_steps = d_hh[:, :, h : 2 * h].unbind(0), d_hh[:, :, : 2 * h].unbind(0)
        dan_steps = d_hh[:, :, 2 * h :].unbind(0)
        for t in range(t_len - 1, -1, -1):
            if t == t_len - 1:
                dh.copy_(grad_steps[t])
            else:  # dL/dh_t = own gradient + z_{t+1} dL/dh_{t+1} + W^T dL/da_{t+1}
                tmp.add_(grad_steps[t])
                torch.baddbmm(tmp, w_t, da_steps[t + 1], out=dh)
            n, dxn = n_steps[t], dxn_steps[t]
            # d n (pre-activation) = dh (1 - z) tanh'(n)
            torch.mul(dh, z_steps[t], out=tmp)
            torch.sub(dh, tmp, out=dxn)
            _aten.tanh_backward.grad_input(dxn, n, grad_input=dxn)
            # d z = dh (h_{t-1} - n);  d r = dn_pre a_n  (both before their sigmoids)
            torch.mul(dh, hmn_steps[t], out=daz_steps[t])
            torch.mul(dxn, an_steps[t], out=dar_steps[t])
            _aten.sigmoid_backward.grad_input(darz_steps[t], rz_steps[t], grad_input=darz_steps[t])
            torch.mul(dxn, r_steps[t], out=dan_steps[t])
            d_w.baddbmm_(da_steps[t], h_steps[t].transpose(1, 2))
            if d_src is not None:
                dxrz_steps[t].copy_(darz_steps[t])
                src.accumulate(d_src, t, dx_steps[t])
        if d_src is None:
            d_xp[:, :, : 2 * h] = d_hh[:, :, : 2 * h]
        d_b = d_hh.sum(dim=(0, 3))
        return (d_xp if d_src is None else d_src), None, d_w, d_b, None


def elman_scan(
    source: Tensor,
    whh: Tensor,
    nonlinearity: str = "tanh",
    idx: Tensor | None = None,
    grid: Grid | None = None,
) -> Tensor:
    """Batched Elman recurrence over ``xp`` (or ``table`` gathered at ``idx``); see the module
    docstring for layouts. With ``grid`` every state is snapped to it (module docstring)."""
    if nonlinearity not in ("tanh", "sigmoid", "relu"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
    out: Tensor = _ElmanScan.apply(source.contiguous(), idx, whh, nonlinearity, grid)
    return out


def lstm_scan(
    source: Tensor, whh: Tensor, idx: Tensor | None = None, grid: Grid | None = None
) -> Tensor:
    """Batched LSTM recurrence, gate order i, f, o, g; returns the hidden states. With
    ``grid`` the cell and the hidden state are both snapped to it, the cell first."""
    out: Tensor = _LSTMScan.apply(source.contiguous(), idx, whh, grid)
    return out


def gru_scan(
    source: Tensor,
    whh: Tensor,
    bhh: Tensor,
    idx: Tensor | None = None,
    grid: Grid | None = None,
) -> Tensor:
    """Batched GRU recurrence (torch's equations); the input part holds W_ih x + b_ih only.
    With ``grid`` every state is snapped to it."""
    out: Tensor = _GRUScan.apply(source.contiguous(), idx, whh, bhh, grid)
    return out
