"""Ensembles: E models of one architecture, trained at once as one module.

Member e has its own weights (every parameter is stored stacked, ``[E, *shape]``) and reads its
own data: ``ensemble(inputs[E, B, T]) -> logits[E, B, T, V]``. A loss that sums the members'
losses therefore gives each member exactly the gradient it would get alone, and an optimizer
over the stacked parameters (Adam/AdamW are elementwise) trains E independent models — only the
kernels are shared. Member e starts from exactly the weights of ``build(..., seed=seeds[e])``.

Implementation: the ensemble keeps one *template* model (unregistered: its own weights are
never used) and calls ``template.ensemble_forward(stacked_params, inputs)``:

* Transformer, SSM and hybrid layers run their one forward code against stacked weights
  (:class:`~sepbench.models.access.Weights`): every linear map is one batched matmul over the
  members, weight-free parts (attention scores, the SSM scan) fold the members into the batch;
* the RNN cells (whose fused kernels ``vmap`` cannot batch) run the hand-written batched
  recurrences of :mod:`sepbench.models.recurrence`: one ``bmm`` per step for all members, a
  handful of elementwise kernels per step, and a hand-written backward pass.

``torch.func.vmap`` over ``forward`` was measured first and rejected: its batching rules for
``layer_norm`` and fused attention fall back to slow paths, and it made transformer ensembles
slower than sequential training. The speed-up to expect is largest where one model's step is
dominated by per-operation overhead (recurrences over time at small width); where one model
already does real work (attention over B × T × T scores, SSM scans, oneDNN's LSTM) the
ensemble mostly saves the per-op and optimiser overhead — see ``benchmarks/bench_models.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sepbench.models.base import SeqModel


class Ensemble(nn.Module):
    """E models of one architecture with stacked parameters (see the module docstring).

    Attributes ``family``, ``vocab_size``, ``width``, ``options``, ``seeds``, ``size`` (= E).
    ``params`` holds the stacked parameters; ``stacked()`` maps each member parameter name
    (e.g. ``rnn.weight_hh_l0``) to its ``[E, *shape]`` tensor.
    """

    def __init__(self, members: Sequence[SeqModel], seeds: Sequence[int]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        template = members[0]
        self.family = template.family
        self.vocab_size = template.vocab_size
        self.width = template.width
        self.options = dict(template.options)
        self.seeds = [int(s) for s in seeds]
        self.size = len(members)
        self.uses_retrieval = template.uses_retrieval
        names = [n for n, _ in template.named_parameters()]
        self._names = {n: n.replace(".", "__") for n in names}
        per_member = [dict(m.named_parameters()) for m in members]
        self.params = nn.ParameterDict(
            {
                key: nn.Parameter(torch.stack([pm[n].detach() for pm in per_member]).clone())
                for n, key in self._names.items()
            }
        )
        object.__setattr__(self, "_template", template)  # not a submodule: no double params

    @property
    def template(self) -> SeqModel:
        t: SeqModel = self.__dict__["_template"]
        return t

    def stacked(self) -> dict[str, Tensor]:
        """``{member parameter name: stacked tensor [E, *shape]}`` (live parameters)."""
        return {n: self.params[key] for n, key in self._names.items()}

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 3 or inputs.shape[0] != self.size:
            raise ValueError(
                f"ensemble of {self.size}: inputs must be [{self.size}, batch, time], "
                f"got shape {tuple(inputs.shape)}"
            )
        return self.template.ensemble_forward(self.stacked(), inputs)

    def member(self, i: int) -> SeqModel:
        """A standalone model with member ``i``'s current weights (a copy, not a view)."""
        if not -self.size <= i < self.size:
            raise IndexError(f"member {i} of an ensemble of {self.size}")
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.params[self._names[n]][i])
        model.seed = self.seeds[i]
        return model

    def members(self) -> list[SeqModel]:
        return [self.member(i) for i in range(self.size)]

    def state_size(self, length: int) -> int:
        """Per member (all members are the same architecture)."""
        return self.template.state_size(length)

    def state_bits(self, length: int) -> int:
        """Per member (all members are the same architecture)."""
        return self.template.state_bits(length)

    def num_parameters(self) -> int:
        """Trainable scalars *per member*."""
        return self.template.num_parameters()

    def config(self) -> dict[str, Any]:
        cfg = self.template.config()
        cfg.pop("seed", None)
        cfg["seeds"] = list(self.seeds)
        return cfg

    def member_grad_norms(self) -> Tensor:
        """The L2 norm of each member's gradient, ``[E]`` (0 where there is none)."""
        total: Tensor | None = None
        for p in self.params.values():
            if p.grad is None:
                continue
            sq = p.grad.detach().pow(2).reshape(self.size, -1).sum(dim=1)
            total = sq if total is None else total + sq
        if total is None:
            return torch.zeros(self.size, device=next(iter(self.params.values())).device)
        return total.sqrt()

    def clip_grad_norm_(self, max_norm: float) -> Tensor:
        """Clip each member's gradient to L2 norm ``max_norm`` independently (what
        ``torch.nn.utils.clip_grad_norm_`` would do to each model alone); returns the norms
        before clipping, ``[E]``."""
        norms = self.member_grad_norms()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p in self.params.values():
            if p.grad is not None:
                p.grad.mul_(scale.to(p.grad).view(-1, *([1] * (p.dim() - 1))))
        return norms

    def train(self, mode: bool = True) -> Ensemble:
        """Set training mode here and on the template, whose forward code runs (a family may
        behave differently in training, e.g. the ``looped`` family's noise)."""
        super().train(mode)
        self.template.train(mode)
        return self

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> Ensemble:
        super()._apply(fn, recurse)
        self.template._apply(fn, recurse)  # keep the template's buffers/dtype in step
        return self

    def extra_repr(self) -> str:
        return f"family={self.family!r}, size={self.size}, width={self.width}, seeds={self.seeds}"
