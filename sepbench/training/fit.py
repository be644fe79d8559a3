"""The trainer: online data, masked cross-entropy, AdamW, early stop on sequence accuracy.

One loop, :func:`train`, trains the E members of a model at once: a plain model is an
ensemble of one (trained in place, with its own forward pass), a ``models.Ensemble`` has E
members with stacked parameters; it returns every member's :class:`TrialResult` and model
(:class:`EnsembleOutcome`). :func:`fit` is ``train`` with one member and returns its result.
Every member follows the same schedule:

1. every step: a fresh batch from the member's ``train`` stream (see
   :mod:`sepbench.training.config`), mean cross-entropy over the supervised targets, AdamW with
   linear warm-up + cosine decay, gradient-norm clipping (per member);
2. every ``eval_every`` steps: teacher-forced metrics on a fresh ``eval_batch`` from the
   ``eval`` stream; when sequence accuracy >= threshold, a confirmation evaluation on a fixed
   ``confirm_batch`` from the ``confirm`` stream; the member stops when that too is >= threshold;
3. at the budget's last step the confirmation evaluation decides ``reached`` directly.

The confirmation is teacher forced, except for tasks whose answer is a generated continuation
(:attr:`~sepbench.tasks.Task.answer_is_generated`: is_tree with a trace, passkey, addition):
there ``reached`` is decided on exact match of the free-running greedy continuation (trace and
answer; :func:`confirm_metrics`), and the answer's own accuracy by generation is recorded
beside it. A model without a retriever (every family but ``rag``) trains and is judged on
:meth:`~sepbench.tasks.Task.without_retriever`: the retrieval results are targets it must
write; a ``rag`` model gets them from the retriever, in training (unsupervised) and in
generation.

The reported accuracies always come from the confirmation set, so two trials with the same seed
are measured on the same held-out examples. The reported training loss is the mean of the
member's step losses since the previous evaluation (summed in float32 on the device, divided in
float64).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench.errors import UserError
from sepbench.models.ensemble import Ensemble
from sepbench.tasks import Task
from sepbench.training import data as data_mod
from sepbench.training.config import Budget, TrialResult, check_seed, stream, torch_seed
from sepbench.training.generate import score_generation, task_for
from sepbench.training.metrics import (
    GENERATION,
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
    member: int | None = None  # the member's index in an ensemble (None: a plain model)
    reached: int = 0  # members that have stopped so far (reached, diverged or out of budget)


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
    described: dict[str, Any] = {"name": task.name, "params": dict(task.params)}
    if task.retrieval_trigger is not None:  # who writes the retrieval results
        described["retrieval_results"] = "targets" if task.results_supervised else "retriever"
    return {
        "task": described,
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
        "scoring": m.scoring,
    }


# --------------------------------------------------------------------------- the members
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


class _Plain:
    """One model as an ensemble of one, running its own forward pass.

    A single model keeps the kernels it trains fastest with (oneDNN's fused ``nn.LSTM``, see
    ``RecurrentStack.uses_kernel``) and torch's own gradient clipping; its data are ``[B, T]``
    batches and its loss is a 0-dim tensor (the loop adds no kernel to reshape or sum it). It
    is trained in place and is its own snapshot.
    """

    stacked = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.size = 1

    def losses(self, batch: data_mod.Prepared) -> torch.Tensor:
        return loss_single(self.model(batch.inputs), batch.sel, batch.sel_targets)

    def clip_(self, params: Sequence[torch.Tensor], max_norm: float) -> None:
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)

    def counts(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        (pair,) = pairs
        return evaluate_arrays(self.model, *pair)[None]

    def member(self, i: int) -> nn.Module:
        return self.model


class _Stacked:
    """A :class:`~sepbench.models.Ensemble`: E members with stacked parameters, one batched
    forward pass over data ``[E, B, T]``, a mean loss and a gradient clip per member. A
    member's snapshot is a standalone copy (``ensemble.member(i)``)."""

    stacked = True

    def __init__(self, ensemble: Ensemble, pad_id: int) -> None:
        self.ensemble = ensemble
        self.size = ensemble.size
        self.pad_id = pad_id

    def losses(self, batch: data_mod.Prepared) -> torch.Tensor:
        assert batch.member is not None and batch.counts is not None
        logits = self.ensemble(batch.inputs)
        return loss_members(logits, batch.sel, batch.sel_targets, batch.member, batch.counts)

    def clip_(self, params: Sequence[torch.Tensor], max_norm: float) -> None:
        member_clip_(params, self.size, max_norm)

    def counts(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        inputs, targets = data_mod.stack_pairs(pairs, self.pad_id)
        return evaluate_arrays(self.ensemble, inputs, targets)

    def member(self, i: int) -> nn.Module:
        return self.ensemble.member(i)


@dataclass
class _Member:
    """One member's trial: its seed's evaluation and confirmation data, its history, its
    configuration (what its TrialResult records)."""

    task: Task
    length: int
    seed: int
    budget: Budget
    config: dict[str, Any]
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
        """The confirmation: teacher forced, or by generation for a task whose answer is
        generated (:func:`confirm_metrics`)."""
        inputs, targets = self.confirm_batch()
        return confirm_metrics(model, self.task, inputs, targets)

    def result(self, m: Metrics, steps: int, stop: str, wall: float) -> TrialResult:
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
            config=self.config,
            history=self.history,
            scoring=m.scoring,
        )


