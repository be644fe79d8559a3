"""Finite precision beyond the built-in dtypes: run a network with every number rounded to p
mantissa bits, and find the fewest bits at which a construction stays correct.

B24 §2 lets every number of a model live on a p-bit grid and proves its upper bounds at
p = O(log N). :class:`Rounding` simulates that on top of float64:

* every **parameter** is rounded once (:func:`rounded_copy`), and
* every **floating-point result of a torch operation** is rounded (a
  :class:`torch.overrides.TorchFunctionMode`): ``F.linear``, ``matmul``, ``relu``, ``exp``,
  additions, … — so a residual update ``x + attn(x)`` is rounded after the attention *and*
  after the sum.

Rounding is round-to-nearest-even of the significand to p explicit mantissa bits (p + 1
significant bits, as IEEE counts them: float16 has p = 10, bfloat16 p = 7, float32 p = 23,
float64 p = 52), done exactly in float64 with ``torch.frexp``/``torch.ldexp``. p = 52 is the
identity on float64. The exponent range is float64's (no overflow or underflow is simulated):
this isolates the mantissa.

**Fixed point** (``fixed=True``) is B24's own grid instead: every number is rounded to the
nearest multiple of 2^(−f) and clipped to ±2^f (B24: step N^(−K), clipped at ±N^K, so f plays
K·log2 N and a number takes 2f + 1 bits). Floating point keeps small numbers relatively exact
(an attention weight of 10^(−9) stays 10^(−9)), fixed point does not (it becomes 0 or 2^(−f)):
the two answer different questions, and the precision curves report both.

Granularity (what "every operation" means here). Softmax attention
(``F.scaled_dot_product_attention``) and ``softmax`` are decomposed — scores, scaling, masking,
max-subtraction, exp, the normaliser, the division and the weighted sum are each rounded. A
single op that reduces (a matrix product's dot products, a ``sum``) accumulates in float64 and
rounds once, like a wide accumulator. Fused kernels that the mode cannot see into (the cuDNN /
ATen RNN cells ``rnn_tanh``, ``lstm``, ``gru``) are rounded at their outputs only: a recurrent
construction that wants per-step rounding must run its cells step by step. Views (results
sharing storage with an input) are left alone; in-place ops are rounded in place.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from sepbench.errors import UserError

FLOAT64_BITS = 52
"""Explicit mantissa bits of float64 (rounding to them is the identity)."""
DTYPE_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}
"""Explicit mantissa bits of the built-in dtypes, for comparison with simulated precisions."""


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= FLOAT64_BITS:
        raise UserError(f"mantissa bits must be an integer in 0..{FLOAT64_BITS}, got {bits!r}")
    return bits


def round_mantissa(x: Tensor, bits: int) -> Tensor:
    """``x`` rounded to ``bits`` explicit mantissa bits (round to nearest, ties to even).

    Non-floating tensors and non-finite entries are returned unchanged; float dtypes narrower
    than ``bits`` are returned unchanged too (they already hold fewer bits).
    """
    if not x.is_floating_point():
        return x
    native = DTYPE_BITS.get(str(x.dtype).removeprefix("torch."), FLOAT64_BITS)
    if bits >= native:
        return x
    mant, expo = torch.frexp(x)  # x = mant · 2^expo, |mant| in [0.5, 1); ±inf, nan kept
    scale = float(2 ** (bits + 1))
    return torch.ldexp(torch.round(mant * scale) / scale, expo)


def round_fixed(x: Tensor, bits: int) -> Tensor:
    """``x`` rounded to the nearest multiple of 2^(−bits) (ties to even) and clipped to
    ±2^bits; non-finite entries (−inf masks) are kept."""
    if not x.is_floating_point():
        return x
    scale = float(2**bits)
    out = torch.clamp(torch.round(x * scale) / scale, -scale, scale)
    return torch.where(torch.isfinite(x), out, x)


def rounder(bits: int, fixed: bool = False) -> Callable[[Tensor], Tensor]:
    """The rounding function of a precision: mantissa bits, or fixed-point fraction bits."""
    bits = _check_bits(bits)
    if fixed:
        return lambda x: round_fixed(x, bits)
    return lambda x: round_mantissa(x, bits)


def rounded_copy(module: nn.Module, bits: int, fixed: bool = False) -> nn.Module:
    """A float64 deep copy of ``module`` with every parameter and buffer rounded."""
    r = rounder(bits, fixed)
    clone = copy.deepcopy(module).double()
    with torch.no_grad():
        for t in [*clone.parameters(), *clone.buffers()]:
            if t.is_floating_point():
                t.copy_(r(t))
    return clone


_SKIP = {"__get__", "__set__", "size", "dim", "numel", "__len__", "__repr__", "__format__"}


class Rounding(TorchFunctionMode):
    """Round every floating result of a torch operation to ``bits`` mantissa bits.

    Use as a context manager around a forward pass of a float64 module whose parameters were
    rounded with :func:`rounded_copy` (:func:`run_rounded` does both). ``fixed=True`` rounds
    to the fixed-point grid of :func:`round_fixed` instead.
    """

    def __init__(self, bits: int, fixed: bool = False) -> None:
        super().__init__()
        self.bits = _check_bits(bits)
        self.fixed = bool(fixed)
        self.r = rounder(bits, fixed)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _SKIP:
            return func(*args, **kwargs)
        if func is F.scaled_dot_product_attention:
            return self._attention(*args, **kwargs)
        if func in (torch.softmax, F.softmax, Tensor.softmax):
            return self._softmax(*args, **kwargs)
        out = func(*args, **kwargs)
        inplace = (name.endswith("_") and not name.startswith("__")) or name.startswith("__i")
        if isinstance(out, Tensor) and out.is_floating_point():
            if inplace:
                with torch.no_grad():
                    out.copy_(self.r(out))
                return out
            if _is_view_of_input(out, args, kwargs):
                return out
            return self.r(out)
        if isinstance(out, tuple) and not inplace:
            # unbind/split/chunk return views that callers may write through: keep those
            return type(out)(
                self.r(o)
                if isinstance(o, Tensor) and o.is_floating_point()
                and not _is_view_of_input(o, args, kwargs)
                else o
                for o in out
            )  # fmt: skip
        return out

    def _softmax(self, x: Tensor, dim: int | None = None, *args: Any, **kwargs: Any) -> Tensor:
        dtype = kwargs.get("dtype")
        if dtype is not None:
            x = x.to(dtype)
        if dim is None:
            dim = kwargs.get("dim", -1)
        assert dim is not None
        top = x.amax(dim=dim, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        z = self.r(x - top)
        e = self.r(torch.exp(z))
        total = self.r(e.sum(dim=dim, keepdim=True))
        return self.r(e / total)

    def _attention(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> Tensor:
        if dropout_p:
            raise UserError("precision simulation: attention dropout is not supported")
        s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        logits = self.r(query @ key.transpose(-2, -1))
        if s != 1.0:
            logits = self.r(logits * s)
        big, small = query.shape[-2], key.shape[-2]
        if is_causal:
            keep = torch.ones(big, small, dtype=torch.bool, device=query.device).tril()
            logits = logits.masked_fill(~keep, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                logits = logits.masked_fill(~attn_mask, float("-inf"))
            else:
                logits = self.r(logits + attn_mask)
        weights = self._softmax(logits, -1)
        return self.r(weights @ value)


def _is_view_of_input(out: Tensor, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    try:
        ptr = out.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return False
    if ptr == 0:
        return False
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor):
            try:
                if a.untyped_storage().data_ptr() == ptr:
                    return True
            except (RuntimeError, NotImplementedError):
                continue
    return False


@torch.no_grad()
def run_rounded(module: nn.Module, inputs: Tensor, bits: int, fixed: bool = False) -> Tensor:
    """``module(inputs)`` with parameters and every intermediate result rounded."""
    clone = rounded_copy(module, bits, fixed)
    with Rounding(bits, fixed):
        out: Tensor = clone(inputs)
    return out
