"""The cost of one training step against sequence length: bytes saved for backward, seconds.

Memory measure: the bytes of the tensors autograd saves for the backward pass during one
forward pass, counted once per storage (``torch.autograd.graph.saved_tensors_hooks`` sees every
saved tensor; views of one storage count once; the model's parameters are excluded, so the
number is per-example activation memory). It is the part of training memory that grows with the
input, the quantity RC23 and EBT23 compare (they report GPU peak memory; on a GPU
``torch.cuda.max_memory_allocated`` measures the same step with the transient buffers too).

Time measure: wall seconds of one training step (forward, cross-entropy at the last column,
backward, AdamW), the minimum over ``repeats`` steps after the measured first one.

:func:`measure_curve` walks a list of lengths and stops measuring a model once a power law
through its three largest measured points (:func:`sepbench.theory.fit_growth`) predicts
more than ``cap_bytes`` or ``cap_seconds``: the remaining lengths get that prediction, marked
``measured=False`` (drawn hollow by :func:`sepbench.report.cost.cost_figure`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from sepbench import models
from sepbench.theory import fit_growth

Batch = tuple[torch.Tensor, torch.Tensor]
"""(inputs [B, T], one target id per row [B]) — the answer is read at the last column."""


@dataclass(frozen=True)
class CostPoint:
    """One (model, n) measurement: ``saved_bytes`` per row and ``seconds`` per training step of
    a batch of ``batch`` rows; ``measured=False`` marks an extrapolation."""

    label: str
    family: str
    n: int
    saved_bytes: float
    seconds: float
    measured: bool
    width: int = 0
    batch: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    inputs, target = batch
    return F.cross_entropy(model(inputs)[:, -1], target)


def saved_bytes(model: torch.nn.Module, batch: Batch) -> int:
    """Bytes of the distinct storages autograd saves for backward in one training forward pass
    of ``model`` on ``batch`` (parameters excluded). Runs the backward pass too."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            seen[ptr] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _loss(model, batch)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def step_seconds(model: torch.nn.Module, batch: Batch, repeats: int) -> float:
    """The fastest of ``repeats`` training steps (forward, backward, AdamW), in seconds."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    best = math.inf
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _loss(model, batch).backward()
        opt.step()
        best = min(best, time.perf_counter() - start)
    return best


def _predict(points: Sequence[CostPoint], n: int, what: str, last: int = 3) -> float:
    """The power law (:func:`sepbench.theory.fit_growth`'s) through the ``last`` largest
    measured points, at n."""
    recent = [p for p in points if p.measured][-last:]
    law = fit_growth([p.n for p in recent], [getattr(p, what) for p in recent], n_boot=0)
    return float(law.laws["power"].predict(n)[()])


def measure_curve(
    label: str,
    family: str,
    options: dict[str, Any],
    width: int,
    vocab_size: int,
    lengths: Sequence[int],
    make_batch: Callable[[int], Batch],
    *,
    seed: int = 0,
    repeats: int = 2,
    cap_bytes: float = 4 * 2**30,
    cap_seconds: float = 300.0,
    log: Callable[[str], None] | None = None,
) -> list[CostPoint]:
    """Cost points of one model at each length (see the module docstring). ``make_batch(n)``
    gives the batch at length n; the model is built fresh (``seed``) and in training mode."""
    points: list[CostPoint] = []
    for n in lengths:
        if sum(p.measured for p in points) >= 3:
            mem, sec = _predict(points, n, "saved_bytes"), _predict(points, n, "seconds")
            if mem > cap_bytes or sec > cap_seconds or not points[-1].measured:
                points.append(CostPoint(label, family, n, mem, sec, False, width, 1, options))
                if log:
                    log(f"{label} n={n}: extrapolated {mem / 2**20:.1f} MiB, {sec:.2f} s")
                continue
        model = models.build(family, vocab_size, width, seed=seed, **options).train()
        batch = make_batch(n)
        start = time.perf_counter()
        mem = saved_bytes(model, batch)
        first = time.perf_counter() - start
        sec = step_seconds(model, batch, repeats if first < 5.0 else 1)
        points.append(CostPoint(label, family, n, float(mem), sec, True, width, 1, options))
        if log:
            log(f"{label} n={n}: {mem / 2**20:.1f} MiB, {sec:.3f} s")
    return points
