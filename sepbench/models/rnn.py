"""Recurrent networks: families ``elman``, ``lstm``, ``gru`` and ``rag`` (an RNN used with
in-context retrieval).

Architecture: input encoding → ``layers`` recurrent layers of ``width`` units → linear readout.

Input encoding (option ``embedding``):

* ``learned`` (default): a table ``embed.weight : [vocab, embed_dim]`` (``embed_dim`` defaults to
  ``width``); the first layer reads ``x_t = embed.weight[token_t]``.
* ``onehot``: no table; the first layer reads the one-hot vector of the token
  (``embed_dim`` = vocab), so column v of ``rnn.weight_ih_l0`` *is* token v's input weight —
  the natural form for hand-built networks (H20): set one column per token.

The parameters live in a ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` module ``rnn``, so their names,
shapes and gate orders are PyTorch's:

==========================  ==================  ==========================================
name                        shape               meaning
==========================  ==================  ==========================================
``rnn.weight_ih_l{k}``      [G·width, d_in]     input weights of layer k (d_in = embed_dim,
                                                vocab for one-hot, width for k ≥ 1)
``rnn.weight_hh_l{k}``      [G·width, width]    recurrent weights
``rnn.bias_ih_l{k}``        [G·width]           input bias
``rnn.bias_hh_l{k}``        [G·width]           recurrent bias
``readout.weight/bias``     [vocab, width]      logits = h_t @ readout.weight.T + bias
==========================  ==================  ==========================================

G = 1 (Elman: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``), 4 (LSTM, row blocks
``i, f, g, o``: c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c')), 3 (GRU, row blocks
``r, z, n``: n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 − z) n + z h). The state
starts at zero. ``elman`` with ``nonlinearity="sigmoid"`` (H20's construction) has the same
parameters (``torch.nn.RNN`` has no sigmoid: its ``rnn`` module then refuses to be called
directly).

Which code runs: LSTMs run oneDNN's fused LSTM (``nn.LSTM``); Elman networks and GRUs run the
hand-written recurrences of :mod:`sepbench.models.recurrence` with one member (faster on CPU
than ``nn.RNN``/``nn.GRU``, see ``RecurrentStack.uses_kernel``). Ensembles of every cell run all
members at once through those recurrences (the fused kernels have no ``vmap`` rule).

Bounded precision (option ``state_bits`` p, :mod:`sepbench.models.precision`): every number
carried from one step to the next — h of every layer, and the cell c of an LSTM — is snapped
to 2^p levels right after it is computed (an LSTM snaps c first, then h = σ(o)·tanh(c) reads
the snapped c), with straight-through gradients. Grids: [−1, 1] for tanh Elman, GRU, LSTM h
and c (c clamped); [0, 1] for sigmoid and relu Elman (relu clamped). The readout and the next
layer read the snapped h, so the logits at step t depend on the tokens before t only through
the carried, snapped state. Every cell then runs the hand-written kernels (the LSTM too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.models.base import SeqModel, State
from sepbench.models.cards import CARDS
from sepbench.models.precision import Grid, elman_grid, quantise, unit
from sepbench.models.recurrence import elman_scan, gru_scan, lstm_scan

GATES = {"elman": 1, "lstm": 4, "gru": 3}


class RecurrentStack:
    """Input encoding + recurrent layers — the logic shared by RNN models and hybrids.

    A plain object holding no parameters: ``build()`` returns the ``embed`` and ``rnn`` modules
    for the owning model to register, so that parameter names stay flat (``embed.weight``,
    ``rnn.weight_ih_l0``); the methods take those modules (or stacked parameters) as arguments.
    """

    def __init__(self, vocab_size: int, width: int, cell: str, options: Mapping[str, Any]):
        self.vocab_size = vocab_size
        self.width = width
        self.cell = cell
        self.layers = int(options["layers"])
        self.nonlinearity = str(options.get("nonlinearity", "tanh"))
        self.onehot = options["embedding"] == "onehot"
        self.d_in = vocab_size if self.onehot else int(options["embed_dim"])
        self.forget_bias = float(options.get("forget_bias", 0.0))
        self.recurrent_init = str(options.get("recurrent_init", "default"))
        bits = options.get("state_bits")
        self.grid: Grid | None = None
        """The grid every carried number is snapped to (``state_bits``; None: unbounded)."""
        if bits is not None:
            self.grid = elman_grid(bits, self.nonlinearity) if cell == "elman" else unit(bits)

    def build(self) -> tuple[nn.Embedding | None, nn.Module]:
        embed = None if self.onehot else nn.Embedding(self.vocab_size, self.d_in)
        kw: dict[str, Any] = {"num_layers": self.layers, "batch_first": True}
        rnn: nn.Module
        if self.cell == "lstm":
            rnn = nn.LSTM(self.d_in, self.width, **kw)
        elif self.cell == "gru":
            rnn = nn.GRU(self.d_in, self.width, **kw)
        elif self.nonlinearity == "sigmoid":
            rnn = nn.RNN(self.d_in, self.width, nonlinearity="tanh", **kw)
            rnn.nonlinearity = "sigmoid"
            rnn.mode = "RNN_SIGMOID"  # torch's forward refuses this mode: use the model
        else:
            rnn = nn.RNN(self.d_in, self.width, nonlinearity=self.nonlinearity, **kw)
        self.initialise(rnn)
        return embed, rnn

    def initialise(self, rnn: nn.Module) -> None:
        """The options ``recurrent_init = "orthogonal"`` (each gate's ``width × width`` block of
        ``weight_hh`` a random orthogonal matrix) and ``forget_bias`` (added to the LSTM's
        forget-gate rows of ``bias_ih``, block f of i, f, g, o), applied after torch's own
        initialisation: with the defaults nothing is drawn, so seeded models are unchanged."""
        h = self.width
        with torch.no_grad():
            for k in range(self.layers):
                if self.recurrent_init == "orthogonal":
                    w_hh = _w(rnn, f"weight_hh_l{k}")
                    for g in range(GATES[self.cell]):
                        nn.init.orthogonal_(w_hh[g * h : (g + 1) * h])
                if self.forget_bias and self.cell == "lstm":
                    _w(rnn, f"bias_ih_l{k}")[h : 2 * h] += self.forget_bias

    @property
    def uses_kernel(self) -> bool:
        """Whether a single model runs sepbench's batched kernel (with E = 1) rather than torch's
        RNN module. Measured on CPU (B = 64, T = 64, widths 8-32, one thread): the kernel trains
        Elman and GRU networks 1.25-1.45x faster than ``nn.RNN``/``nn.GRU`` (whose CPU path
        records every step in autograd), while ``nn.LSTM`` (oneDNN's fused LSTM) is 1.6-2.6x
        faster than the kernel. Sigmoid Elman networks have no torch module at all, and
        quantised states (``state_bits``) need the kernel: the fused LSTM cannot snap its
        state between steps."""
        return self.cell in ("elman", "gru") or self.grid is not None

    def state_size(self) -> int:
        return self.layers * self.width * (2 if self.cell == "lstm" else 1)

    # ------------------------------------------------------------- forward passes
    def encode(self, embed: nn.Embedding | None, inputs: Tensor, like: Tensor) -> Tensor:
        if embed is None:
            return F.one_hot(inputs, self.vocab_size).to(like.dtype)
        out: Tensor = embed(inputs)
        return out

    def hidden(self, embed: nn.Embedding | None, rnn: nn.Module, inputs: Tensor) -> Tensor:
        """Top-layer states ``[B, T, width]`` of one model."""
        if self.uses_kernel:
            params = {f"rnn.{k}": v.unsqueeze(0) for k, v in rnn.named_parameters()}
            if embed is not None:
                params["embed.weight"] = embed.weight.unsqueeze(0)
            return self.hidden_batched(params, inputs.unsqueeze(0))[0]
        like = _w(rnn, "weight_hh_l0")
        out, _ = rnn(self.encode(embed, inputs, like))
        result: Tensor = out
        return result

    def hidden_batched(
        self, params: Mapping[str, Tensor], inputs: Tensor, kernel_layout: bool = False
    ) -> Tensor:
        """Top-layer states ``[E, B, T, width]`` (the kernels' ``[T, E, width, B]`` if
        ``kernel_layout``) of E stacked models (``params[name] : [E, *shape]`` with names
        ``embed.weight`` and ``rnn.*``; ``inputs : [E, B, T]``)."""
        h = self.width
        x: Tensor | None = None
        for k in range(self.layers):
            w_ih = params[f"rnn.weight_ih_l{k}"]
            w_hh = params[f"rnn.weight_hh_l{k}"]
            b_ih = params[f"rnn.bias_ih_l{k}"]
            b_hh = params[f"rnn.bias_hh_l{k}"]
            if self.cell == "lstm":  # torch's i, f, g, o -> the kernel's i, f, o, g
                perm = torch.cat(
                    [torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)]
                ).to(w_ih.device)
                w_ih, w_hh = w_ih.index_select(1, perm), w_hh.index_select(1, perm)
                b_ih, b_hh = b_ih.index_select(1, perm), b_hh.index_select(1, perm)
            bias = b_ih if self.cell == "gru" else b_ih + b_hh
            idx: Tensor | None = None
            if x is None:
                # first layer: a per-token table [E, G·H, V] of input pre-activations, which
                # the kernel gathers step by step at the token ids idx [T, E, B]
                if self.onehot:
                    source = w_ih + bias.unsqueeze(2)
                else:
                    source = torch.baddbmm(
                        bias.unsqueeze(2), w_ih, params["embed.weight"].transpose(1, 2)
                    )
                idx = inputs.permute(2, 0, 1)
            else:
                source = torch.matmul(w_ih, x) + bias.unsqueeze(2)  # [T, E, G·H, B]
            if self.cell == "lstm":
                x = lstm_scan(source, w_hh, idx=idx, grid=self.grid)
            elif self.cell == "gru":
                x = gru_scan(source, w_hh, b_hh, idx=idx, grid=self.grid)
            else:
                x = elman_scan(source, w_hh, self.nonlinearity, idx=idx, grid=self.grid)
        assert x is not None
        return x if kernel_layout else x.permute(1, 3, 0, 2)

    # ------------------------------------------------------------- stepping
    def init_state(self, rnn: nn.Module, batch_size: int) -> State:
        z = _w(rnn, "weight_hh_l0").new_zeros(self.layers, batch_size, self.width)
        return (z, z.clone()) if self.cell == "lstm" else (z,)

    def step(
        self, embed: nn.Embedding | None, rnn: nn.Module, tokens: Tensor, state: State
    ) -> tuple[Tensor, State]:
        """One step of the cell equations written out (independent of the fused kernels);
        with ``state_bits`` each carried number is quantised as soon as it is computed (the
        cell before h reads it), with straight-through gradients."""
        grid = self.grid
        x = self.encode(embed, tokens, _w(rnn, "weight_hh_l0"))
        hs, cs = [], []
        for k in range(self.layers):
            w_ih, w_hh = _w(rnn, f"weight_ih_l{k}"), _w(rnn, f"weight_hh_l{k}")
            b_ih, b_hh = _w(rnn, f"bias_ih_l{k}"), _w(rnn, f"bias_hh_l{k}")
            h = state[0][k]
            gi, gh = F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh)
            if self.cell == "lstm":
                i, f, gg, o = (gi + gh).chunk(4, dim=-1)
                c = torch.sigmoid(f) * state[1][k] + torch.sigmoid(i) * torch.tanh(gg)
                c = quantise(c, grid)
                h = torch.sigmoid(o) * torch.tanh(c)
                cs.append(c)
            elif self.cell == "gru":
                xr, xz, xn = gi.chunk(3, dim=-1)
                hr, hz, hn = gh.chunk(3, dim=-1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                h = (1 - z) * n + z * h
            else:
                pre = gi + gh
                if self.nonlinearity == "tanh":
                    h = torch.tanh(pre)
                elif self.nonlinearity == "relu":
                    h = torch.relu(pre)
                else:
                    h = torch.sigmoid(pre)
            h = quantise(h, grid)
            hs.append(h)
            x = h
        new: State = (torch.stack(hs),) + ((torch.stack(cs),) if cs else ())
        return x, new


def _w(module: nn.Module, name: str) -> Tensor:
    """A parameter of ``module`` by name (typed)."""
    t: Tensor = getattr(module, name)
    return t


def batched_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x : [E, ..., in]`` through E linear maps ``weight : [E, out, in]``, ``bias : [E, out]``."""
    e = x.shape[0]
    flat = x.reshape(e, -1, x.shape[-1])
    if bias is None:
        y = torch.bmm(flat, weight.transpose(1, 2))
    else:
        y = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return y.view(*x.shape[:-1], weight.shape[1])


class RecurrentModel(SeqModel):
    """Embedding → RNN layers → linear readout (see the module docstring for parameters)."""

    cell_kind: ClassVar[str | None] = None

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        cell = self.cell_kind or self.options["cell"]
        self.core = RecurrentStack(vocab_size, width, cell, self.options)
        self.embed, self.rnn = self.core.build()
        self.readout = nn.Linear(width, vocab_size)

    @property
    def cell(self) -> str:
        return self.core.cell

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        out: Tensor = self.readout(self.core.hidden(self.embed, self.rnn, inputs))
        return out

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        h = self.core.hidden_batched(params, inputs)  # [E, B, T, H]
        return batched_linear(h, params["readout.weight"], params["readout.bias"])

    def state_size(self, length: int) -> int:
        return self.core.state_size()

    def init_state(self, batch_size: int) -> State:
        return self.core.init_state(self.rnn, batch_size)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        h, new = self.core.step(self.embed, self.rnn, tokens, state)
        out: Tensor = self.readout(h)
        return out, new


class ElmanModel(RecurrentModel):
    family = "elman"
    summary = CARDS["elman"].summary
    cell_kind = "elman"
    options_spec = CARDS["elman"].options


class LSTMModel(RecurrentModel):
    family = "lstm"
    summary = CARDS["lstm"].summary
    cell_kind = "lstm"
    options_spec = CARDS["lstm"].options


class GRUModel(RecurrentModel):
    family = "gru"
    summary = CARDS["gru"].summary
    cell_kind = "gru"
    options_spec = CARDS["gru"].options


class RAGModel(RecurrentModel):
    """An RNN used with in-context retrieval (W24-RAG).

    The network is exactly the RNN chosen by ``cell``; ``uses_retrieval = True`` tells the
    generation loop (``sepbench.training``) that whenever the model has just emitted the task's
    ``retrieval_trigger`` token (e.g. ``[ENDSEARCH]``), the next token is written by
    ``task.retrieval_result(tokens_so_far)`` instead of sampled from the model — the model then
    reads it like any other input token. During teacher-forced training the retrieved tokens are
    simply inputs (their targets are IGNORE), so training needs nothing special.
    """

    family = "rag"
    summary = CARDS["rag"].summary
    uses_retrieval = CARDS["rag"].uses_retrieval
    options_spec = CARDS["rag"].options
