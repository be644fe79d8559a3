"""The lengthgen probe: train one model on a length mixture ≤ L, then score it at every test length.

What one trial does (spec: :mod:`sepbench.studies.lengthgen`):

1. build ``models.build(family, vocab, width, seed=derive_seed(trial seed, "init"), options)``
   and train it with :func:`sepbench.training.fit` on lengths [L_min, L] (the trial budget's
   mixture), early stopping judged on held-out rows of training lengths only
   (``eval_lengths = "train"``: no out-of-distribution length is seen before training ends); a
   recurrent-depth model with ``[training] alpha`` set trains on BA22's progressive loss
   (:class:`Progressive`);
2. draw the evaluation rows of every length (:func:`eval_rows`: common to every model, seed and
   iteration count of the study) and score each row (:func:`row_scores`): all supervised tokens
   right (``acc_row``) and the fraction right (``acc_pos``), for a depth model after each of
   the iteration counts in one :func:`~sepbench.models.depth.forward_all` pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sepbench.studies.grid import POINTS_KEY, TrainingProbe
from sepbench.studies.lengthgen import Evaluation, Training
from sepbench.sweep.trial import ProbeOutcome, TrialSpec, derive_seed

if TYPE_CHECKING:
    import torch

    from sepbench.tasks import Batch, Task

CHUNK_FLOATS = 1 << 25
"""Most logits (iterations × rows × tokens × vocab) one evaluation pass holds."""


@dataclass
class Progressive:
    """BA22's progressive loss as a training objective (:data:`sepbench.training.fit.Objective`):
    ``(1 − α)·L_max + α·L_prog`` with MC24's optional ``max_backprop``; the (n, k) draws come
    from a torch generator seeded with ``seed`` (deterministic, apart from torch's global RNG)."""

    alpha: float
    max_backprop: int | None
    seed: int
    _generator: Any = field(default=None, repr=False)

    def __call__(self, model: Any, inputs: Any, loss: Any) -> Any:
        import torch

        from sepbench.models.depth import progressive_loss

        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        return progressive_loss(
            model, inputs, loss, self.alpha, self.max_backprop, generator=self._generator
        )


def eval_rows(task: Task, length: int, rows: int, seed: int) -> Batch:
    """``rows`` rows of ``length`` from the stream (study seed, "lengthgen.eval", length): the
    same rows for every trial of a study."""
    rng = np.random.default_rng(derive_seed(seed, "lengthgen.eval", length))
    return task.sample(length, rows, rng=rng)


def row_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, int, int]:
    """``(row_ok [B], right, supervised)`` of ``logits [B, T, V]`` against ``targets [B, T]``:
    a row is right when every supervised token (target ≠ IGNORE) is the argmax; ``right`` and
    ``supervised`` count tokens."""
    from sepbench.tasks.base import IGNORE

    mask = targets != IGNORE
    hit = (logits.argmax(-1) == targets) | ~mask
    return (
        hit.all(-1).cpu().numpy(),
        int((hit & mask).sum()),
        int(mask.sum()),
    )


def iteration_counts(model: Any, ev: Evaluation) -> list[int | None]:
    """The iteration counts a model is scored at: for a recurrent-depth model its training R
    and every count of ``evaluation.iterations``; ``[None]`` for any other family."""
    from sepbench.models.depth import DepthModel

    if not isinstance(model, DepthModel):
        return [None]
    counts: list[int | None] = [*sorted({model.iterations, *ev.iterations})]
    return counts


