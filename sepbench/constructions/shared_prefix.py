"""Every query against one context at the cost of about two forward passes: the last
position's logits of many inputs that share all but their last token.

A model's computation at positions 0 … P − 1 never depends on the token at position P
(causality), so R inputs ``prefix + [final_r]`` share everything but their last position.
Checking a query at every position p = 1 … N of one string (index lookup), every point of
one point set (nearest neighbour) or every key of one context (associative recall) then
costs one pass over the prefix plus R last positions — instead of R full passes, which is
what makes "every position at every N" affordable at N = 4096.

* :class:`~sepbench.models.transformer.TransformerModel` (:func:`_transformer_last`): the
  prefix goes through the model's own layers once (``Attention.run``, the MLPs, batch 1),
  keeping each layer's keys and values; each final token's position then attends to those
  and to itself. The last-position arithmetic is written here, step for step the same as
  ``Block.run`` restricted to one position (the tests compare it with ``module(inputs)``,
  and :func:`sepbench.constructions.verify.check` compares it with the full pass on two
  rows of every float64 run). Under simulated precision
  (:class:`~sepbench.constructions.precision.Rounding`) every operation is rounded as in the
  full pass, except that the attention output is rounded after its prefix part, its own
  part and their sum, where the full pass rounds the whole weighted sum once: another valid
  p-bit evaluation of the same network, one rounding finer.
* any other model with ``init_state``/``step`` (:func:`_stepped_last`): the prefix is
  stepped once (batch 1) and its state broadcast to the final tokens (rows in chunks).
* otherwise: full passes over ``prefix + [final]`` rows.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from sepbench.models.access import Weights
from sepbench.models.transformer import Attention, Block, TransformerModel, rope

SCORE_ENTRIES = 1 << 22
"""Rows per chunk: rows × heads × prefix length ≤ this many attention scores."""
STEP_ENTRIES = 1 << 24
"""Rows per chunk of the stepped path: rows × state floats ≤ this many."""


@torch.no_grad()
def last_logits(module: nn.Module, prefix: np.ndarray, finals: np.ndarray) -> Tensor:
    """Logits ``[R, V]`` at the last position of the inputs ``prefix + [finals[r]]``."""
    prefix_t = torch.from_numpy(np.ascontiguousarray(prefix, dtype=np.int64))
    finals_t = torch.from_numpy(np.ascontiguousarray(finals, dtype=np.int64))
    if isinstance(module, TransformerModel):
        return _transformer_last(module, prefix_t, finals_t)
    stepper = module
    if callable(getattr(stepper, "init_state", None)) and callable(getattr(stepper, "step", None)):
        out = _stepped_last(module, prefix_t, finals_t)
        if out is not None:
            return out
    rows = torch.cat([prefix_t.expand(finals_t.numel(), -1), finals_t[:, None]], dim=1)
    logits: Tensor = module(rows)
    return logits[:, -1]


def _transformer_last(model: TransformerModel, prefix: Tensor, finals: Tensor) -> Tensor:
    w = Weights.of(model)
    length = prefix.numel()
    x = model.positions.run(w.embed(prefix[None], "embed"), w.sub("positions"))  # [1, P, d]
    layers = [cast(Block, layer) for layer in model.layers]
    caches: list[tuple[Tensor, Tensor]] = []
    for i, block in enumerate(layers):  # the prefix, once, through the model's own layers
        h = block.ln1(x)
        attn = block.attn
        keys, values = (_heads(attn, attn.W_K(h))[0], _heads(attn, attn.W_V(h))[0])  # [H, P, dh]
        if attn.use_rope:
            keys = rope(keys)
        caches.append((keys, values))
        if i + 1 < len(layers):  # the last layer's prefix outputs are never read
            x = x + attn.run(h, w.sub(f"layers.{i}.attn"))
            if block.mlp is not None:
                x = x + block.mlp(block.ln2(x))
    heads = layers[0].attn.heads if layers else 1
    chunk = max(1, SCORE_ENTRIES // max(1, heads * (length + 1)))
    out = []
    for lo in range(0, finals.numel(), chunk):
        tok = finals[lo : lo + chunk]
        y = model.positions(model.embed(tok)[:, None, :], length)[:, 0]  # [R, d]
        for block, (keys, values) in zip(layers, caches, strict=True):
            y = y + _last_attention(block.attn, block.ln1(y), keys, values, length)
            if block.mlp is not None:
                y = y + block.mlp(block.ln2(y))
        out.append(model.readout(model.norm_f(y)))
    return torch.cat(out)


def _heads(attn: Attention, y: Tensor) -> Tensor:
    """``[B, T, H·dh]`` → ``[B, H, T, dh]`` (``[R, H·dh]`` → ``[R, H, dh]`` for one position)."""
    return y.view(*y.shape[:-1], attn.heads, attn.head_dim).transpose(-3, -2) if y.dim() == 3 \
        else y.view(y.shape[0], attn.heads, attn.head_dim)  # fmt: skip


def _last_attention(attn: Attention, h: Tensor, keys: Tensor, values: Tensor, pos: int) -> Tensor:
    """One position ``h : [R, width]`` at index ``pos`` attending to the prefix's ``keys`` /
    ``values`` ``[H, P, dh]`` and to itself: ``Attention.run`` restricted to that row."""
    q, k, v = (_heads(attn, f(h)).transpose(0, 1) for f in (attn.W_Q, attn.W_K, attn.W_V))
    if attn.use_rope:  # [H, R, dh] rows all at position `pos`
        q, k = rope(q[:, :, None, :], pos)[:, :, 0], rope(k[:, :, None, :], pos)[:, :, 0]
    scores = torch.cat(
        [torch.bmm(q, keys.transpose(1, 2)), torch.einsum("hrd,hrd->hr", q, k)[:, :, None]],
        dim=-1,
    )  # [H, R, P + 1]
    if attn.scale != 1.0:
        scores = scores * attn.scale
    weights = torch.softmax(scores, dim=-1)
    y = torch.bmm(weights[:, :, :-1], values) + weights[:, :, -1:] * v  # [H, R, dh]
    return cast(Tensor, attn.W_O(y.transpose(0, 1).reshape(h.shape[0], -1)))


def _stepped_last(module: nn.Module, prefix: Tensor, finals: Tensor) -> Tensor | None:
    """Step the prefix once, then the final tokens from copies of its state; None when the
    state is not batch-first (then the caller runs full passes)."""
    stepper = cast(_Stepper, module)
    state = stepper.init_state(1)
    for t in range(prefix.numel()):
        _, state = stepper.step(prefix[t : t + 1], state)
    if any(s.dim() == 0 or s.shape[0] != 1 for s in state):
        return None
    floats = max(1, sum(s.numel() for s in state))
    chunk = max(1, STEP_ENTRIES // floats)
    out = []
    for lo in range(0, finals.numel(), chunk):
        tok = finals[lo : lo + chunk]
        copies = tuple(s.expand(tok.numel(), *s.shape[1:]).contiguous() for s in state)
        logits, _ = stepper.step(tok, copies)
        out.append(logits)
    return torch.cat(out)


class _Stepper(nn.Module):
    """The incremental-decoding contract of :class:`sepbench.models.base.SeqModel` (typing)."""

    def init_state(self, batch_size: int) -> tuple[Tensor, ...]:  # pragma: no cover
        raise NotImplementedError

    def step(
        self, tokens: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:  # pragma: no cover
        raise NotImplementedError
