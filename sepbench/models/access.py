"""How a forward pass reads its weights: one model's own parameters, or an ensemble's stack.

The Transformer, SSM and hybrid layers write their forward pass once, against a
:class:`Weights` accessor: ``w.linear(x, "W_Q")``, ``w.norm(x, "ln1")``, ``w.vector("D", x)``.
For a single model (``Weights.of(module)``) these are the plain ``F.linear`` / ``F.layer_norm``
calls on the module's own parameters. For an ensemble (``Weights.stacked(template, params)``)
every parameter carries a leading member dimension E, activations carry it too
(``x : [E, B, T, d]``), linear maps become one batched matmul over the members and
weight-free parts (attention scores, the SSM scan) simply fold E into the batch. So member e of
an ensemble computes exactly what the single model with member e's weights computes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Weights:
    """A view of one module's weights, for a single model or for an ensemble's stack."""

    def __init__(
        self, module: nn.Module, params: Mapping[str, Tensor] | None, prefix: str = ""
    ) -> None:
        self.module = module
        self.params = params
        self.prefix = prefix

    @classmethod
    def of(cls, module: nn.Module) -> Weights:
        """The module's own parameters (one model)."""
        return cls(module, None)

    @classmethod
    def stacked(cls, template: nn.Module, params: Mapping[str, Tensor]) -> Weights:
        """Stacked parameters ``params[name] : [E, *shape]`` named as in ``template``."""
        return cls(template, params)

    @property
    def is_stacked(self) -> bool:
        return self.params is not None

    def sub(self, name: str) -> Weights:
        """The weights of submodule ``name``."""
        return Weights(self.module.get_submodule(name), self.params, f"{self.prefix}{name}.")

    def get(self, name: str) -> Tensor | None:
        """Parameter ``name`` (``[E, *shape]`` when stacked); None if the module has none."""
        if self.params is not None:
            return self.params.get(self.prefix + name)
        value = getattr(self.module, name, None) if "." not in name else None
        if value is None and "." in name:
            head, _, tail = name.rpartition(".")
            value = getattr(self.module.get_submodule(head), tail, None)
        return value if isinstance(value, Tensor) else None

    def tensor(self, name: str) -> Tensor:
        value = self.get(name)
        if value is None:
            raise KeyError(f"no parameter {self.prefix + name}")
        return value

    def vector(self, name: str, like: Tensor) -> Tensor:
        """Parameter ``name`` of shape ``[*s]`` (stacked ``[E, *s]``) shaped to broadcast against
        an activation ``like`` whose trailing dims are ``s`` (and leading dim E when stacked)."""
        value = self.tensor(name)
        if self.params is None:
            return value
        inner = value.dim() - 1
        return value.view(value.shape[0], *([1] * (like.dim() - 1 - inner)), *value.shape[1:])

    def linear(self, x: Tensor, name: str) -> Tensor:
        """The ``nn.Linear`` submodule ``name`` applied to ``x : [..., in]``."""
        weight, bias = self.tensor(name + ".weight"), self.get(name + ".bias")
        if self.params is None:
            return F.linear(x, weight, bias)
        e = weight.shape[0]
        flat = x.reshape(e, -1, x.shape[-1])
        if bias is None:
            y = torch.bmm(flat, weight.transpose(1, 2))
        else:
            y = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
        return y.view(*x.shape[:-1], weight.shape[1])

    def norm(self, x: Tensor, name: str) -> Tensor:
        """The ``nn.LayerNorm`` (or ``nn.Identity``) submodule ``name`` applied to ``x``."""
        module = self.module.get_submodule(name)
        if not isinstance(module, nn.LayerNorm):
            return x
        weight, bias = self.get(name + ".weight"), self.get(name + ".bias")
        if self.params is None:
            return F.layer_norm(x, module.normalized_shape, weight, bias, module.eps)
        y = F.layer_norm(x, module.normalized_shape, None, None, module.eps)
        if weight is not None:
            y = y * self.vector(name + ".weight", y)
        if bias is not None:
            y = y + self.vector(name + ".bias", y)
        return y

    def embed(self, tokens: Tensor, name: str) -> Tensor:
        """The ``nn.Embedding`` submodule ``name`` at ``tokens`` (stacked: ``[E, ...]``)."""
        table = self.tensor(name + ".weight")
        if self.params is None:
            return F.embedding(tokens, table)
        e, v, d = table.shape
        offset = torch.arange(e, device=tokens.device) * v
        idx = tokens + offset.view(e, *([1] * (tokens.dim() - 1)))
        return F.embedding(idx, table.reshape(e * v, d))