def score_length(
    model: Any, batch: Batch, counts: list[int | None]
) -> dict[int | None, tuple[np.ndarray, int, int]]:
    """Per iteration count: the :func:`row_scores` of ``model`` on ``batch`` (rows in chunks
    of at most :data:`CHUNK_FLOATS` logits)."""
    import torch

    from sepbench.models.depth import forward_all

    rows, length = batch.inputs.shape
    top = max((c for c in counts if c is not None), default=1)
    vocab = int(model.vocab_size)
    step = max(1, CHUNK_FLOATS // max(1, top * length * vocab))
    device = next(model.parameters()).device
    parts: dict[int | None, list[tuple[np.ndarray, int, int]]] = {c: [] for c in counts}
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, rows, step):
                x = torch.from_numpy(np.ascontiguousarray(batch.inputs[lo : lo + step]))
                y = torch.from_numpy(np.ascontiguousarray(batch.targets[lo : lo + step]))
                x, y = x.to(device), y.to(device)
                if counts == [None]:
                    parts[None].append(row_scores(model(x), y))
                    continue
                every = forward_all(model, x, top)
                for c in counts:
                    assert c is not None
                    parts[c].append(row_scores(every[c - 1], y))
    finally:
        model.train(was)
    return {
        c: (
            np.concatenate([p[0] for p in ps]),
            sum(p[1] for p in ps),
            sum(p[2] for p in ps),
        )
        for c, ps in parts.items()
    }


def point(
    length: int,
    iterations: int | None,
    trained_iterations: int | None,
    in_distribution: bool,
    scored: tuple[np.ndarray, int, int],
) -> dict[str, Any]:
    ok, right, supervised = scored
    return {
        "length": int(length),
        "iterations": iterations,
        "train_iterations": trained_iterations,
        "in_distribution": in_distribution,
        "rows": int(ok.size),
        "acc_row": float(ok.mean()) if ok.size else None,
        "acc_pos": right / supervised if supervised else None,
        "hits": "".join("1" if v else "0" for v in ok),
    }


def evaluate_trial(model: Any, task: Task, ev: Evaluation, seed: int) -> list[dict[str, Any]]:
    """Every point record of one trained model (module docstring, step 2)."""
    from sepbench.models.depth import DepthModel

    counts = iteration_counts(model, ev)
    trained = model.iterations if isinstance(model, DepthModel) else None
    out = []
    lengths = [(n, True) for n in ev.in_distribution] + [(n, False) for n in ev.lengths]
    for n, inside in lengths:
        scored = score_length(model, eval_rows(task, n, ev.rows, seed), counts)
        out += [point(n, c, trained, inside, scored[c]) for c in counts]
    return out


@dataclass(frozen=True)
class LengthgenProbe(TrainingProbe):
    """Trains and scores one lengthgen trial (module docstring); picklable for the pools."""

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        from dataclasses import replace

        from sepbench import models, tasks, training
        from sepbench.models.cards import ModelFacts
        from sepbench.models.depth import DepthModel
        from sepbench.sweep.executors import worker_threads
        from sepbench.training.threads import thread_scope

        config = self.grid_config(trial)
        plan = dict(config.evaluation)
        train_opts = Training.model_validate(plan.pop("training", {}))
        ev = Evaluation.model_validate(plan)
        task = tasks.make(config.task, **config.task_params)
        length = config.length
        model = models.build(
            config.family,
            len(task.vocab),
            trial.width,
            seed=derive_seed(trial.seed, "init"),
            options=config.model_options,
        )
        objective = None
        if train_opts.alpha is not None and isinstance(model, DepthModel):
            objective = Progressive(
                float(train_opts.alpha),
                train_opts.max_backprop,
                derive_seed(trial.seed, "progressive"),
            )
        threads = worker_threads()
        budget = replace(config.budget.for_trainer(), eval_lengths="train")
        result = training.fit(
            model,
            task,
            length,
            budget,
            trial.seed,
            config.threshold,
            device=self.device,
            threads=threads,
            objective=objective,
        )
        start = time.perf_counter()
        with thread_scope(threads if threads is not None else 1):
            points = evaluate_trial(model, task, ev, config.study_seed)
        details = result.to_dict()
        details[ModelFacts.KEY] = ModelFacts.of(
            model, task.name, task.params, task.max_tokens(length)
        ).to_dict()
        details.update(
            {
                POINTS_KEY: points,
                "train_range": [budget.length_range(length)[0], length],
                "progressive": objective is not None,
                "examples_seen": int(result.steps) * budget.batch_size,
                "eval_wall_s": time.perf_counter() - start,
            }
        )
        return ProbeOutcome(
            reached=bool(result.reached),
            accuracy=float(result.sequence_accuracy),
            steps=int(result.steps),
            wall_s=float(result.wall_time) + details["eval_wall_s"],
            details=details,
        )
