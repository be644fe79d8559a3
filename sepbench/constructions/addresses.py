"""Shared pieces of the attention constructions: nearly orthogonal addresses (B24 Lemma 2),
binary codes, and writing weights into a hand-built Transformer.

**Addresses.** ``T(i) ∈ {±1/√k}^k`` with i.i.d. uniform signs, for ``count`` items: every
``⟨T(i), T(i)⟩ = 1`` and the cross products ``⟨T(i), T(j)⟩ = (1/k)·Σ ±1`` concentrate at 0.
B24 Lemma 2 (Hoeffding + a union bound over the pairs) says that k = ⌈(8/γ²)·ln 2·count⌉
dimensions keep every ``|⟨T(i), T(j)⟩| ≤ γ`` with probability ≥ 1 − 1/(16·count²)
(:func:`sepbench.theory.address_dim`): the lemma's *sufficient* width.

**The lemma's margin is a checked hypothesis, not a hope.** A construction fixes γ, derives
its attention scale η from γ alone (from the separation 1 − γ, never from the draw it got),
and its correctness proof needs exactly one property of the draw: every cross product
``|⟨T(i), T(j)⟩| ≤ γ`` (:meth:`Addresses.margin_holds`; the proofs use only the upper side,
the check is the lemma's two-sided one). A draw that misses the margin still builds (so a
user can look at it) but its network is not certified: its ``HandBuilt.hypotheses_hold`` is
False and verification fails it.

**The width the testbed reports** (:func:`margin_dim`) is the smallest k at which the seeded
draw satisfies the margin — the lemma's quantity measured on one draw, instead of the
union-bound k (which is sufficient for every draw with high probability, and about 2–3 times
larger: e.g. k = 976 vs 309 at N = 1024, γ = 1/4). The scan is exact, not a bisection: the
margin is not monotone in k.

Draws are *nested in k*: the signs are filled dimension by dimension from one seeded stream, so
the k-dimensional addresses of a seed are the first k coordinates (rescaled) of its
k'-dimensional ones for any k' > k. A width search over k therefore compares one family of
vectors, not unrelated draws, and :func:`margin_dim` can add dimensions incrementally.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sepbench import coerce, models
from sepbench.errors import UserError
from sepbench.models.transformer import MLP, Attention, TransformerModel

MARGIN_DIM_MAX = 4096
""":func:`margin_dim` gives up above this dimension."""


@dataclass(frozen=True)
class Addresses:
    """``count`` unit vectors of dimension ``dim`` (rows of ``vectors``) and their cross
    products."""

    vectors: np.ndarray
    """float64 ``[count, dim]``, entries ±1/√dim."""
    max_cross: float
    """max_{i≠j} ⟨T(i), T(j)⟩ (−1 when count < 2)."""
    max_abs_cross: float
    """max_{i≠j} |⟨T(i), T(j)⟩| (0 when count < 2)."""

    @property
    def count(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def distinct(self) -> bool:
        """Whether all addresses differ."""
        return self.max_cross < 1.0 - 1e-12

    def margin_holds(self, gamma: float) -> bool:
        """B24 Lemma 2's property at margin γ: every |⟨T(i), T(j)⟩| ≤ γ (i ≠ j), exactly
        (cross products are multiples of 1/dim; the comparison is on the integers)."""
        return round(self.max_abs_cross * self.dim) <= gamma * self.dim + 1e-9

    def margin_text(self, gamma: float, what: str = "addresses") -> str:
        """One line: the measured cross products against γ, and whether the margin holds."""
        verdict = "holds" if self.margin_holds(gamma) else "FAILS"
        return (
            f"{self.count} {what} in {self.dim} dims: max |<T(i),T(j)>| = "
            f"{self.max_abs_cross:.4g} vs gamma = {gamma:g}: margin {verdict}"
        )


def check_gamma(gamma: float) -> float:
    """γ must lie in (0, 1): the proofs use the separation 1 − γ > 0."""
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 < gamma < 1:
        raise UserError(f"gamma must be a number in (0, 1), got {gamma!r}")
    return float(gamma)


def _signs(count: int, dim: int, seed: int, stream: int) -> np.ndarray:
    """``[count, dim]`` ±1 signs of the seeded draw (nested in ``dim``)."""
    rng = np.random.default_rng([int(seed), int(stream), int(count)])
    # one uniform per (dimension, item), dimension-major: the first k rows of a larger draw are
    # exactly the smaller draw (numpy fills doubles sequentially)
    return np.where(rng.random((int(dim), int(count))) < 0.5, -1.0, 1.0).T


def _check_draw(count: int, dim: int, seed: int) -> None:
    """UserError unless the draw's size and seed are integers in range (:mod:`sepbench.coerce`)."""
    coerce.integer("address dimension", dim)
    coerce.seed(seed)
    coerce.integer("address count", count)


