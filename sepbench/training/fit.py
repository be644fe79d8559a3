"""The trainer: online data, masked cross-entropy, AdamW, early stop on sequence accuracy.

``fit`` trains one model; ``fit_ensemble`` trains E models of one family at once as a batched
ensemble (``models.build_ensemble``), member ``i`` seeing exactly the data ``fit(seed=seeds[i])``
would see. Both follow the same schedule:

1. every step: a fresh batch from the trial's ``train`` stream (see
   :mod:`sepbench.training.config`), mean cross-entropy over the supervised targets, AdamW with
   linear warm-up + cosine decay, gradient-norm clipping;
2. every ``eval_every`` steps: teacher-forced metrics on a fresh ``eval_batch`` from the
   ``eval`` stream; when sequence accuracy >= threshold, a confirmation evaluation on a fixed
   ``confirm_batch`` from the ``confirm`` stream; training stops when that too is >= threshold;
3. at the budget's last step the confirmation evaluation decides ``reached`` directly.

The reported accuracies always come from the confirmation set, so two trials with the same seed
are measured on the same held-out examples.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench.errors import UserError
from sepbench.tasks import Task
from sepbench.training import data as data_mod
from sepbench.training.config import Budget, TrialResult, check_seed, stream, torch_seed
from sepbench.training.metrics import (
    Metrics,
    evaluate_arrays,
    loss_members,
    loss_single,
    model_device,
    to_metrics,
)
from sepbench.training.threads import model_threads, thread_scope


@dataclass
class Progress:
    """What a progress callback sees at each evaluation."""

    step: int
    max_steps: int
    train_loss: float
    metrics: Metrics
    kind: str  # "eval" or "confirm"
    member: int | None = None
    reached: int = 0  # ensemble: members that have reached the threshold so far


Callback = Callable[[Progress], None]


# --------------------------------------------------------------------------- helpers
def resolve_device(
    device: str | torch.device | None, model: nn.Module | None = None
) -> torch.device:
    """``None`` -> the model's device (CPU for a fresh model); ``cuda`` must be available."""
    if device is None:
        return model_device(model) if model is not None else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r}; use cpu or cuda")
    return dev


def check_threshold(threshold: float) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not (0 < threshold <= 1)
    ):
        raise UserError(f"threshold must be a number in (0, 1], got {threshold!r}")
    return float(threshold)


def use_prefetch(prefetch: bool | None, device: torch.device) -> bool:
    """Prefetch in a background thread by default only when training on a GPU.

    On CPU the chunked sampler already makes data a few per cent of a step, and a producer
    thread competing for the GIL and the cores cost 10-15 % of the steps/s in measurements on a
    loaded 2-core machine; on a GPU the host is otherwise idle while kernels run.
    """
    return device.type == "cuda" if prefetch is None else bool(prefetch)


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's global RNG seeded from the trial's ``torch`` stream; restored afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(torch_seed(seed))
        yield