def confirm_metrics(
    model: nn.Module, task: Task, inputs: np.ndarray, targets: np.ndarray
) -> Metrics:
    """What decides ``reached``: teacher-forced metrics, and for a task whose answer is a
    generated continuation (:attr:`~sepbench.tasks.Task.answer_is_generated`) sequence and
    answer accuracy replaced by free-running generation — exact match of the whole
    continuation and of its final answer (:func:`~sepbench.training.generate.score_generation`,
    the retriever in the loop only for a model that uses one)."""
    m = to_metrics(evaluate_arrays(model, inputs, targets))
    if not task.answer_is_generated:
        return m
    gen = score_generation(model, task, inputs, targets)
    return replace(
        m,
        sequence_accuracy=gen.trace_accuracy,
        answer_accuracy=gen.answer_accuracy,
        scoring=GENERATION,
    )


@dataclass
class EnsembleOutcome:
    """What :func:`train` returns: one TrialResult and one model per member, in member order.

    A member's model is its snapshot when it stopped: the trained model itself when ``train``
    was given a plain model, ``ensemble.member(i)`` at that step for an ensemble.
    """

    results: list[TrialResult]
    models: list[nn.Module]


# --------------------------------------------------------------------------- the loop
def train(
    model: nn.Module,
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
    """Train the members of ``model`` at once on fresh samples of ``task`` at size ``length``.

    ``model``: a plain model — an ensemble of one, trained in place with its own forward pass —
    or a :class:`~sepbench.models.Ensemble` of E members (``models.build_ensemble``), whose
    parameters all carry the member as their first dimension. ``seeds``: one per member;
    member ``i`` draws its training, evaluation and confirmation data from the streams of
    ``seeds[i]`` (:mod:`sepbench.training.config`), so it sees exactly the data it would see
    trained alone. Each member's loss is its own mean cross-entropy and its gradient is clipped
    on its own, so AdamW (elementwise) updates it as if it were alone.

    Schedule (the module docstring); a member that reaches the threshold (confirmed) or
    diverges stops: its result and snapshot are taken at that step and its loss is masked to
    zero from then on; the others continue until all have stopped or the budget ends.
    ``device``: default the model's own (the model is moved there). ``threads``: CPU intra-op
    threads for the run (default: :func:`~sepbench.training.threads.auto_threads`).
    ``prefetch``: draw the next batches in a background thread (default: on CUDA only — see
    :func:`use_prefetch`). Deterministic on CPU for given seeds, with or without prefetching.

    An ensemble's members differ from ``fit`` only in floating-point rounding: batched kernels
    sum in another order than the single-model ones, so trajectories agree to rounding at
    first and may drift apart over many steps (a close call at an evaluation can then fall
    either way); ``wall_time`` is the time from the start until the member stopped; torch's
    own RNG (dropout) is seeded from ``seeds[0]``.
    """
    budget = budget if budget is not None else Budget()
    task = task_for(task, model)  # a model without a retriever must write the results itself
    members: _Plain | _Stacked = (
        _Stacked(model, task.pad_id) if isinstance(model, Ensemble) else _Plain(model)
    )
    count = members.size
    if isinstance(seeds, int | str) or len(seeds) != count:
        raise UserError(f"train: give one seed per member ({count}), got {seeds!r}")
    seeds = [check_seed(s) for s in seeds]
    threshold = check_threshold(threshold)
    task.check_length(length)
    dev = resolve_device(device, model)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError("train: the model has no trainable parameters")
    if members.stacked and any(p.dim() == 0 or p.shape[0] != count for p in params):
        raise UserError(
            f"train: family '{getattr(model, 'family', '?')}' does not stack its parameters by "
            "member (first dimension); train the members one by one with fit()"
        )
    trials = [
        _Member(
            task,
            length,
            s,
            budget,
            trial_config(task, length, model_config(members.member(i)), budget, threshold),
        )
        for i, s in enumerate(seeds)
    ]
    tokens = count * budget.batch_size * task.max_tokens(length)
    threads = model_threads(model, tokens, dev, threads)
    make = data_mod.train_stream(
        task,
        length,
        budget.batch_size,
        [stream(s, "train") for s in seeds],
        dev,
        ensemble=members.stacked,
    )
    optimizer = make_optimizer(params, budget)
    results: list[TrialResult | None] = [None] * count
    snapshots: list[nn.Module | None] = [None] * count
    active = np.ones(count, dtype=bool)
    start = time.perf_counter()

    def finish(i: int, m: Metrics, snapshot: nn.Module, steps: int, stop: str) -> None:
        results[i] = trials[i].result(m, steps, stop, time.perf_counter() - start)
        snapshots[i] = snapshot
        active[i] = False

    def report(step: int, loss: float, m: Metrics, kind: str, i: int) -> None:
        if callback is not None:
            member = i if members.stacked else None
            stopped = int((~active).sum())
            callback(Progress(step, budget.max_steps, loss, m, kind, member, stopped))

    with (
        thread_scope(threads),
        seeded_torch(seeds[0], dev),
        data_mod.Prefetcher(make, enabled=use_prefetch(prefetch, dev)) as batches,
    ):
        model.train()
        mask: torch.Tensor | None = None  # None while every member trains
        loss_sum = torch.zeros(count, device=dev)
        since = 0
        for step in range(1, budget.max_steps + 1):
            lr = budget.lr_at(step - 1)
            for group in optimizer.param_groups:
                group["lr"] = lr
            per_member = members.losses(batch=batches.next())  # [E], or 0-dim for a plain model
            if per_member.dim() == 0:
                loss = per_member
            elif mask is None:
                loss = per_member.sum()
            else:  # stopped members contribute nothing
                loss = torch.where(mask, per_member, 0.0).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.grad_clip > 0:
                members.clip_(params, budget.grad_clip)
            optimizer.step()
            loss_sum += per_member.detach()
            since += 1
            last = step == budget.max_steps
            if step % budget.eval_every and not last:
                continue
            train_losses = [float(x) / since for x in loss_sum.tolist()]
            loss_sum.zero_()
            since = 0
            for i in map(int, np.flatnonzero(active)):
                if not math.isfinite(train_losses[i]):
                    snapshot = members.member(i)
                    finish(i, trials[i].confirm(snapshot), snapshot, step, "diverged")
            candidates = [int(i) for i in np.flatnonzero(active)]
            if not last and candidates:
                evals = {i: trials[i].eval_batch() for i in candidates}
                filler = evals[candidates[0]]
                totals = members.counts([evals.get(i, filler) for i in range(count)])
                confirmable: list[int] = []
                for i in candidates:
                    m = to_metrics(totals[i])
                    trials[i].history.append(_record(step, train_losses[i], m, "eval"))
                    report(step, train_losses[i], m, "eval", i)
                    if m.sequence_accuracy >= threshold:
                        confirmable.append(i)
                candidates = confirmable
            for i in candidates:
                snapshot = members.member(i)
                final = trials[i].confirm(snapshot)
                trials[i].history.append(_record(step, train_losses[i], final, "confirm"))
                if final.sequence_accuracy >= threshold:
                    finish(i, final, snapshot, step, "reached")
                elif last:
                    finish(i, final, snapshot, step, "budget")
                report(step, train_losses[i], final, "confirm", i)
            if not active.any():
                break
            if not active.all():
                mask = torch.from_numpy(active.copy()).to(dev)
    done = [r for r in results if r is not None]
    kept = [s for s in snapshots if s is not None]
    assert len(done) == count and len(kept) == count
    return EnsembleOutcome(done, kept)


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
    """Train ``model`` (in place) on fresh samples of ``task`` at problem size ``length``:
    :func:`train` with one member, data seed ``seed``; its one TrialResult.

    Stops as soon as the teacher-forced sequence accuracy on held-out data reaches
    ``threshold`` (confirmed on ``budget.confirm_batch`` examples) or the budget ends.
    """
    outcome = train(
        model,
        task,
        length,
        budget,
        [seed],
        threshold,
        device=device,
        callback=callback,
        prefetch=prefetch,
        threads=threads,
    )
    return outcome.results[0]
