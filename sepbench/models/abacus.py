"""Abacus position ids (MC24): a digit's index inside its run of digits, read from tokens alone.

id = the 1-based index of a token inside the maximal run of consecutive digit tokens that
contains it, 0 on every other token. With numbers written least-significant digit first (the
``addition`` task's ``lsb`` order, no index hints) the id is the digit's significance, so the
j-th digits of both operands and of the sum share an id — what the task records as
``meta["digit_pos"]``. Position t's id depends on tokens ≤ t only (causal).

In training MC24 add one random k ~ U{0 … max_k} to every non-zero id of a batch, so that ids
beyond the training lengths are trained too; the table must then hold the largest test id plus
the largest k.
"""

from __future__ import annotations

import torch
from torch import Tensor


def abacus_ids(tokens: Tensor, digit_min: int, digit_max: int) -> Tensor:
    """Abacus ids of ``tokens : [..., T]`` whose digits are the ids ``digit_min … digit_max``.

    The run index is t minus the position of the last non-digit at or before t (−1 if none):
    one running maximum over the row.
    """
    digit = (tokens >= digit_min) & (tokens <= digit_max)
    pos = torch.arange(tokens.shape[-1], device=tokens.device)
    last_break = torch.cummax(torch.where(digit, -1, pos), dim=-1).values
    return torch.where(digit, pos - last_break, 0)


def abacus_step(tokens: Tensor, run: Tensor, digit_min: int, digit_max: int) -> Tensor:
    """The id of the next token given the current run length ``run`` (same shape): the run
    grows by one on a digit and resets to 0 otherwise — the id is the new run length."""
    digit = (tokens >= digit_min) & (tokens <= digit_max)
    return torch.where(digit, run + 1, torch.zeros_like(run))
