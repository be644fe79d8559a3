"""Looped Transformer (family ``looped``): one causal block applied R times with shared weights.

The forward pass (lengthgen.md; MC24's recurrent Transformer, BA22's recall):

    e   = Embed(x) + positions            (learned / sinusoidal table, or Abacus ids; RoPE
                                           lives in attention)
    h_0 = 0 | e | N(0, 0.02²)             (``state_init`` zero / embed / noise)
    h_r = Block(inject(h_{r−1}, e))       r = 1 … R, the same weights at every r
    logits_r = Head(h_r)                  Head = readout ∘ final norm

with ``inject(h, e)`` = h + e (``add``, MC24's default), ``inject.weight`` · [h; e]
(``concat``, BA22's recall) or h (``none``: the input enters once, as h_0 + e, and is ignored
after iteration 1). Block = ``block_layers`` causal pre-norm layers of the ``transformer``
family (:func:`sepbench.models.transformer.make_block`), so the model is causal.

Parameters (L = block_layers; the layers' own names as in :mod:`sepbench.models.transformer`):

=================================  ======================  =====================================
name                               shape                   role
=================================  ======================  =====================================
``embed.weight``                   [vocab, width]          token embedding
``positions.pos_emb``              [max_len, width]        learned positions (``pos=learned``)
``abacus.weight``                  [abacus_max+1, width]   Abacus table, row 0 = non-digits
``inject.weight`` / ``.bias``      [width, 2·width]        recall map (``injection=concat``)
``layers[l]…``                     see transformer         the shared block, l < L
``norm_f``                         LayerNorm(width)        final norm (Identity if off)
``readout.weight``                 [vocab, width]          logits = norm_f(h) @ readoutᵀ + bias
=================================  ======================  =====================================

Randomness (training mode only) comes from the model's own ``generator`` (a CPU
``torch.Generator`` seeded at construction, so a seeded build is deterministic): the noise of
``state_init=noise`` and the Abacus offset k ~ U{0 … abacus_offset} (one k per forward pass,
added to every non-zero id, as MC24's code does). In evaluation mode there is neither: the
offset is 0 and noise is replaced by its mean, h_0 = 0, so that evaluation is a function of the
input (reproducible records; ``step`` ≡ ``forward``). MC24 also draw the noise at evaluation;
at σ = 0.02 against an embedding of scale 1, the difference is the model's robustness to that
noise, which training gives it. ``step`` always computes what ``forward`` computes in
evaluation mode.

State for step-wise decoding: every iteration r and layer l keeps its own key/value cache
(iteration r at position t attends to iteration r's keys at positions ≤ t), so
``state_size(T) = iterations × block_layers × 2·heads·head_dim·T``, plus 1 float per row with
``pos=abacus`` (the length of the current digit run, which the next token's id needs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.abacus import abacus_ids, abacus_step
from sepbench.models.access import Weights
from sepbench.models.base import State
from sepbench.models.cards import CARDS, abacus_on
from sepbench.models.depth import DepthModel
from sepbench.models.transformer import (
    Positions,
    make_block,
    norm,
    run_blocks,
    step_blocks,
)

NOISE_STD = 0.02
"""Standard deviation of ``state_init=noise`` (MC24's default: N(0, 0.02²))."""


class LoopedModel(DepthModel):
    """A causal Transformer block applied ``iterations`` times with shared weights."""

    family = "looped"
    summary = CARDS["looped"].summary
    options_spec = CARDS["looped"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        if abacus_on(o) and o["digit_max"] >= vocab_size:
            raise UserError(
                f"model '{self.family}': option 'digit_max'={o['digit_max']} is not a token id "
                f"of the vocabulary of {vocab_size} (ids 0 … {vocab_size - 1})"
            )
        self.embed = nn.Embedding(vocab_size, width)
        self.positions = Positions(o["pos"], width, o.get("max_len", 0), self.family)
        self.abacus = nn.Embedding(o["abacus_max"] + 1, width) if abacus_on(o) else None
        self.inject = (
            nn.Linear(2 * width, width, bias=o["bias"]) if o["injection"] == "concat" else None
        )
        self.layers = nn.ModuleList(make_block(width, o) for _ in range(o["block_layers"]))
        self.norm_f = norm(width, o["layer_norm"])
        self.readout = nn.Linear(width, vocab_size, bias=o["bias"])
        seed = int(torch.randint(0, 2**62, (1,)))
        self.generator = torch.Generator().manual_seed(seed)
        """Source of the training-mode noise and Abacus offsets (CPU; seeded at construction
        from the build's RNG, so ``build(seed=s)`` fixes it too)."""

    # ----------------------------------------------------------------- the three parts
    def start(self, inputs: Tensor, w: Weights) -> tuple[Tensor, Tensor]:
        e = self.positions.run(w.embed(inputs, "embed"), w.sub("positions"))
        if self.abacus is not None:
            e = e + w.embed(self._abacus_ids(inputs), "abacus")
        return e, self._initial(e, draw=self.training)

    def iterate(self, state: Tensor, context: Tensor, w: Weights) -> Tensor:
        return run_blocks(self.layers, self._inject(state, context, w), w.sub("layers"))

    def head(self, state: Tensor, w: Weights) -> Tensor:
        return w.linear(w.norm(state, "norm_f"), "readout")

    def _initial(self, e: Tensor, draw: bool) -> Tensor:
        """h_0 (plus e for ``injection=none``); noise only when ``draw``."""
        kind = self.options["state_init"]
        if kind == "embed":
            h = e
        elif kind == "noise" and draw:
            noise = torch.randn(e.shape, generator=self.generator, dtype=e.dtype)
            h = noise.to(e.device) * NOISE_STD
        else:
            h = torch.zeros_like(e)
        return h + e if self.options["injection"] == "none" else h

    def _inject(self, h: Tensor, e: Tensor, w: Weights) -> Tensor:
        kind = self.options["injection"]
        if kind == "add":
            return h + e
        if kind == "concat":
            return w.linear(torch.cat([h, e], dim=-1), "inject")
        return h

    def _abacus_ids(self, inputs: Tensor) -> Tensor:
        """Abacus ids, plus the training offset; a one-line error when the table is short."""
        o = self.options
        ids = abacus_ids(inputs, o["digit_min"], o["digit_max"])
        offset = o["abacus_offset"] if self.training else 0
        longest = int(ids.max()) if ids.numel() else 0
        self._check_abacus(longest, offset)
        if offset:
            k = int(torch.randint(0, offset + 1, (1,), generator=self.generator))
            ids = torch.where(ids > 0, ids + k, ids)
        return ids

    def _check_abacus(self, longest: int, offset: int) -> None:
        limit = self.options["abacus_max"]
        if longest + offset > limit:
            extra = f" plus abacus_offset {offset}" if offset else ""
            raise UserError(
                f"model '{self.family}': a digit run of {longest} tokens{extra} exceeds "
                f"abacus_max {limit} (build with abacus_max={longest + offset} or larger)"
            )

    # ----------------------------------------------------------------- step-wise decoding
    def state_size(self, length: int, iterations: int | None = None) -> int:
        o = self.options
        count = self.resolve_iterations(iterations)
        caches = count * o["block_layers"] * 2 * o["heads"] * o["head_dim"] * int(length)
        return caches + (1 if self.abacus is not None else 0)

    def init_state(self, batch_size: int, iterations: int | None = None) -> State:
        o = self.options
        count = self.resolve_iterations(iterations)
        p = self.embed.weight
        empty = p.new_zeros(batch_size, o["heads"], 0, o["head_dim"])
        caches = tuple(empty for _ in range(2 * count * o["block_layers"]))
        if self.abacus is not None:
            return (*caches, p.new_zeros(batch_size, 1))
        return caches

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One token per row through every iteration (evaluation semantics: no noise, no
        Abacus offset); the iteration count is the one ``init_state`` was given."""
        caches = state[:-1] if self.abacus is not None else state
        per = 2 * self.options["block_layers"]
        e = self.positions(self.embed(tokens)[:, None, :], caches[0].shape[2])[:, 0]
        tail: tuple[Tensor, ...] = ()
        if self.abacus is not None:
            o = self.options
            run = abacus_step(tokens[:, None], state[-1], o["digit_min"], o["digit_max"])
            self._check_abacus(int(run.max()), 0)
            e = e + self.abacus(run[:, 0].long())
            tail = (run,)
        h = self._initial(e, draw=False)
        w = Weights.of(self)
        new: list[Tensor] = []
        for r in range(len(caches) // per):
            h, kv = step_blocks(self.layers, self._inject(h, e, w), caches[r * per : (r + 1) * per])
            new.extend(kv)
        out: Tensor = self.readout(self.norm_f(h))
        return out, (*new, *tail)
