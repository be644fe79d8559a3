"""Deep-thinking network (family ``dtnet``): BA22's 1-D recurrent convolutional block with recall,
made causal.

BA22's ``dt_net_recall_1d`` (aks2203/deep-thinking, read for the architecture): a projection
conv (input → width, ReLU); a recurrent block of width-3 1-D convolutions — with recall, one
conv on [h; x] (width + input channels → width, ReLU), then two residual blocks of two convs
each (``relu(conv2(relu(conv1(h))) + h)``), five convs per iteration — applied R times with
shared weights; a head of three convs (width → width → width/2 → classes, ReLU between). No
biases, no normalisation.

Here, for token sequences under the library's causal contract:

* the input x is a learned embedding ``[vocab, embed_dim]`` of the tokens (BA22 feed one
  channel, bit − 0.5), and recall concatenates that embedding e before the block every
  iteration: h_r = Block([h_{r−1}; e]), h_0 = relu(project(e)) (BA22's initial thought);
* every convolution is **causal**: output t reads inputs t − 2, t − 1, t (zero left-padding
  by 2) instead of BA22's t − 1, t, t + 1. The task targets this family is for are causal
  functions (``prefix_sums``: the parity of the first t bits), so nothing they need is lost,
  and the model then obeys the contract of every family (logits at t see tokens ≤ t; stepping
  reproduces ``forward``; greedy generation works) with no exemption in the generic tests.
  Reach: BA22's block sees ±5 positions per iteration (and ±4 from projection and head); the
  causal one sees 10 positions back per iteration and 8 from projection and head, so position t
  reads position 1 once 10R + 8 ≥ t − 1 (R ≥ 51 for 512 bits; BA22's count for their
  symmetric net: 5R + 4 ≥ N − 1).

Parameters (w = width, d = embed_dim, V = vocab; every conv ``[out, in, 3]``, no bias):

===========================  ==================  ============================================
name                         shape               role
===========================  ==================  ============================================
``embed.weight``             [V, d]              token embedding e
``project.weight``           [w, d, 3]           h_0 = relu(project(e))
``recall.weight``            [w, w + d, 3]       relu(recall([h; e])) (``recall=true`` only)
``blocks[i].conv1.weight``   [w, w, 3]           residual block i ∈ {0, 1}: h ← relu(conv2(
``blocks[i].conv2.weight``   [w, w, 3]             relu(conv1(h))) + h)
``head_convs.0.weight``      [w, w, 3]           relu
``head_convs.1.weight``      [w/2, w, 3]         relu (w/2 = max(1, w // 2))
``head_convs.2.weight``      [V, w/2, 3]         logits
===========================  ==================  ============================================

Step-wise decoding keeps, for every convolution the computation passes through, its last two
input columns (its causal window): with R iterations that is a constant-size state,
``state_size = 2·(d + R·(c_r + 4w) + 2w + w/2)`` floats (c_r = w + d with recall, else 0) — for
a fixed R a DT-net is a finite-state causal machine, an RNN in the theory's sense.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.models.access import Weights
from sepbench.models.base import State
from sepbench.models.cards import CARDS, DTNET_KERNEL, dtnet_windows
from sepbench.models.depth import DepthModel

KERNEL = DTNET_KERNEL
"""Width of every convolution (BA22)."""


Conv = Callable[[Tensor, str], Tensor]
"""``conv(x, name)``: the convolution ``name`` applied to ``x : [..., C, T]``."""


def _half(width: int) -> int:
    return max(1, width // 2)


def causal_conv(x: Tensor, w: Weights, name: str) -> Tensor:
    """Causal width-3 convolution ``name`` on ``x : [B, C, T]`` → ``[B, O, T]`` (zero
    left-padding); with stacked weights ``[E, O, C, 3]`` and ``x : [E, B, C, T]``, one grouped
    convolution over the members."""
    weight = w.tensor(name + ".weight")
    x = F.pad(x, (KERNEL - 1, 0))
    if not w.is_stacked:
        return F.conv1d(x, weight)
    e, o, c, k = weight.shape
    b, t = x.shape[1], x.shape[-1]
    y = F.conv1d(x.transpose(0, 1).reshape(b, e * c, t), weight.reshape(e * o, c, k), groups=e)
    return y.view(b, e, o, -1).transpose(0, 1)


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, KERNEL, bias=False)
        self.conv2 = nn.Conv1d(width, width, KERNEL, bias=False)


class DTNetModel(DepthModel):
    """BA22's recall DT-net with causal convolutions (see the module docstring)."""

    family = "dtnet"
    summary = CARDS["dtnet"].summary
    options_spec = CARDS["dtnet"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        d = o["embed_dim"]
        self.embed = nn.Embedding(vocab_size, d)
        self.project = nn.Conv1d(d, width, KERNEL, bias=False)
        self.recall = nn.Conv1d(width + d, width, KERNEL, bias=False) if o["recall"] else None
        self.blocks = nn.ModuleList(_Residual(width) for _ in range(2))
        self.head_convs = nn.Sequential(
            nn.Conv1d(width, width, KERNEL, bias=False),
            nn.Conv1d(width, _half(width), KERNEL, bias=False),
            nn.Conv1d(_half(width), vocab_size, KERNEL, bias=False),
        )

    # The forward pass is written once against a ``conv`` callable: ``forward`` passes the
    # causal convolution over all T positions, ``step`` one that reads and extends each conv's
    # cached window.
    def _start(self, e: Tensor, conv: Conv) -> Tensor:
        return torch.relu(conv(e, "project"))

    def _iterate(self, h: Tensor, e: Tensor, conv: Conv) -> Tensor:
        if self.recall is not None:
            h = torch.relu(conv(torch.cat([h, e], dim=-2), "recall"))
        for i in range(len(self.blocks)):
            y = torch.relu(conv(h, f"blocks.{i}.conv1"))
            h = torch.relu(conv(y, f"blocks.{i}.conv2") + h)
        return h

    def _head(self, h: Tensor, conv: Conv) -> Tensor:
        h = torch.relu(conv(h, "head_convs.0"))
        h = torch.relu(conv(h, "head_convs.1"))
        return conv(h, "head_convs.2")

    # ----------------------------------------------------------------- the three parts
    def start(self, inputs: Tensor, w: Weights) -> tuple[Tensor, Tensor]:
        e = w.embed(inputs, "embed").transpose(-1, -2)  # [(E,) B, d, T]
        return e, self._start(e, _conv_of(w))

    def iterate(self, state: Tensor, context: Tensor, w: Weights) -> Tensor:
        return self._iterate(state, context, _conv_of(w))

    def head(self, state: Tensor, w: Weights) -> Tensor:
        return self._head(state, _conv_of(w)).transpose(-1, -2)

    # ----------------------------------------------------------------- step-wise decoding
    def _windows(self, count: int) -> list[int]:
        """Input channels of each conv in the order one token passes through them (the card's
        rule, :func:`sepbench.models.cards.dtnet_windows`)."""
        return dtnet_windows(self.width, self.options, count)

    def state_size(self, length: int, iterations: int | None = None) -> int:
        return (KERNEL - 1) * sum(self._windows(self.resolve_iterations(iterations)))

    def init_state(self, batch_size: int, iterations: int | None = None) -> State:
        p = self.embed.weight
        channels = self._windows(self.resolve_iterations(iterations))
        return tuple(p.new_zeros(batch_size, c, KERNEL - 1) for c in channels)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One token per row; the iteration count is the one ``init_state`` was given."""
        w = Weights.of(self)
        per = len(self._windows(1)) - len(self._windows(0))
        count = (len(state) - len(self._windows(0))) // per
        caches: Iterator[Tensor] = iter(state)
        new: list[Tensor] = []

        def conv(x: Tensor, name: str) -> Tensor:  # x : [B, C, 1]
            window = torch.cat([next(caches), x], dim=-1)
            new.append(window[..., 1:])
            return F.conv1d(window, w.tensor(name + ".weight"))

        e = self.embed(tokens)[:, :, None]
        h = self._start(e, conv)
        for _ in range(count):
            h = self._iterate(h, e, conv)
        return self._head(h, conv)[:, :, 0], tuple(new)


def _conv_of(w: Weights) -> Conv:
    return lambda x, name: causal_conv(x, w, name)
