"""Recurrent depth: one block applied R times with shared weights; R is a test-time knob.

The families ``looped`` (a causal Transformer block, MC24) and ``dtnet`` (BA22's deep-thinking
convolutional block with recall) are :class:`DepthModel` s. Each splits its forward pass into

* ``start(inputs, w) -> (context, state)`` — the input encoding e (re-injected every
  iteration) and the state h_0 the first iteration reads;
* ``iterate(state, context, w) -> state`` — one application of the shared block,
  h_r = Block(inject(h_{r−1}, e)), the same function at every r;
* ``head(state, w) -> logits`` — the read-out, applicable after any iteration;

so that the output after r iterations is ``head(iterate^r(start(inputs)))`` and everything
below — any iteration count, every count in one pass, the progressive loss — is written once
for both families, for one model (``w = Weights.of(model)``) and for an ensemble
(``Weights.stacked``, every tensor with a leading member dimension E).

Public functions (each takes a ``DepthModel`` or an ``Ensemble`` of them):

``forward_all(model, inputs, iterations) -> logits[R′, (E,) B, T, V]``
    the head after every iteration 1 … R′ (one pass gives every count, as BA22 evaluates).
``progressive_loss(model, inputs, loss, alpha=1.0, max_backprop=None, generator=None)``
    BA22's progressive loss, or MC24's truncated variant (the rule: :func:`progressive_loss`).
``draw_progressive(iterations, max_backprop, generator) -> (n, k)``
    the per-batch draw of the no-gradient and gradient iteration counts.
``max_confidence(all_logits, mask=None) -> (logits, chosen)``
    BA22's rule: per row, the iteration whose mean max-softmax is highest.
``check_iterations(value) -> int``
    iteration counts are integers ≥ 1; anything else is a one-line UserError.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.access import Weights
from sepbench.models.base import SeqModel
from sepbench.models.ensemble import Ensemble


def check_iterations(value: Any, what: str = "iterations") -> int:
    """``value`` as an iteration count (an integer ≥ 1), else a one-line UserError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)
    except TypeError:
        raise UserError(f"{what} must be an integer >= 1, got {value!r}") from None
    if out < 1:
        raise UserError(f"{what} must be an integer >= 1, got {value!r}")
    return out


class DepthModel(SeqModel):
    """Base of the recurrent-depth families (see the module docstring).

    ``forward(inputs, iterations=None)`` runs ``options["iterations"]`` (the training R) or the
    given count; ``forward_all(inputs, iterations=None)`` returns the logits after every
    iteration, ``[R′, B, T, V]``. ``state_size``, ``init_state`` and ``step`` take an optional
    ``iterations`` too (default R): step-wise decoding runs that many iterations per token.
    """

    # ----------------------------------------------------------------- the three parts
    def start(self, inputs: Tensor, w: Weights) -> tuple[Tensor, Tensor]:  # pragma: no cover
        """``(context, state)`` for ``inputs`` (``[B, T]``, stacked: ``[E, B, T]``)."""
        raise NotImplementedError

    def iterate(self, state: Tensor, context: Tensor, w: Weights) -> Tensor:  # pragma: no cover
        """One application of the shared block."""
        raise NotImplementedError

    def head(self, state: Tensor, w: Weights) -> Tensor:  # pragma: no cover
        """Logits ``[(E,) B, T, V]`` read from a state."""
        raise NotImplementedError

    # ----------------------------------------------------------------- contract
    @property
    def iterations(self) -> int:
        """The training iteration count R (option ``iterations``)."""
        return int(self.options["iterations"])

    def resolve_iterations(self, iterations: int | None) -> int:
        return self.iterations if iterations is None else check_iterations(iterations)

    def forward(self, inputs: Tensor, iterations: int | None = None) -> Tensor:
        self._check_inputs(inputs)
        count = self.resolve_iterations(iterations)
        return _unrolled(self, Weights.of(self), inputs, 0, count)

    def forward_all(self, inputs: Tensor, iterations: int | None = None) -> Tensor:
        """Logits after every iteration 1 … R′: ``[R′, B, T, V]``."""
        self._check_inputs(inputs)
        return _all(self, Weights.of(self), inputs, self.resolve_iterations(iterations))

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        return _unrolled(self, Weights.stacked(self, params), inputs, 0, self.iterations)


# --------------------------------------------------------------------------- functions
def _target(model: nn.Module) -> tuple[DepthModel, Weights]:
    """The architecture and the weights to run: a model's own, or an ensemble's stack."""
    if isinstance(model, Ensemble):
        template = model.template
        if not isinstance(template, DepthModel):
            raise UserError(
                f"model family '{model.family}' has no recurrent depth "
                "(use a looped or dtnet model)"
            )
        return template, Weights.stacked(template, model.stacked())
    if not isinstance(model, DepthModel):
        family = getattr(model, "family", type(model).__name__)
        raise UserError(
            f"model family '{family}' has no recurrent depth (use a looped or dtnet model)"
        )
    return model, Weights.of(model)