def random_addresses(count: int, dim: int, seed: int = 0, stream: int = 0) -> Addresses:
    """``count`` random sign addresses in ``dim`` dimensions from ``seed`` (nested in ``dim``).

    ``stream`` separates independent families drawn for one network (e.g. positions and key
    contents) so they do not share signs.
    """
    _check_draw(count, dim, seed)
    signs = _signs(count, dim, seed, stream)
    top, top_abs = _max_cross(signs)
    return Addresses(signs / math.sqrt(dim), top / dim, top_abs / dim)


def _max_cross(signs: np.ndarray, chunk: int = 2048) -> tuple[float, float]:
    """(max, max |·|) over i ≠ j of the integer cross products of the ±1 rows ``signs``."""
    count = signs.shape[0]
    if count < 2:
        return -float(signs.shape[1]), 0.0
    best, best_abs = -math.inf, 0.0
    for lo in range(0, count, chunk):
        block = signs[lo : lo + chunk] @ signs.T  # exact integers in float64
        rows = np.arange(block.shape[0])
        block[rows, lo + rows] = 0.0
        best_abs = max(best_abs, float(np.abs(block).max()))
        block[rows, lo + rows] = -math.inf
        best = max(best, float(block.max()))
    return best, best_abs


@functools.lru_cache(maxsize=256)
def margin_dim(
    count: int, gamma: float, seed: int = 0, stream: int = 0, start: int = 1
) -> int | None:
    """The smallest k ≥ ``start`` at which the seeded draw of ``count`` addresses satisfies
    B24 Lemma 2's margin (every |⟨T(i), T(j)⟩| ≤ γ), or None when no k ≤ MARGIN_DIM_MAX does.

    Exact: the integer Gram matrix G_k = Σ_{d<k} s_d s_dᵀ of the nested draw is grown
    dimension block by dimension block. If M_k = max_{i≠j} |G_k[i, j]| > γk, no k' with
    k < k' < (M_k + k)/(1 + γ) can satisfy the margin — each added dimension moves a cross
    product by at most 1, so M_k' ≥ M_k − (k' − k) > γk' there — and the scan jumps to that
    bound. Cost: one Gram update per jump, in all about count² · k multiply-adds.
    """
    _check_draw(count, start, seed)
    gamma = check_gamma(gamma)
    n = int(count)
    if n < 2:
        return int(start)
    rng = np.random.default_rng([int(seed), int(stream), n])
    gram = np.zeros((n, n), dtype=np.float32)  # integers below 2^24: exact
    drawn = np.zeros((n, 0), dtype=np.float32)
    k, target = 0, int(start)
    diag = np.arange(n)
    while target <= MARGIN_DIM_MAX:
        if drawn.shape[1] < target:  # draw the dimensions up to `target` (in stream order)
            more = target - drawn.shape[1]
            new = np.where(rng.random((more, n)) < 0.5, -1.0, 1.0).astype(np.float32).T
            drawn = np.concatenate([drawn, new], axis=1)
        block = drawn[:, k:target]
        gram += block @ block.T
        k = target
        gram[diag, diag] = 0.0
        top = float(np.abs(gram).max())
        if top <= gamma * k + 1e-9:
            return k
        target = max(k + 1, math.ceil((top + k) / (1.0 + gamma) - 1e-9))
    return None


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
