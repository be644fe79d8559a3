"""Bounded precision: the grids numbers are quantised to, and the straight-through quantiser.

B24's model of computation (§2) gives every number p bits. The testbed makes p a model option
(docs/precision.md): ``state_bits`` p quantises every number a recurrent model carries from one
step to the next, ``precision_bits`` p the residual stream, queries, keys and values of an
attention layer. Both use the one :class:`Grid` below.

**The grid.** ``Grid(bits=p, lo, hi)``: the 2^p evenly spaced values from ``lo`` to ``hi``,
both ends included — lo + k·(hi − lo)/(2^p − 1), k = 0 … 2^p − 1 (p = 1: {lo, hi}, the two
states of a saturated unit). :func:`snap` clamps a number to [lo, hi] and rounds it to the
nearest level (ties to the even k, torch's ``round``), so a quantised number is one of exactly
2^p values: p bits. Why both ends: a saturated tanh / sigmoid unit (H20's constructions) then
keeps its exact values ±1 / {0, 1} at every p; a grid without its ends (mid-rise) would move
them. The levels are computed as k·step + lo in float32 for p ≤ :data:`FLOAT32_BITS` (the
rounding error is then at most about 1/8 of a step, so k is recovered exactly and ``snap`` is
idempotent) and in float64 above, stored back in the tensor's dtype. Beyond p ≈ 24 the grid
is finer than float32's own spacing near ±1: stored states are then float32 roundings of
levels — still at most 2^p distinct values per number, so every bound stays valid, and
``snap`` stays idempotent (the nearest level to a stored value rounds back to it).

**Ranges** (what each family clamps to, and why — the range loses no expressivity where the
recurrence is homogeneous in its state):

* tanh Elman, GRU, LSTM h: [−1, 1], the image of tanh (a GRU's h is a convex combination of
  tanh values and h₀ = 0; an LSTM's h = o·tanh(c)); nothing is clamped;
* sigmoid Elman: [0, 1], sigmoid's image; relu Elman: [0, 1] — relu is positively
  homogeneous, so a state clamped to [0, R] is the state clamped to [0, 1] of the network with
  input weights and biases divided by R and readout weights multiplied by R: R = 1 is no loss;
* LSTM c: [−1, 1] — c is unbounded (|c_t| ≤ |c_{t−1}| + 1); one write i·g ∈ (−1, 1) spans the
  whole range, and tanh(c) is read through the output gate anyway. Not homogeneous (tanh(c)),
  so the range is a real choice: it is fixed, not learned, so the option adds no parameter;
* SSM h: [−1, 1] — the recurrence h_t = ā_t h_{t−1} + x_t B_t and the read y_t = C_t·h_t are
  linear in h, so a range [−R, R] is the range [−1, 1] with B_proj divided by R and C_proj
  multiplied by R: no loss;
* attention (:func:`fixed_point`): [−R, R] with R = 2^⌊(p − 1)/2⌋, B24's fixed-point grid —
  step N^(−K) clipped at ±N^K balances range and resolution (step · R = 1); 2^p levels over
  [−R, R] have step 2R/(2^p − 1), so step · R ≈ 2R²/2^p = 1 for odd p and 1/2 for even p
  (R a power of two, so the ends are exact floats). So p = 2K·log2 N + 1 bits is B24's grid
  at length N.

**Training** (straight-through estimator, Bengio et al. 2013; the "clipped" variant):
:func:`quantise` returns the snapped value forward and passes the gradient through unchanged
where the number lies inside [lo, hi] (zero outside, clamp's own derivative) — the quantiser
acts as the identity on gradients and the network trains as if unquantised while computing
exactly what the quantised network computes. The batched RNN kernels
(:mod:`sepbench.models.recurrence`) do the same by hand (:func:`snap_` in place; the backward
pass uses the activation's unquantised output for its derivative and :func:`inside` as the
mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sepbench.models.cards import MAX_BITS

FLOAT32_BITS = 20
"""Largest p whose levels :func:`snap` computes in float32 (module docstring)."""


@dataclass(frozen=True)
class Grid:
    """The 2^``bits`` evenly spaced values from ``lo`` to ``hi``, both included."""

    bits: int
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= MAX_BITS or not self.lo < self.hi:
            raise ValueError(f"a grid needs 1 <= bits <= {MAX_BITS} and lo < hi, got {self}")

    @property
    def count(self) -> int:
        """Number of levels, 2^bits."""
        return 1 << self.bits

    @property
    def step(self) -> float:
        """Distance between neighbouring levels, (hi − lo) / (2^bits − 1)."""
        return (self.hi - self.lo) / (self.count - 1)

    def levels(self, like: Tensor | None = None) -> Tensor:
        """All 2^bits levels, ascending (as :func:`snap` stores them), for tests and counting."""
        dtype = torch.float32 if like is None else like.dtype
        k = torch.arange(self.count, dtype=torch.float64)
        return snap((k * self.step + self.lo).to(dtype), self)


def unit(bits: int) -> Grid:
    """[−1, 1]: tanh-bounded states, the LSTM cell, the SSM state (module docstring)."""
    return Grid(bits, -1.0, 1.0)


def positive(bits: int) -> Grid:
    """[0, 1]: sigmoid and relu Elman states."""
    return Grid(bits, 0.0, 1.0)


def fixed_point(bits: int) -> Grid:
    """B24's fixed-point grid for attention: [−R, R] with R = 2^⌊(bits − 1)/2⌋, step ≈ 1/R
    (odd bits) or 1/(2R) (even bits)."""
    r = math.ldexp(1.0, (bits - 1) // 2)
    return Grid(bits, -r, r)


def elman_grid(bits: int, nonlinearity: str) -> Grid:
    """The grid of an Elman state with this activation."""
    return unit(bits) if nonlinearity == "tanh" else positive(bits)


def snap(x: Tensor, grid: Grid) -> Tensor:
    """``x`` clamped to [lo, hi] and rounded to the nearest level (no gradient: see
    :func:`quantise`)."""
    if _needs_float64(x, grid):
        return _snap_inplace(x.double(), grid).to(x.dtype)
    return _snap_inplace(x.clone(), grid)


def snap_(x: Tensor, grid: Grid) -> Tensor:
    """:func:`snap` in place (the kernels' forward loops); returns ``x``."""
    if _needs_float64(x, grid):
        return x.copy_(snap(x, grid))
    return _snap_inplace(x, grid)


def _needs_float64(x: Tensor, grid: Grid) -> bool:
    return grid.bits > FLOAT32_BITS and x.dtype != torch.float64


def _snap_inplace(x: Tensor, grid: Grid) -> Tensor:
    """k = round((clamp(x) − lo) · (2^p − 1)/(hi − lo)), then k · step + lo, in place."""
    scale = (grid.count - 1) / (grid.hi - grid.lo)
    x.clamp_(grid.lo, grid.hi).sub_(grid.lo).mul_(scale).round_()
    return x.mul_(grid.step).add_(grid.lo)


def inside(x: Tensor, grid: Grid) -> Tensor:
    """Where the clipped straight-through gradient passes: lo ≤ x ≤ hi (a float 0/1 mask)."""
    return ((x >= grid.lo) & (x <= grid.hi)).to(x.dtype)


def quantise(x: Tensor, grid: Grid | None) -> Tensor:
    """``snap(x)`` forward; gradient 1 where lo ≤ x ≤ hi and 0 elsewhere (the clipped
    straight-through estimator). ``grid=None`` returns ``x`` itself (unbounded precision)."""
    if grid is None:
        return x
    if not x.requires_grad:
        return snap(x, grid)
    out: Tensor = _Quantise.apply(x, grid)
    return out


class _Quantise(torch.autograd.Function):
    """One autograd node per call (the sequential SSM scan calls it at every step)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Grid) -> Tensor:
        ctx.save_for_backward(x)
        ctx.grid = grid
        return snap(x, grid)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * inside(x, ctx.grid), None
