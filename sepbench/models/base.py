"""The model contract: :class:`SeqModel`, the base class of every family.

A model maps token ids ``inputs[B, T]`` to next-token logits ``[B, T, V]`` causally (the logits
at position t depend only on ``inputs[:, : t + 1]``). Besides ``forward`` every model offers

* ``state_size(length)`` — floats carried from one step to the next after ``length`` tokens;
* ``state_bits(length)`` — the bits they hold: p per number under ``state_bits`` /
  ``precision_bits`` p, the float's width (32) per unbounded number;
* ``init_state(batch)`` / ``step(tokens, state)`` — incremental decoding, one token at a time;
  the state is a tuple of tensors whose per-row float count is exactly ``state_size`` (tests
  check this against the tensors actually carried, and that stepping reproduces ``forward``);
* ``num_parameters()``, ``config()`` (rebuild with ``models.build(**config)``);
* ``ensemble_forward(params, inputs)`` — the forward pass of a stack of E models of this
  architecture whose parameters are ``params[name] : [E, *shape]`` (used by ``Ensemble``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.cards import card
from sepbench.params import Param

if TYPE_CHECKING:
    from sepbench.tasks.base import Task

State = tuple[Tensor, ...]


class SeqModel(nn.Module):
    """Base class of every model family (see ``sepbench.models`` for the public contract)."""

    family: ClassVar[str]
    summary: ClassVar[str]
    options_spec: ClassVar[tuple[Param, ...]] = ()
    """The family's option declarations: its card's (:mod:`sepbench.models.cards`)."""
    uses_retrieval: ClassVar[bool] = False
    """True for models whose generation loop lets a retriever write the token after the
    task's ``retrieval_trigger`` (the ``rag`` family); the model itself is unchanged."""
    encoder: ClassVar[bool] = False
    """True for encoders that read the whole row before answering (the tree families ``bbt``,
    ``beam_tree``, ``rir``): their causal ``forward`` reruns the encoder per prefix
    (``readout=every``) or answers only at the last token (``readout=last``)."""

    def __init__(self, vocab_size: int, width: int, options: Mapping[str, Any]) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.width = int(width)
        self.options: dict[str, Any] = dict(options)
        self.seed: int | None = None
        """The seed ``build`` initialised this model with (None: the global torch RNG)."""

    @classmethod
    def check_task(
        cls, task: Task, options: Mapping[str, Any] | None = None, length: int | None = None
    ) -> None:
        """Raise UserError if this family (with ``options``) cannot be trained on ``task``.
        Every sequence model accepts every task; encoders that answer once per row override it
        (``sepbench.models.rvnn``)."""

    # ----------------------------------------------------------------- contract
    def forward(self, inputs: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_size(self, length: int) -> int:  # pragma: no cover - abstract
        """Floats carried from one step to the next after reading ``length`` tokens."""
        raise NotImplementedError

    def state_bits(self, length: int) -> int:
        """Bits carried from one step to the next after ``length`` tokens: ``state_size``
        numbers of ``state_bits`` (recurrent) or ``precision_bits`` (attention cache) bits
        each, an unbounded number counting its float's bits (32 for float32) — the card's
        rule (:meth:`sepbench.models.cards.FamilyCard.state_bits`)."""
        return card(self.family).state_bits(self.width, self.options, length, self.float_bits())

    def float_bits(self) -> int:
        """Bits of the floats this model computes in (32 for float32)."""
        return torch.finfo(next(self.parameters()).dtype).bits

    def init_state(self, batch_size: int) -> State:  # pragma: no cover - abstract
        """The state before the first token (zeros / an empty cache)."""
        raise NotImplementedError

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:  # pragma: no cover
        """Read one token per row (``tokens[B]``); return ``(logits[B, V], new_state)``."""
        raise NotImplementedError

    def with_inference(self, **options: Any) -> SeqModel:
        """A weight-sharing copy with inference-time options (no retraining). Only ``ssm``
        has any (the state-collapse mitigations, ``sepbench.models.ssm_inference``); for the
        other families no option returns the model itself and any option is a UserError."""
        if options:
            raise UserError(
                f"{self.family}: cannot honour inference option {sorted(options)[0]!r}; "
                "inference-time options (the state-collapse mitigations) exist for ssm only"
            )
        return self

    def num_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def config(self) -> dict[str, Any]:
        """Plain JSON-able description; ``models.build(**model.config())`` rebuilds it (with the
        same initial weights when a seed was given)."""
        return {
            "family": self.family,
            "vocab_size": self.vocab_size,
            "width": self.width,
            "options": dict(self.options),
            "seed": self.seed,
        }

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        """Logits ``[E, B, T, V]`` of E models of this architecture, member e with parameters
        ``{name: params[name][e]}`` reading ``inputs[e]`` (``inputs : [E, B, T]``).

        Every built-in family overrides it with an explicitly batched pass (see
        ``sepbench.models.ensemble``); this default — ``torch.func.vmap`` over ``forward`` — is a
        correct but slower fallback for a new family.
        """
        from torch.func import functional_call, vmap

        def one(p: dict[str, Tensor], x: Tensor) -> Tensor:
            out: Tensor = functional_call(self, p, (x,))
            return out

        result: Tensor = vmap(one)(dict(params), inputs)
        return result

    # ----------------------------------------------------------------- helpers
    def _check_inputs(self, inputs: Tensor) -> None:
        if inputs.dim() != 2:
            raise ValueError(
                f"{self.family}: inputs must be a [batch, time] tensor of token ids, "
                f"got shape {tuple(inputs.shape)}"
            )

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"family={self.family!r}, vocab_size={self.vocab_size}, width={self.width}, {opts}"
