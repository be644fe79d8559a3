"""Shared pieces of the attention constructions: nearly orthogonal addresses (B24 Lemma 2),
binary codes, and writing weights into a hand-built Transformer.

**Addresses.** ``T(i) ∈ {±1/√k}^k`` with i.i.d. uniform signs, for ``count`` items: every
``⟨T(i), T(i)⟩ = 1`` and the cross products ``⟨T(i), T(j)⟩ = (1/k)·Σ ±1`` concentrate at 0.
B24 Lemma 2 (Hoeffding + a union bound over the pairs) says that k = ⌈(8/γ²)·ln 2·count⌉
dimensions keep every cross product below γ with probability ≥ 1 − 1/(16·count²)
(:func:`sepbench.theory.address_dim`). A construction never relies on the probability: it
*measures* the separation

    δ = 1 − max_{i≠j} ⟨T(i), T(j)⟩

of the draw it got and scales its attention by η ∝ 1/δ, so any k with δ > 0 yields a network
(the smaller k, the smaller δ and the larger η, i.e. the more precision it needs). δ ≤ 0
means two addresses coincide; such a draw is still built (with δ floored at 2/k, the smallest
positive gap of ±1/√k vectors) and simply fails verification — which is what the smallest-width
search wants to see.

Draws are *nested in k*: the signs are filled dimension by dimension from one seeded stream, so
the k-dimensional addresses of a seed are the first k coordinates (rescaled) of its
k'-dimensional ones for any k' > k. A width search over k therefore compares one family of
vectors, not unrelated draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sepbench import coerce, models
from sepbench.models.transformer import MLP, Attention, TransformerModel


@dataclass(frozen=True)
class Addresses:
    """``count`` unit vectors of dimension ``dim`` (rows of ``vectors``) and their separation."""

    vectors: np.ndarray
    """float64 ``[count, dim]``, entries ±1/√dim."""
    max_cross: float
    """max_{i≠j} ⟨T(i), T(j)⟩ (−1 when count < 2)."""

    @property
    def count(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def delta(self) -> float:
        """δ = 1 − max cross product, floored at 2/dim (see the module docstring)."""
        return max(1.0 - self.max_cross, 2.0 / self.dim)

    @property
    def distinct(self) -> bool:
        """Whether all addresses differ (δ > 0 before flooring)."""
        return self.max_cross < 1.0 - 1e-12


def random_addresses(count: int, dim: int, seed: int = 0, stream: int = 0) -> Addresses:
    """``count`` random sign addresses in ``dim`` dimensions from ``seed`` (nested in ``dim``).

    ``stream`` separates independent families drawn for one network (e.g. positions and key
    contents) so they do not share signs.
    """
    dim = coerce.integer("address dimension", dim)
    seed = coerce.seed(seed)
    rng = np.random.default_rng([int(seed), int(stream), int(count)])
    # one uniform per (dimension, item), dimension-major: the first k rows of a larger draw are
    # exactly the smaller draw (numpy fills doubles sequentially)
    signs = np.where(rng.random((int(dim), int(count))) < 0.5, -1.0, 1.0).T
    return Addresses(signs / math.sqrt(dim), _max_cross(signs))


def _max_cross(signs: np.ndarray, chunk: int = 2048) -> float:
    """max_{i≠j} ⟨T(i), T(j)⟩ of the ±1 rows ``signs`` (divided by the dimension), chunked."""
    count, dim = signs.shape
    if count < 2:
        return -1.0
    best = -math.inf
    for lo in range(0, count, chunk):
        block = signs[lo : lo + chunk] @ signs.T  # exact integers in float64
        rows = np.arange(block.shape[0])
        block[rows, lo + rows] = -math.inf
        best = max(best, float(block.max()))
    return best / dim


def code_bits(symbols: int) -> int:
    """Bits of the binary code of ``symbols`` values: ⌈log2 symbols⌉, at least 1."""
    return max(1, math.ceil(math.log2(max(symbols, 2))))


def binary_codes(symbols: int) -> np.ndarray:
    """``[symbols, code_bits]`` 0/1 matrix: row i is i in binary, least significant bit first."""
    bits = code_bits(symbols)
    return ((np.arange(symbols)[:, None] >> np.arange(bits)[None, :]) & 1).astype(np.float64)


def zero_(module: nn.Module) -> None:
    """Set every parameter of ``module`` to zero (hand-built weights start from nothing)."""
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()


def put(param: torch.Tensor, *index: slice | int, value: np.ndarray | float) -> None:
    """``param[index] = value`` without autograd (value broadcast as numpy would)."""
    with torch.no_grad():
        param[index] = torch.as_tensor(np.asarray(value), dtype=param.dtype)


def transformer(vocab_size: int, width: int, **options: Any) -> TransformerModel:
    """A float64 ``transformer`` from :func:`sepbench.models.build` with every weight zero and
    the theory's conventions (no layer norm, no 1/√d); ``options`` add or override."""
    opts: dict[str, Any] = {"layer_norm": False, "attn_scale": 1.0, "bias": True, **options}
    model = models.build("transformer", vocab_size, width, **opts)
    assert isinstance(model, TransformerModel)
    model = model.double()
    zero_(model)
    return model


def attention(model: TransformerModel, layer: int) -> Attention:
    """Layer ``layer``'s attention block (typed)."""
    return cast(Attention, cast(Any, model.layers[layer]).attn)


def mlp(model: TransformerModel, layer: int) -> MLP:
    """Layer ``layer``'s MLP (typed); the model must have been built with ``mlp_width > 0``."""
    block = cast(Any, model.layers[layer]).mlp
    assert block is not None
    return cast(MLP, block)


def bias(linear: nn.Linear | nn.Module) -> torch.Tensor:
    """The bias of a linear map built with ``bias=True``."""
    b = cast(nn.Linear, linear).bias
    assert b is not None
    return b