def model_config(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if callable(config):
        out: dict[str, Any] = dict(config())
        return out
    return {"family": getattr(model, "family", type(model).__name__)}


def trial_config(
    task: Task, length: int, model_cfg: dict[str, Any], budget: Budget, threshold: float
) -> dict[str, Any]:
    return {
        "task": {"name": task.name, "params": dict(task.params)},
        "length": int(length),
        "model": model_cfg,
        "budget": budget.to_dict(),
        "threshold": threshold,
    }


def make_optimizer(params: Sequence[nn.Parameter], budget: Budget) -> torch.optim.Optimizer:
    """AdamW; the foreach implementation (one kernel per op for all tensors) on every device."""
    return torch.optim.AdamW(
        params,
        lr=budget.lr,
        betas=(budget.beta1, budget.beta2),
        weight_decay=budget.weight_decay,
        foreach=True,
    )


def _record(step: int, train_loss: float, m: Metrics, kind: str) -> dict[str, Any]:
    return {
        "step": step,
        "kind": kind,
        "train_loss": train_loss,
        "loss": m.loss,
        "token_accuracy": m.token_accuracy,
        "sequence_accuracy": m.sequence_accuracy,
        "answer_accuracy": m.answer_accuracy,
    }


@dataclass
class _Trial:
    """The per-model bookkeeping shared by fit and fit_ensemble."""

    task: Task
    length: int
    seed: int
    budget: Budget
    threshold: float
    eval_rng: np.random.Generator = field(init=False)
    _confirm: tuple[np.ndarray, np.ndarray] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.eval_rng = stream(self.seed, "eval")

    def eval_batch(self) -> tuple[np.ndarray, np.ndarray]:
        b = self.task.sample(self.length, self.budget.eval_batch, rng=self.eval_rng)
        return b.inputs, b.targets

    def confirm_batch(self) -> tuple[np.ndarray, np.ndarray]:
        if self._confirm is None:
            rng = stream(self.seed, "confirm")
            b = self.task.sample(self.length, self.budget.confirm_batch, rng=rng)
            self._confirm = (b.inputs, b.targets)
        return self._confirm

    def confirm(self, model: nn.Module) -> Metrics:
        inputs, targets = self.confirm_batch()
        return to_metrics(evaluate_arrays(model, inputs, targets))

    def result(
        self, m: Metrics, steps: int, stop: str, wall: float, config: dict[str, Any]
    ) -> TrialResult:
        return TrialResult(
            reached=stop == "reached",
            steps=steps,
            token_accuracy=m.token_accuracy,
            sequence_accuracy=m.sequence_accuracy,
            answer_accuracy=m.answer_accuracy,
            loss=m.loss,
            wall_time=wall,
            seed=self.seed,
            stop=stop,
            config=config,
            history=self.history,
        )


# --------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    task: Task,
    length: int,
    budget: Budget | None = None,
    seed: int = 0,
    threshold: float = 0.99,
    *,
    device: str | torch.device | None = None,
    callback: Callback | None = None,
    prefetch: bool | None = None,
    threads: int | None = None,
) -> TrialResult:
    """Train ``model`` (in place) on fresh samples of ``task`` at problem size ``length``.

    Stops as soon as the teacher-forced sequence accuracy on held-out data reaches
    ``threshold`` (confirmed on ``budget.confirm_batch`` examples) or the budget ends.
    ``device``: default the model's own; the model is moved there. ``threads``: CPU intra-op
    threads for the run (default: :func:`auto_threads`). ``prefetch``: draw the next batches in
    a background thread (default: on CUDA only — see :func:`use_prefetch`). Deterministic on
    CPU for a given seed (same data, same updates), with or without prefetching.
    """
    budget = budget if budget is not None else Budget()
    seed = check_seed(seed)
    threshold = check_threshold(threshold)
    task.check_length(length)
    dev = resolve_device(device, model)
    model.to(dev)
    config = trial_config(task, length, model_config(model), budget, threshold)
    trial = _Trial(task, length, seed, budget, threshold)
    threads = model_threads(model, budget.batch_size * task.max_tokens(length), dev, threads)
    make = data_mod.train_stream(
        task, length, budget.batch_size, [stream(seed, "train")], dev, ensemble=False
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError("fit: the model has no trainable parameters")
    optimizer = make_optimizer(params, budget)
    start = time.perf_counter()
    stop, steps = "budget", budget.max_steps
    final: Metrics | None = None
    with (
        thread_scope(threads),
        seeded_torch(seed, dev),
        data_mod.Prefetcher(make, enabled=use_prefetch(prefetch, dev)) as batches,
    ):
        model.train()
        loss_sum = torch.zeros((), device=dev)
        since = 0
        for step in range(1, budget.max_steps + 1):
            lr = budget.lr_at(step - 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = batches.next()
            loss = loss_single(model(batch.inputs), batch.sel, batch.sel_targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, budget.grad_clip, foreach=True)
            optimizer.step()
            loss_sum += loss.detach()
            since += 1
            last = step == budget.max_steps
            if step % budget.eval_every and not last:
                continue
            train_loss = float(loss_sum) / since
            loss_sum.zero_()
            since = 0
            if not math.isfinite(train_loss):
                stop, steps = "diverged", step
                break
            if not last:
                m = to_metrics(evaluate_arrays(model, *trial.eval_batch()))
                trial.history.append(_record(step, train_loss, m, "eval"))
                if callback is not None:
                    callback(Progress(step, budget.max_steps, train_loss, m, "eval"))
                if m.sequence_accuracy < threshold:
                    continue
            final = trial.confirm(model)
            trial.history.append(_record(step, train_loss, final, "confirm"))
            if callback is not None:
                callback(Progress(step, budget.max_steps, train_loss, final, "confirm"))
            if final.sequence_accuracy >= threshold:
                stop, steps = "reached", step
                break
    if final is None or stop == "diverged":
        final = trial.confirm(model)
    return trial.result(final, steps, stop, time.perf_counter() - start, config)


# --------------------------------------------------------------------------- ensembles
def member_clip_(params: Sequence[torch.Tensor], members: int, max_norm: float) -> None:
    """Clip each member's gradient to norm ``max_norm`` separately (in place).

    Every parameter of a batched ensemble carries the member index as its first dimension, so
    member ``i``'s gradient is the slice ``[i]`` of each; the rule is ``clip_grad_norm_``'s,
    applied per member: ``g_i *= min(1, max_norm / (||g_i|| + 1e-6))`` (the same as
    ``models.Ensemble.clip_grad_norm_``, in a handful of kernels: one concatenation for the
    norms, one foreach multiply).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(members, -1) for g in grads], dim=1)
    norms = flat.float().pow(2).sum(1).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(
        grads, [scale.to(g.dtype).view(members, *([1] * (g.dim() - 1))) for g in grads]
    )


@dataclass
class EnsembleOutcome:
    """Results of ``train_ensemble``: one TrialResult and one standalone model per member.

    A member's model is its snapshot when it stopped (``ensemble.member(i)`` at that step).
    """

    results: list[TrialResult]
    models: list[nn.Module]


def train_ensemble(
    family: str,
    width: int,
    options: dict[str, Any] | None,
    task: Task,
    length: int,
    budget: Budget | None,
    seeds: Sequence[int],
    threshold: float = 0.99,
    *,
    device: str | torch.device | None = None,
    callback: Callback | None = None,
    prefetch: bool | None = None,
    threads: int | None = None,
) -> EnsembleOutcome:
    """:func:`fit_ensemble`, also returning each member's trained model."""
    from sepbench import models

    budget = budget if budget is not None else Budget()
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise UserError("fit_ensemble: give at least one seed")
    threshold = check_threshold(threshold)
    task.check_length(length)
    dev = resolve_device(device)
    ensemble = models.build_ensemble(family, len(task.vocab), width, seeds, **dict(options or {}))
    ensemble.to(dev)
    count = len(seeds)
    params = [p for p in ensemble.parameters() if p.requires_grad]
    if not params:
        raise UserError("fit_ensemble: the ensemble has no trainable parameters")
    if any(p.dim() == 0 or p.shape[0] != count for p in params):
        raise UserError(
            f"fit_ensemble: family '{family}' does not stack its parameters by member "
            "(first dimension); train the members with fit()"
        )
    configs = [
        trial_config(task, length, model_config(ensemble.member(i)), budget, threshold)
        for i in range(count)
    ]
    trials = [_Trial(task, length, s, budget, threshold) for s in seeds]
    tokens = count * budget.batch_size * task.max_tokens(length)
    threads = model_threads(ensemble, tokens, dev, threads)
    make = data_mod.train_stream(
        task, length, budget.batch_size, [stream(s, "train") for s in seeds], dev, ensemble=True
    )
    optimizer = make_optimizer(params, budget)
    results: list[TrialResult | None] = [None] * count
    snapshots: list[nn.Module | None] = [None] * count
    active = np.ones(count, dtype=bool)
    start = time.perf_counter()

    def finish(i: int, m: Metrics, snapshot: nn.Module, steps: int, stop: str) -> None:
        results[i] = trials[i].result(m, steps, stop, time.perf_counter() - start, configs[i])
        snapshots[i] = snapshot
        active[i] = False

    with (
        thread_scope(threads),
        seeded_torch(seeds[0], dev),
        data_mod.Prefetcher(make, enabled=use_prefetch(prefetch, dev)) as batches,
    ):
        ensemble.train()
        mask = torch.ones(count, dtype=torch.bool, device=dev)
        loss_sum = torch.zeros(count, device=dev)
        since = 0
        for step in range(1, budget.max_steps + 1):
            lr = budget.lr_at(step - 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = batches.next()
            assert batch.member is not None and batch.counts is not None
            per_member = loss_members(
                ensemble(batch.inputs), batch.sel, batch.sel_targets, batch.member, batch.counts
            )
            loss = torch.where(mask, per_member, 0.0).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.grad_clip > 0:
                member_clip_(params, count, budget.grad_clip)
            optimizer.step()
            loss_sum += per_member.detach()
            since += 1
            last = step == budget.max_steps
            if step % budget.eval_every and not last:
                continue
            train_losses = (loss_sum / since).cpu().numpy()
            loss_sum.zero_()
            since = 0
            for i in map(int, np.flatnonzero(active)):
                if not math.isfinite(float(train_losses[i])):
                    member = ensemble.member(i)
                    finish(i, trials[i].confirm(member), member, step, "diverged")
            candidates = [int(i) for i in np.flatnonzero(active)]
            if not last and candidates:
                evals = {i: trials[i].eval_batch() for i in candidates}
                filler = evals[candidates[0]]
                stacked = [evals.get(i, filler) for i in range(count)]
                inputs, targets = data_mod.stack_pairs(stacked, task.pad_id)
                totals = evaluate_arrays(ensemble, inputs, targets)
                confirmable: list[int] = []
                for i in candidates:
                    m = to_metrics(totals[i])
                    trials[i].history.append(_record(step, float(train_losses[i]), m, "eval"))
                    if callback is not None:
                        callback(
                            Progress(
                                step,
                                budget.max_steps,
                                float(train_losses[i]),
                                m,
                                "eval",
                                int(i),
                                int((~active).sum()),
                            )
                        )
                    if m.sequence_accuracy >= threshold:
                        confirmable.append(i)
                candidates = confirmable
            for i in candidates:
                member = ensemble.member(i)
                final = trials[i].confirm(member)
                trials[i].history.append(_record(step, float(train_losses[i]), final, "confirm"))
                if final.sequence_accuracy >= threshold:
                    finish(i, final, member, step, "reached")
                elif last:
                    finish(i, final, member, step, "budget")
                if callback is not None:
                    callback(
                        Progress(
                            step,
                            budget.max_steps,
                            float(train_losses[i]),
                            final,
                            "confirm",
                            i,
                            int((~active).sum()),
                        )
                    )
            if not active.any():
                break
            mask = torch.from_numpy(active.copy()).to(dev)
    done = [r for r in results if r is not None]
    kept = [s for s in snapshots if s is not None]
    assert len(done) == count and len(kept) == count
    return EnsembleOutcome(done, kept)


def fit_ensemble(
    family: str,
    width: int,
    options: dict[str, Any] | None,
    task: Task,
    length: int,
    budget: Budget | None,
    seeds: Sequence[int],
    threshold: float = 0.99,
    *,
    device: str | torch.device | None = None,
    callback: Callback | None = None,
    prefetch: bool | None = None,
    threads: int | None = None,
) -> list[TrialResult]:
    """Train one ``family`` model per seed at once, as a batched ensemble; one result each.

    Member ``i`` is initialised as ``models.build(..., seed=seeds[i])`` would be (the ensemble
    builder's contract) and draws its training, evaluation and confirmation data from the
    streams of ``seeds[i]`` exactly as ``fit(..., seed=seeds[i])``; its loss is its own mean
    cross-entropy and its gradient is clipped on its own, so AdamW (elementwise) updates it as
    ``fit`` would. A member that reaches the threshold (or diverges) stops: its result and a
    snapshot are taken at that step and its loss is masked to zero from then on; the others
    continue until all have stopped or the budget ends.

    Differences from ``fit``, all in floating-point rounding only: batched kernels sum in a
    different order than the single-model ones, so trajectories agree to rounding at first and
    may drift apart over many steps (a close call at an evaluation can then fall either way);
    confirmation uses the standalone ``ensemble.member(i)``; ``wall_time`` is the time from the
    ensemble's start until the member stopped; torch's own RNG (dropout) is seeded from
    ``seeds[0]``.
    """
    return train_ensemble(
        family,
        width,
        options,
        task,
        length,
        budget,
        seeds,
        threshold,
        device=device,
        callback=callback,
        prefetch=prefetch,
        threads=threads,
    ).results
