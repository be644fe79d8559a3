"""RNN/SSM stack followed by exactly one attention layer (family ``hybrid``, W24-H).

``base`` chooses the recurrent part: an ``elman``/``lstm``/``gru`` stack (parameters ``embed``,
``rnn`` exactly as in :mod:`sepbench.models.rnn`) or ``ssm`` layers (``embed``, ``ssm_layers[l]``
as in :mod:`sepbench.models.ssm`). Its top states (width d) then pass through

``positions`` (only if ``pos`` is learned or sinusoidal; default none — the recurrence already
knows order) → ``block`` (one pre-norm Transformer layer: ``block.attn.W_Q/W_K/W_V/W_O``,
``block.mlp.fc1/fc2`` unless ``mlp_width=0``; see :mod:`sepbench.models.transformer`) →
``norm_f`` → ``readout`` [vocab, d].

W24-H's construction: a constant-width RNN only tags tokens (key / value / query) and the
attention layer does the retrieval. The state carried between steps is the recurrent state plus
the attention layer's key/value cache (2 · heads · head_dim floats per position).

Bounded precision: ``state_bits`` p bounds the recurrent part exactly as in its own family
(every carried number snapped after every step), so the attention layer reads recurrent
outputs that depend on the tokens before t only through the snapped recurrent state.
The key/value cache is carried too, and grows with the length: ``precision_bits`` bounds it
(and the block's residual stream and queries) as in a Transformer. The two are separate
options because they are separate resources — W24-H's hybrid has an O(log n)-bit recurrent
state beside a cache of O(log n)-bit keys and values; ``state_bits(length)`` counts each part
at its own precision (an unset one at 32 bits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from torch import Tensor, nn

from sepbench.models.access import Weights
from sepbench.models.base import SeqModel, State
from sepbench.models.cards import CARDS
from sepbench.models.precision import quantise
from sepbench.models.rnn import RecurrentStack
from sepbench.models.ssm import SSMLayer, state_grid
from sepbench.models.transformer import (
    Positions,
    attention_grid,
    make_block,
    norm,
)


class HybridModel(SeqModel):
    """Recurrent stack → one attention layer → readout."""

    family = "hybrid"
    summary = CARDS["hybrid"].summary
    options_spec = CARDS["hybrid"].options

    def __init__(self, vocab_size: int, width: int, options: dict[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        o = self.options
        self.base = o["base"]
        self.core: RecurrentStack | None = None
        self.embed: nn.Embedding | None
        if self.base == "ssm":
            self.embed = nn.Embedding(vocab_size, width)
            grid = state_grid(o)
            self.ssm_layers = nn.ModuleList(
                SSMLayer(width, o["state_dim"], o["layer_norm"], o["gate"], grid)
                for _ in range(o["layers"])
            )
        else:
            self.core = RecurrentStack(vocab_size, width, self.base, o)
            self.embed, self.rnn = self.core.build()
        self.positions = Positions(o["pos"], width, o.get("max_len", 0), self.family)
        self.grid = attention_grid(o)
        self.block = make_block(width, o, self.grid)
        self.norm_f = norm(width, o["layer_norm"])
        self.readout = nn.Linear(width, vocab_size, bias=o["bias"])

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        if self.core is not None:
            x = self.core.hidden(self.embed, self.rnn, inputs)
        else:
            x = self._ssm(inputs, Weights.of(self))
        return self._top(x, Weights.of(self))

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        w = Weights.stacked(self, params)
        if self.core is not None:
            x = self.core.hidden_batched(params, inputs)
        else:
            x = self._ssm(inputs, w)
        return self._top(x, w)

    def _ssm(self, inputs: Tensor, w: Weights) -> Tensor:
        x = w.embed(inputs, "embed")
        for i, layer in enumerate(self.ssm_layers):
            x = cast(SSMLayer, layer).run(x, w.sub(f"ssm_layers.{i}"))
        return x

    def _top(self, x: Tensor, w: Weights) -> Tensor:
        x = quantise(self.positions.run(x, w.sub("positions")), self.grid)
        x = self.block.run(x, w.sub("block"))
        return w.linear(w.norm(x, "norm_f"), "readout")

    def state_size(self, length: int) -> int:
        o = self.options
        if self.core is not None:
            rec = self.core.state_size()
        else:
            rec = o["layers"] * self.width * o["state_dim"]
        return rec + 2 * o["heads"] * o["head_dim"] * int(length)

    def init_state(self, batch_size: int) -> State:
        o = self.options
        p = self.readout.weight
        if self.core is not None:
            rec = self.core.init_state(self.rnn, batch_size)
        else:
            z = p.new_zeros(batch_size, self.width, o["state_dim"])
            rec = tuple(z.clone() for _ in self.ssm_layers)
        empty = p.new_zeros(batch_size, o["heads"], 0, o["head_dim"])
        return (*rec, empty, empty.clone())

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        rec, k, v = state[:-2], state[-2], state[-1]
        if self.core is not None:
            x, rec = self.core.step(self.embed, self.rnn, tokens, rec)
        else:
            assert self.embed is not None
            x = self.embed(tokens)
            new = []
            for layer, h in zip(self.ssm_layers, rec, strict=True):
                x, h = cast(SSMLayer, layer).step(x, h)
                new.append(h)
            rec = tuple(new)
        x = quantise(self.positions(x[:, None, :], k.shape[2])[:, 0], self.grid)
        x, k, v = self.block.step(x, k, v)
        out: Tensor = self.readout(self.norm_f(x))
        return out, (*rec, k, v)
