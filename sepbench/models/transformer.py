"""Causal Transformer (family ``transformer``) and its parts, reused by the ``hybrid`` family.

Conventions (B24 §2, row vectors): the residual stream ``x`` has ``width`` coordinates; every
linear map is a ``torch.nn.Linear`` whose ``weight`` has shape ``[out, in]`` and computes
``x @ weight.T + bias`` — so ``W_Q.weight`` is the theory's W_Q and a head's attention logits
are ``scale * (x_t W_Qᵀ)·(x_s W_Kᵀ)``. With ``attn_scale=1.0`` there is no 1/√d factor at all
(the theory's convention: scales such as η live in W_Q).

Parameters of a ``TransformerModel`` (L layers, H heads, head dimension dh, M = mlp_width):

=================================  ======================  =====================================
name                               shape                   role
=================================  ======================  =====================================
``embed.weight``                   [vocab, width]          token embedding (row = token id)
``positions.pos_emb``              [max_len, width]        learned positions (``pos=learned``)
``layers[l].ln1`` / ``ln2``        LayerNorm(width)        pre-norms (Identity if layer_norm off)
``layers[l].attn.W_Q.weight``      [H·dh, width]           queries; head h = rows h·dh:(h+1)·dh
``layers[l].attn.W_K.weight``      [H·dh, width]           keys (same head split)
``layers[l].attn.W_V.weight``      [H·dh, width]           values (same head split)
``layers[l].attn.W_O.weight``      [width, H·dh]           output map of the concatenated heads
``layers[l].mlp.fc1.weight``       [M, width]              ReLU MLP, first layer (absent if M=0)
``layers[l].mlp.fc2.weight``       [width, M]              second layer
``norm_f``                         LayerNorm(width)        final norm (Identity if off)
``readout.weight``                 [vocab, width]          logits = x @ readout.weight.T + bias
=================================  ======================  =====================================

Every ``Linear`` has a bias of its output size when ``bias=True`` (default); constructions
usually build with ``bias=False``. A layer computes ``x = x + attn(ln1(x))`` then
``x = x + mlp(ln2(x))`` (pre-norm). The attention scale is the plain float attribute
``attn.scale`` (from the option ``attn_scale``: "sqrt" = 1/√dh, or a number).

Bounded precision (option ``precision_bits`` p; :mod:`sepbench.models.precision`): the
residual stream — after the embedding and positions, and after each residual sum — and every
query, key and value (after RoPE, so the cache holds snapped keys) are snapped to B24's
fixed-point grid, 2^p levels on [−R, R] with R = 2^⌊(p − 1)/2⌋, straight-through gradients.
The attention scores and weights, the LayerNorms and the MLP's hidden units are computed in
float32 from those snapped numbers (docs/precision.md says why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.access import Weights
from sepbench.models.base import SeqModel, State
from sepbench.models.cards import CARDS
from sepbench.models.precision import Grid, fixed_point, quantise


def sinusoidal(length: int, width: int, offset: int = 0, *, like: Tensor) -> Tensor:
    """The fixed sinusoidal positions ``[length, width]`` (Vaswani et al.): coordinate 2i is
    ``sin(t / 10000^(2i/width))``, coordinate 2i+1 its cosine."""
    pos = torch.arange(offset, offset + length, dtype=like.dtype, device=like.device)
    i = torch.arange(0, width, 2, dtype=like.dtype, device=like.device)
    angle = pos[:, None] / torch.pow(10000.0, i / width)[None, :]
    out = torch.empty(length, width, dtype=like.dtype, device=like.device)
    out[:, 0::2] = torch.sin(angle)
    out[:, 1::2] = torch.cos(angle[:, : width // 2])
    return out


def rope(x: Tensor, offset: int = 0) -> Tensor:
    """Rotary positions on ``x : [..., T, dh]`` (dh even): the pair (i, i + dh/2) of position t
    is rotated by the angle ``t / 10000^(2i/dh)``."""
    t_len, dh = x.shape[-2], x.shape[-1]
    half = dh // 2
    pos = torch.arange(offset, offset + t_len, dtype=x.dtype, device=x.device)
    freq = torch.pow(10000.0, -torch.arange(half, dtype=x.dtype, device=x.device) * 2 / dh)
    angle = pos[:, None] * freq[None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


FUSED_FROM = 512
"""Sequences at least this long use torch's fused ``scaled_dot_product_attention`` (memory
O(T) per row); shorter ones the explicit softmax(scale · q kᵀ + causal mask) v, which on CPU is
faster at small head sizes (measured: up to 1.4x at head_dim 8-32, T = 64). Both compute the
same function."""


def causal_attention(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    """Causal softmax attention on ``[..., T, dh]`` tensors (row t attends to s <= t)."""
    t = q.shape[-2]
    if t >= FUSED_FROM:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    return torch.softmax(causal_logits(q, k, scale), dim=-1) @ v


def causal_logits(q: Tensor, k: Tensor, scale: float) -> Tensor:
    """``scale · q kᵀ`` with -inf above the diagonal (future positions), in one fused
    ``baddbmm`` (mask + scale · q kᵀ)."""
    lead, t, dh = q.shape[:-2], q.shape[-2], q.shape[-1]
    future = torch.full((t, t), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
    logits = torch.baddbmm(
        future, q.reshape(-1, t, dh), k.reshape(-1, t, dh).transpose(1, 2), alpha=scale
    )
    return logits.view(*lead, t, t)


class Attention(nn.Module):
    """Multi-head causal softmax attention with explicit ``W_Q, W_K, W_V, W_O``."""

    def __init__(
        self,
        width: int,
        heads: int,
        head_dim: int,
        scale: float,
        use_rope: bool,
        bias: bool,
        grid: Grid | None = None,
    ) -> None:
        super().__init__()
        self.grid = grid
        """Queries, keys and values are snapped to it (``precision_bits``; None: unbounded)."""
        self.heads = heads
        self.head_dim = head_dim
        self.scale = float(scale)
        """Multiplies q·k before the softmax (1.0: no 1/√dh factor)."""
        self.use_rope = use_rope
        inner = heads * head_dim
        self.W_Q = nn.Linear(width, inner, bias=bias)
        self.W_K = nn.Linear(width, inner, bias=bias)
        self.W_V = nn.Linear(width, inner, bias=bias)
        self.W_O = nn.Linear(inner, width, bias=bias)

    def _split(self, y: Tensor) -> Tensor:  # [..., T, H·dh] -> [..., H, T, dh]
        return y.view(*y.shape[:-1], self.heads, self.head_dim).transpose(-3, -2)

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, Weights.of(self))

    def run(self, x: Tensor, w: Weights) -> Tensor:
        """``x : [..., T, width]`` (a leading member dim E when ``w`` is stacked)."""
        q, k, v = (self._split(w.linear(x, n)) for n in ("W_Q", "W_K", "W_V"))
        if self.use_rope:
            q, k = rope(q), rope(k)
        q, k, v = (quantise(z, self.grid) for z in (q, k, v))
        lead = q.shape[:-3]
        if len(lead) != 1:  # fold (E, B) into one batch dimension: attention has no weights
            q, k, v = (z.reshape(-1, *z.shape[-3:]) for z in (q, k, v))
        y = causal_attention(q, k, v, self.scale).view(*lead, *q.shape[-3:])
        y = y.transpose(-3, -2).reshape(*x.shape[:-1], self.heads * self.head_dim)
        return w.linear(y, "W_O")

    def weights(self, x: Tensor) -> Tensor:
        """The attention pattern ``[B, H, T, T]`` (row t: how position t spreads its attention
        over positions ≤ t) — for tests and for inspecting constructions."""
        q, k = self._split(self.W_Q(x)), self._split(self.W_K(x))
        if self.use_rope:
            q, k = rope(q), rope(k)
        return torch.softmax(causal_logits(q, k, self.scale), dim=-1)

    def step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One new position ``x : [B, width]`` attending to the cache ``[B, H, t, dh]`` and
        itself; returns ``(output [B, width], new k cache, new v cache)``."""
        b = x.shape[0]
        offset = k_cache.shape[2]
        q, k, v = (self._split(f(x)[:, None, :]) for f in (self.W_Q, self.W_K, self.W_V))
        if self.use_rope:
            q, k = rope(q, offset), rope(k, offset)
        q, k, v = (quantise(z, self.grid) for z in (q, k, v))
        k_cache = torch.cat([k_cache, k], dim=2)
        v_cache = torch.cat([v_cache, v], dim=2)
        y = F.scaled_dot_product_attention(q, k_cache, v_cache, scale=self.scale)
        return self.W_O(y.reshape(b, self.heads * self.head_dim)), k_cache, v_cache


