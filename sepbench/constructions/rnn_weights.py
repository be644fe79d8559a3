"""Helpers shared by the recurrent constructions: codes, and writing hand-set weights.

Every recurrent construction assembles its weights as float64 numpy arrays in the layout of
:mod:`sepbench.models.rnn` (PyTorch's: ``weight_ih [G·H, vocab]`` for one-hot inputs,
``weight_hh [G·H, H]``, the LSTM's row blocks ``i, f, g, o``, ``readout.weight [vocab, H]``) and
copies them into a model made by ``models.build``. Nothing here registers a construction.

Threshold units. A sigmoid unit with pre-activation ``L·(v − θ)`` where v is an integer
combination of 0/1 inputs and θ is a half-integer has margin ≥ L/2; with L = 10⁴ the float32
sigmoid returns exactly 0.0 or 1.0 (σ(−5000) underflows, σ(5000) rounds to 1), so such units
are exact Boolean gates and nothing drifts over any number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench.errors import UserError

SCALE = 1.0e4
"""Default gain L of the threshold units (H20: weights scaled by ~10⁴)."""


def code_bits(count: int) -> int:
    """Bits of a binary code for ``count`` distinct values: max(1, ⌈log2 count⌉)."""
    return max(1, math.ceil(math.log2(count))) if count > 1 else 1


def binary(value: int, bits: int) -> np.ndarray:
    """The ``bits``-bit binary code of ``value``, most significant bit first (0/1 floats)."""
    return np.array([(value >> (bits - 1 - j)) & 1 for j in range(bits)], dtype=np.float64)


def signs(value: int, bits: int) -> np.ndarray:
    """The ±1 code of ``value``: 2·binary − 1. ⟨signs(a), signs(b)⟩ = bits − 2·Hamming(a, b)."""
    return 2.0 * binary(value, bits) - 1.0


def check_scale(scale: float) -> float:
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise UserError(f"scale must be a positive number, got {scale!r}")
    return scale


def assign(module: nn.Module, values: Mapping[str, np.ndarray]) -> None:
    """Copy ``values`` (numpy arrays, by parameter name) into ``module``; every parameter
    named must exist with the same shape. Parameters not named are set to zero."""
    params = dict(module.named_parameters())
    unknown = set(values) - set(params)
    if unknown:
        raise AssertionError(f"no parameters named {sorted(unknown)}")
    with torch.no_grad():
        for name, p in params.items():
            if name in values:
                arr = np.asarray(values[name], dtype=np.float64)
                if arr.shape != tuple(p.shape):
                    raise AssertionError(f"{name}: shape {arr.shape}, expected {tuple(p.shape)}")
                p.copy_(torch.from_numpy(arr).to(p.dtype))
            else:
                p.zero_()


def onehot_rnn(
    family: str,
    vocab_size: int,
    width: int,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    bias: np.ndarray,
    readout: Readout,
    **options: Any,
) -> nn.Module:
    """``models.build(family, vocab, width, embedding="onehot", **options)`` with the one-layer
    recurrence's ``weight_ih``, ``weight_hh``, ``bias_ih`` and the readout set; every other
    parameter zero. Elman defaults to the sigmoid (threshold) units of this module."""
    from sepbench import models

    if family == "elman" or options.get("cell") == "elman":
        options.setdefault("nonlinearity", "sigmoid")
    model = models.build(family, vocab_size, width, embedding="onehot", seed=0, **options)
    weights = {"rnn.weight_ih_l0": w_ih, "rnn.weight_hh_l0": w_hh, "rnn.bias_ih_l0": bias}
    assign(model, weights | readout.params())
    return model


class Readout:
    """A readout ``logits = W h + b`` over a vocabulary: every token starts at ``floor``
    (a constant logit that never wins) and answer tokens get rows set by hand."""

    def __init__(self, vocab_size: int, width: int, floor: float = -1.0) -> None:
        self.weight = np.zeros((vocab_size, width))
        self.bias = np.full(vocab_size, float(floor))

    def params(self) -> dict[str, np.ndarray]:
        return {"readout.weight": self.weight, "readout.bias": self.bias}