def _unrolled(arch: DepthModel, w: Weights, inputs: Tensor, n: int, k: int) -> Tensor:
    """Logits after ``n`` iterations without gradient, then ``k`` with gradient.

    The state after the no-gradient iterations is detached (it carries no graph anyway); with
    n = 0 the initial state keeps its gradient, as in BA22's code, where the no-gradient pass
    is skipped when n = 0.
    """
    context, state = arch.start(inputs, w)
    if n:
        with torch.no_grad():
            for _ in range(n):
                state = arch.iterate(state, context, w)
        state = state.detach()
    for _ in range(k):
        state = arch.iterate(state, context, w)
    return arch.head(state, w)


def _all(arch: DepthModel, w: Weights, inputs: Tensor, count: int) -> Tensor:
    context, state = arch.start(inputs, w)
    out = []
    for _ in range(count):
        state = arch.iterate(state, context, w)
        out.append(arch.head(state, w))
    return torch.stack(out)


def forward_all(model: nn.Module, inputs: Tensor, iterations: int) -> Tensor:
    """The head after every iteration 1 … ``iterations``: ``[R′, B, T, V]`` for a model,
    ``[R′, E, B, T, V]`` for an ensemble (``inputs : [E, B, T]``). Element r − 1 equals the
    output of ``forward(inputs, iterations=r)``."""
    arch, w = _target(model)
    return _all(arch, w, inputs, check_iterations(iterations))


def draw_progressive(
    iterations: int, max_backprop: int | None, generator: torch.Generator | None = None
) -> tuple[int, int]:
    """BA22's draw for one batch: n ~ U{0 … R−1} iterations without gradient, then
    k ~ U{1 … R−n} with gradient — or, with MC24's ``max_backprop`` m,
    k ~ U{1 … min(R − n, m)}. Draws from ``generator`` (default: torch's global RNG)."""
    r = check_iterations(iterations)
    n = int(torch.randint(0, r, (1,), generator=generator))
    top = r - n if max_backprop is None else min(r - n, max_backprop)
    k = int(torch.randint(1, top + 1, (1,), generator=generator))
    return n, k


def progressive_loss(
    model: nn.Module,
    inputs: Tensor,
    loss: Callable[[Tensor], Tensor],
    alpha: float = 1.0,
    max_backprop: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(1 − α)·L_max + α·L_prog`` for one batch (BA22), R = the model's ``iterations``.

    ``loss`` maps logits (``[B, T, V]``, or ``[E, B, T, V]`` for an ensemble) to the loss to
    minimise (a scalar, or per-member ``[E]``): the trainer's masked mean cross-entropy over
    the supervised positions.

    * L_max: the loss after R iterations with gradient through all of them — or, with
      ``max_backprop`` m (MC24), after R − m iterations without gradient and m with;
      computed only if α < 1.
    * L_prog: the loss after n iterations without gradient and k with, (n, k) from
      :func:`draw_progressive` (one draw per batch, shared by an ensemble's members);
      computed only if α > 0.

    So α = 0 without ``max_backprop`` is the plain loss after R iterations.
    """
    arch, w = _target(model)
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float)
        or not (0.0 <= float(alpha) <= 1.0)
    ):
        raise UserError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if max_backprop is not None:
        max_backprop = check_iterations(max_backprop, "max_backprop")
    r = arch.iterations
    total: Tensor | None = None
    if alpha < 1:
        m = r if max_backprop is None else min(r, max_backprop)
        total = (1 - alpha) * loss(_unrolled(arch, w, inputs, r - m, m))
    if alpha > 0:
        n, k = draw_progressive(r, max_backprop, generator)
        prog = alpha * loss(_unrolled(arch, w, inputs, n, k))
        total = prog if total is None else total + prog
    return cast(Tensor, total)


def max_confidence(all_logits: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """BA22's max-confidence rule over ``all_logits : [R′, B, T, V]``.

    Row b's confidence at iteration r is the mean over positions (those where ``mask : [B, T]``
    is true; all when None) of the largest softmax probability; the rule picks, per row, the
    iteration of highest confidence (the earliest on ties). Returns ``(logits [B, T, V],
    chosen [B])`` with ``chosen`` 0-based (iteration ``chosen + 1``).
    """
    top = torch.softmax(all_logits.float(), dim=-1).amax(dim=-1)  # [R′, B, T]
    if mask is None:
        conf = top.mean(dim=-1)
    else:
        weight = mask.to(top.dtype)
        conf = (top * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
    chosen = conf.argmax(dim=0)  # [B]; argmax returns the first maximum
    rows = torch.arange(all_logits.shape[1], device=all_logits.device)
    return all_logits[chosen, rows], chosen
