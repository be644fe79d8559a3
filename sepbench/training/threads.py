"""CPU threads: one intra-op thread for small models, restored after each call.

Small models are dispatch-bound, and on a loaded machine extra OpenMP threads spin and wait:
measured on a shared 2-core machine, two threads made width-8 training and even single forward
passes up to 10x slower. Every training and evaluation entry point of this package therefore
runs under :func:`thread_scope` with :func:`auto_threads` unless given ``threads``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def auto_threads(num_parameters: int, tokens_per_step: int) -> int:
    """Intra-op threads for CPU training: 1 unless a step has enough arithmetic to share.

    Small models are dispatch-bound: extra threads only add synchronisation. The cut-off
    (about 1e10 multiply-adds per step, forward + backward) is deliberately high: on a loaded
    machine two threads made small models up to 10x slower (spinning OpenMP workers), while one
    thread costs at most the parallel speed-up on an idle one. Sweeps pass ``threads``.
    """
    work = 6 * num_parameters * tokens_per_step
    if work < 1e10:
        return 1
    return max(1, torch.get_num_threads())


def model_threads(
    model: nn.Module, tokens: int, device: torch.device, threads: int | None
) -> int | None:
    """``threads`` if given; else :func:`auto_threads` on CPU, ``None`` (leave as is) on GPU."""
    if threads is not None or device.type != "cpu":
        return threads
    return auto_threads(sum(p.numel() for p in model.parameters()), tokens)


@contextlib.contextmanager
def thread_scope(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, restored afterwards."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