class MLP(nn.Module):
    """``fc2(relu(fc1(x)))``."""

    def __init__(self, width: int, hidden: int, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, Weights.of(self))

    def run(self, x: Tensor, w: Weights) -> Tensor:
        return w.linear(torch.relu(w.linear(x, "fc1")), "fc2")


def norm(width: int, on: bool) -> nn.Module:
    return nn.LayerNorm(width) if on else nn.Identity()


class Block(nn.Module):
    """One pre-norm layer: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (no MLP if M = 0)."""

    def __init__(
        self,
        width: int,
        heads: int,
        head_dim: int,
        scale: float,
        use_rope: bool,
        layer_norm: bool,
        mlp_width: int,
        bias: bool,
        grid: Grid | None = None,
    ) -> None:
        super().__init__()
        self.grid = grid
        """The residual stream after each sum, and q/k/v, are snapped to it (or None)."""
        self.ln1 = norm(width, layer_norm)
        self.attn = Attention(width, heads, head_dim, scale, use_rope, bias, grid)
        self.ln2 = norm(width, layer_norm) if mlp_width > 0 else nn.Identity()
        self.mlp = MLP(width, mlp_width, bias) if mlp_width > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, Weights.of(self))

    def run(self, x: Tensor, w: Weights) -> Tensor:
        x = quantise(x + self.attn.run(w.norm(x, "ln1"), w.sub("attn")), self.grid)
        if self.mlp is not None:
            x = quantise(x + self.mlp.run(w.norm(x, "ln2"), w.sub("mlp")), self.grid)
        return x

    def step(self, x: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, k, v = self.attn.step(self.ln1(x), k, v)
        x = quantise(x + y, self.grid)
        if self.mlp is not None:
            x = quantise(x + self.mlp(self.ln2(x)), self.grid)
        return x, k, v


def attention_grid(options: Mapping[str, Any]) -> Grid | None:
    """The grid of ``precision_bits`` p: B24's fixed-point grid (precision.fixed_point); None
    without the option."""
    bits = options.get("precision_bits")
    return None if bits is None else fixed_point(int(bits))


def resolve_scale(attn_scale: Any, head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim) if attn_scale == "sqrt" else float(attn_scale)


def make_block(width: int, o: Mapping[str, Any], grid: Grid | None = None) -> Block:
    """One :class:`Block` from validated :func:`attention_options` (``o``); ``grid``: the
    number grid of bounded precision (:func:`attention_grid`), or None."""
    return Block(
        width,
        o["heads"],
        o["head_dim"],
        resolve_scale(o["attn_scale"], o["head_dim"]),
        o["pos"] == "rope",
        o["layer_norm"],
        o["mlp_width"],
        o["bias"],
        grid,
    )


def run_blocks(layers: nn.ModuleList, x: Tensor, w: Weights) -> Tensor:
    """``x`` through every :class:`Block` of ``layers`` in order (``w``: the list's weights)."""
    for i, layer in enumerate(layers):
        x = cast(Block, layer).run(x, w.sub(str(i)))
    return x


def step_blocks(layers: nn.ModuleList, x: Tensor, caches: Sequence[Tensor]) -> tuple[Tensor, State]:
    """One new position ``x : [B, width]`` through ``layers``; ``caches`` holds each layer's
    key and value cache in turn (``2·len(layers)`` tensors ``[B, H, t, dh]``); returns the
    output and the extended caches in the same order."""
    new: list[Tensor] = []
    for i, layer in enumerate(layers):
        x, k, v = cast(Block, layer).step(x, caches[2 * i], caches[2 * i + 1])
        new += [k, v]
    return x, tuple(new)


class Positions(nn.Module):
    """Adds learned or sinusoidal positions to the residual stream (RoPE lives in attention)."""

    def __init__(self, kind: str, width: int, max_len: int, family: str) -> None:
        super().__init__()
        self.kind = kind
        self.width = width
        self.max_len = max_len
        self.family = family
        self.pos_emb = nn.Parameter(torch.randn(max_len, width)) if kind == "learned" else None

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return self.run(x, Weights.of(self), offset)

    def run(self, x: Tensor, w: Weights, offset: int = 0) -> Tensor:
        t = x.shape[-2]
        if self.pos_emb is not None:
            if offset + t > self.max_len:
                raise UserError(
                    f"model '{self.family}': input of {offset + t} tokens exceeds max_len "
                    f"{self.max_len} (build with max_len={offset + t} or larger)"
                )
            table = w.tensor("pos_emb")[..., offset : offset + t, :]
            if w.is_stacked:  # [E, t, d] -> [E, 1, ..., t, d]
                table = table.view(table.shape[0], *([1] * (x.dim() - 3)), t, self.width)
            return x + table
        if self.kind == "sinusoidal":
            return x + sinusoidal(t, self.width, offset, like=x)
        return x


class TransformerModel(SeqModel):
    """Decoder-only causal Transformer: embedding (+ positions) → L pre-norm layers → readout."""

    family = "transformer"
    summary = CARDS["transformer"].summary
    options_spec = CARDS["transformer"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        self.embed = nn.Embedding(vocab_size, width)
        self.positions = Positions(o["pos"], width, o.get("max_len", 0), self.family)
        self.grid = attention_grid(o)
        self.layers = nn.ModuleList(make_block(width, o, self.grid) for _ in range(o["layers"]))
        self.norm_f = norm(width, o["layer_norm"])
        self.readout = nn.Linear(width, vocab_size, bias=o["bias"])

    @property
    def pos_emb(self) -> Tensor | None:
        """The learned position table ``[max_len, width]`` (None unless ``pos=learned``)."""
        return self.positions.pos_emb

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        return self.run(inputs, Weights.of(self))

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        return self.run(inputs, Weights.stacked(self, params))

    def run(self, inputs: Tensor, w: Weights) -> Tensor:
        """Logits for ``inputs : [B, T]`` (stacked weights: ``[E, B, T]`` → ``[E, B, T, V]``)."""
        x = quantise(self.positions.run(w.embed(inputs, "embed"), w.sub("positions")), self.grid)
        x = run_blocks(self.layers, x, w.sub("layers"))
        return w.linear(w.norm(x, "norm_f"), "readout")

    def state_size(self, length: int) -> int:
        o = self.options
        return o["layers"] * 2 * o["heads"] * o["head_dim"] * int(length)

    def init_state(self, batch_size: int) -> State:
        o = self.options
        p = self.embed.weight
        empty = p.new_zeros(batch_size, o["heads"], 0, o["head_dim"])
        return tuple(empty for _ in range(2 * o["layers"]))

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        offset = state[0].shape[2]
        x = quantise(self.positions(self.embed(tokens)[:, None, :], offset)[:, 0], self.grid)
        x, new = step_blocks(self.layers, x, state)
        out: Tensor = self.readout(self.norm_f(x))
        return out, new
