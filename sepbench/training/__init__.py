"""The trainer: online data, masked loss, early stop, evaluation, generation, checkpoints.

>>> from sepbench import models, tasks, training
>>> task = tasks.make("index_lookup", max_length=16)
>>> model = models.build("transformer", len(task.vocab), 16, layers=1)   # doctest: +SKIP
>>> result = training.fit(model, task, length=16, budget=training.Budget(max_steps=500))
... # doctest: +SKIP

* :func:`train` — the one training loop: a model's E members at once (a plain model is an
  ensemble of one; ``models.build_ensemble`` gives E seeds as one batched module), returning
  an :class:`EnsembleOutcome` (each member's :class:`TrialResult` and model), with a peak
  learning rate per member (``lrs``) and members that stop together (``groups``,
  :class:`StopGroup`: a quorum, the study's success rules);
  :func:`fit` — one model, its :class:`TrialResult` (plain data, ``asdict``-able).
* :func:`evaluate` (teacher forced), :func:`evaluate_generation` (greedy decoding of trace
  tasks, with the task's retriever in the loop for ``rag`` models), :func:`score_generation`
  (exact match of the free-running continuation: what decides ``reached`` for tasks whose
  answer is generated), :func:`task_for` (the task as a model meets it: retrieval results are
  targets for every model without a retriever), :func:`evaluate_lengths` (one trained model
  at several lengths).
* :func:`save_checkpoint` / :func:`load_checkpoint`.

Seeds: see :mod:`sepbench.training.config` — every stream derives from the trial seed with
``numpy.random.SeedSequence`` spawn keys, so training and evaluation data never coincide.
Speed on CPU: batches are drawn a chunk of ~2048 rows at a time (:mod:`.data`), the loss reads
only the supervised positions, and small models run on one intra-op thread (:mod:`.threads`).
"""

from __future__ import annotations

from sepbench.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sepbench.training.config import STREAMS, Budget, StopGroup, TrialResult, stream
from sepbench.training.fit import (
    EnsembleOutcome,
    Progress,
    fit,
    resolve_device,
    train,
)
from sepbench.training.generate import (
    GenerationMetrics,
    evaluate_generation,
    evaluate_lengths,
    greedy_generate,
    score_generation,
    task_for,
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
    "StopGroup",
    "TrialResult",
    "evaluate",
    "evaluate_generation",
    "evaluate_lengths",
    "fit",
    "greedy_generate",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "score_generation",
    "stream",
    "task_for",
    "train",
]
