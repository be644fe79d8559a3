"""The trainer: online data, masked loss, early stop, evaluation, generation, checkpoints.

>>> from sepbench import models, tasks, training
>>> task = tasks.make("index_lookup", max_length=16)
>>> model = models.build("transformer", len(task.vocab), 16, layers=1)   # doctest: +SKIP
>>> result = training.fit(model, task, length=16, budget=training.Budget(max_steps=500))
... # doctest: +SKIP

* :func:`fit` — one model; :func:`fit_ensemble` — one model per seed, trained as one batched
  ensemble; both return :class:`TrialResult` records (plain data, ``asdict``-able).
* :func:`evaluate` (teacher forced), :func:`evaluate_generation` (greedy decoding of trace
  tasks, with the task's retriever in the loop for ``rag`` models), :func:`evaluate_lengths`
  (one trained model at several lengths).
* :func:`save_checkpoint` / :func:`load_checkpoint`.

Seeds: see :mod:`sepbench.training.config` — every stream derives from the trial seed with
``numpy.random.SeedSequence`` spawn keys, so training and evaluation data never coincide.
Speed on CPU: batches are drawn a chunk of ~2048 rows at a time (:mod:`.data`), the loss reads
only the supervised positions, and small models run on one intra-op thread (:mod:`.threads`).
"""

from __future__ import annotations

from sepbench.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sepbench.training.config import STREAMS, Budget, TrialResult, stream
from sepbench.training.fit import (
    EnsembleOutcome,
    Progress,
    fit,
    fit_ensemble,
    resolve_device,
    train_ensemble,
)
from sepbench.training.generate import (
    GenerationMetrics,
    evaluate_generation,
    evaluate_lengths,
    greedy_generate,
)
from sepbench.training.metrics import Metrics, evaluate

__all__ = [
    "STREAMS",
    "Budget",
    "Checkpoint",
    "EnsembleOutcome",
    "GenerationMetrics",
    "Metrics",
    "Progress",
    "TrialResult",
    "evaluate",
    "evaluate_generation",
    "evaluate_lengths",
    "fit",
    "fit_ensemble",
    "greedy_generate",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "stream",
    "train_ensemble",
]
