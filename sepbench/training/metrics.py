"""Teacher-forced evaluation: loss and token / sequence / answer accuracy.

With targets ``y`` (IGNORE where unsupervised) and greedy predictions ``argmax logits``:

* token accuracy — supervised positions predicted correctly / supervised positions;
* sequence accuracy — rows whose every supervised position is correct / rows with at least one
  supervised position (the early-stopping criterion);
* answer accuracy — rows whose *last* supervised position is correct (for single-answer tasks
  the same as sequence accuracy; for trace tasks the final answer under teacher forcing).

Counts are accumulated as tensors over any leading dimensions (the members of an ensemble), in
chunks, and read back once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sepbench.tasks import IGNORE, Task
from sepbench.training.threads import model_threads, thread_scope

N_COUNTS = 6  # loss_sum, tokens, tokens_ok, rows, rows_ok, answers_ok


TEACHER_FORCED = "teacher forced"
GENERATION = "generation"


@dataclass
class Metrics:
    """Metrics on ``examples`` rows. ``scoring`` says how sequence and answer accuracy were
    measured: :data:`TEACHER_FORCED` (every prediction on the reference prefix) or
    :data:`GENERATION` (exact match of the free-running continuation, and its final answer:
    :func:`sepbench.training.generate.score_generation`); loss and token accuracy are always
    teacher forced."""

    token_accuracy: float
    sequence_accuracy: float
    answer_accuracy: float
    loss: float
    examples: int
    scoring: str = TEACHER_FORCED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def counts(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed counts [..., N_COUNTS] over the batch dimension (second to last of ``targets``).

    ``logits`` [..., B, T, V], ``targets`` [..., B, T]; the leading dimensions are kept.
    """
    mask = targets != IGNORE
    safe = targets.masked_fill(~mask, 0)
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * mask
    ok = (logits.argmax(-1) == targets) & mask
    has = mask.any(-1)
    row_ok = (ok | ~mask).all(-1) & has
    positions = torch.arange(targets.shape[-1], device=targets.device)
    last = torch.where(mask, positions, -1).amax(-1).clamp_min(0)
    ans_ok = ok.gather(-1, last.unsqueeze(-1)).squeeze(-1) & has
    stacked = torch.stack(
        [
            nll.sum((-1, -2)),
            mask.sum((-1, -2)).to(nll.dtype),
            ok.sum((-1, -2)).to(nll.dtype),
            has.sum(-1).to(nll.dtype),
            row_ok.sum(-1).to(nll.dtype),
            ans_ok.sum(-1).to(nll.dtype),
        ],
        dim=-1,
    )
    return stacked.double()


def to_metrics(total: np.ndarray) -> Metrics:
    """One row of accumulated counts -> :class:`Metrics`."""
    loss_sum, tokens, tokens_ok, rows, rows_ok, answers_ok = (float(x) for x in total)
    return Metrics(
        token_accuracy=tokens_ok / tokens if tokens else 0.0,
        sequence_accuracy=rows_ok / rows if rows else 0.0,
        answer_accuracy=answers_ok / rows if rows else 0.0,
        loss=loss_sum / tokens if tokens else 0.0,
        examples=int(rows),
    )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` and ``torch.no_grad()`` for the block; the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def evaluate_arrays(
    model: nn.Module, inputs: np.ndarray, targets: np.ndarray, chunk: int = 1024
) -> np.ndarray:
    """Counts of ``model`` on numpy ``inputs``/``targets`` ([B, T] or, for an ensemble, [E, B, T]).

    Rows are processed ``chunk`` at a time (along B). Returns float64 counts: shape
    [N_COUNTS] for a single model, [E, N_COUNTS] for an ensemble.
    """
    device = model_device(model)
    total: torch.Tensor | None = None
    rows = inputs.shape[-2]
    with eval_mode(model):
        for start in range(0, rows, chunk):
            x = torch.from_numpy(np.ascontiguousarray(inputs[..., start : start + chunk, :]))
            y = torch.from_numpy(np.ascontiguousarray(targets[..., start : start + chunk, :]))
            x, y = x.to(device), y.to(device)
            c = counts(model(x), y)
            total = c if total is None else total + c
    assert total is not None
    return total.cpu().numpy()


def evaluate(
    model: nn.Module,
    task: Task,
    length: int,
    batch_size: int = 1024,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    chunk: int = 1024,
    threads: int | None = None,
) -> Metrics:
    """Teacher-forced metrics of ``model`` on ``batch_size`` fresh examples of ``task``.

    Give ``seed`` or ``rng`` (default: seed 0) for the examples. ``threads``: CPU threads
    (default: :func:`~sepbench.training.threads.auto_threads`).
    """
    if seed is None and rng is None:
        seed = 0
    batch = task.sample(length, batch_size, seed=seed, rng=rng)
    tokens = min(chunk, batch_size) * batch.inputs.shape[1]
    with thread_scope(model_threads(model, tokens, model_device(model), threads)):
        return to_metrics(evaluate_arrays(model, batch.inputs, batch.targets, chunk))


def loss_single(logits: torch.Tensor, sel: torch.Tensor, sel_targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the supervised positions ``sel`` of ``logits`` [B, T, V]."""
    flat = logits.reshape(-1, logits.shape[-1]).index_select(0, sel)
    return F.cross_entropy(flat.float(), sel_targets)


def loss_members(
    logits: torch.Tensor,
    sel: torch.Tensor,
    sel_targets: torch.Tensor,
    member: torch.Tensor,
    member_counts: torch.Tensor,
) -> torch.Tensor:
    """Per-member mean cross-entropy [E] over the supervised positions of ``logits`` [E,B,T,V]."""
    flat = logits.reshape(-1, logits.shape[-1]).index_select(0, sel)
    nll = F.cross_entropy(flat.float(), sel_targets, reduction="none")
    sums = torch.zeros(logits.shape[0], dtype=nll.dtype, device=nll.device)
    sums = sums.index_add(0, member, nll)
    return sums / member_counts.clamp_min(1.0)
