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

Members may differ in their peak learning rate (``lrs``: the budget's warm-up and cosine
schedule scaled to each; :class:`MemberAdamW` steps stacked parameters with one rate per
member) and may stop together (``groups``, :class:`~sepbench.training.config.StopGroup`: a
group stops as soon as its quorum of members reached, or can no longer reach, the threshold —
the study's ``best_of`` and ``median`` rules). With a length mixture (``Budget.min_length`` /
``max_length``) each training batch has one length drawn from the training range, while
evaluation and confirmation stay at the trial's length N (``Budget.eval_lengths = "exact"``)
or are drawn over the training range (``"train"``).

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

from sepbench import rules
from sepbench.errors import UserError
from sepbench.models.ensemble import Ensemble
from sepbench.tasks import Task
from sepbench.training import data as data_mod
from sepbench.training.config import (
    Budget,
    StopGroup,
    TrialResult,
    check_seed,
    stream,
    torch_seed,
)
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

Objective = Callable[
    [nn.Module, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor
]
"""A training objective other than the plain loss of ``model(inputs)``: called as
``objective(model, inputs, loss)`` with ``loss`` mapping logits to the masked mean cross-entropy
(per member for an ensemble); e.g. BA22's progressive loss for recurrent-depth models
(:func:`sepbench.models.depth.progressive_loss`)."""


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


class MemberAdamW:
    """AdamW over stacked parameters ``[E, ...]`` with one learning rate per member.

    ``torch.optim.AdamW`` takes one rate per parameter group, and an ensemble's parameters
    hold every member in one tensor. AdamW is elementwise and linear in the rate at the two
    places it enters — the decoupled decay ``p ← p·(1 − lr·wd)`` and the step
    ``p ← p − (lr / (1 − β1^t)) · m / (√(v / (1 − β2^t)) + ε)`` — so member e's slice is
    updated with its own rate by broadcasting a per-member factor ``[E, 1, …]``. The factors
    are computed in float64 per member and rounded once, and the operations follow torch's
    foreach AdamW (lerp for m, addcmul for v; the step divides the denominator by the step
    size, as torch's capturable path does), so member e moves as ``AdamW(lr=lr_e)`` would move
    it alone, up to floating-point rounding (a test checks 20 steps to 1e-5).
    """

    def __init__(self, params: Sequence[nn.Parameter], budget: Budget, members: int) -> None:
        self.params: list[torch.Tensor] = list(params)
        self.members = members
        self.beta1, self.beta2 = budget.beta1, budget.beta2
        self.weight_decay = budget.weight_decay
        self.eps = 1e-8  # torch.optim.AdamW's default, which make_optimizer keeps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def _factor(self, values: Sequence[float], like: torch.Tensor) -> list[torch.Tensor]:
        col = torch.tensor(values, dtype=like.dtype, device=like.device)
        return [col.view(self.members, *([1] * (p.dim() - 1))) for p in self.params]

    @torch.no_grad()
    def step(self, lrs: Sequence[float]) -> None:
        """One AdamW step, member e with rate ``lrs[e]``."""
        if any(p.grad is None for p in self.params):
            raise RuntimeError("MemberAdamW: every stacked parameter needs a gradient")
        grads = [p.grad for p in self.params if p.grad is not None]
        self.t += 1
        like = self.params[0]
        if self.weight_decay:
            decay = self._factor([1 - lr * self.weight_decay for lr in lrs], like)
            torch._foreach_mul_(self.params, decay)
        torch._foreach_lerp_(self.exp_avg, grads, 1 - self.beta1)
        torch._foreach_mul_(self.exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - self.beta2)
        bias1 = 1 - self.beta1**self.t
        bias2_sqrt = (1 - self.beta2**self.t) ** 0.5
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_div_(denom, self._factor([-lr / bias1 for lr in lrs], like))
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom)


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

    def __init__(self, model: nn.Module, objective: Objective | None = None) -> None:
        self.model = model
        self.size = 1
        self.objective = objective

    def losses(self, batch: data_mod.Prepared) -> torch.Tensor:
        if self.objective is not None:
            return self.objective(
                self.model, batch.inputs, lambda z: loss_single(z, batch.sel, batch.sel_targets)
            )
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

    def __init__(self, ensemble: Ensemble, pad_id: int, objective: Objective | None = None) -> None:
        self.ensemble = ensemble
        self.size = ensemble.size
        self.pad_id = pad_id
        self.objective = objective

    def losses(self, batch: data_mod.Prepared) -> torch.Tensor:
        member, counts = batch.member, batch.counts
        assert member is not None and counts is not None

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return loss_members(logits, batch.sel, batch.sel_targets, member, counts)

        if self.objective is not None:
            return self.objective(self.ensemble, batch.inputs, loss)
        return loss(self.ensemble(batch.inputs))

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
    lengths: list[int]
    """The training lengths (``[length]`` without a mixture)."""
    eval_rng: np.random.Generator = field(init=False)
    _confirm: tuple[np.ndarray, np.ndarray] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.eval_rng = stream(self.seed, "eval")

    def _held_out(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.budget.eval_lengths == "train":
            return data_mod.sample_rows(self.task, self.lengths, count, rng)
        b = self.task.sample(self.length, count, rng=rng)
        return b.inputs, b.targets

    def eval_batch(self) -> tuple[np.ndarray, np.ndarray]:
        return self._held_out(self.budget.eval_batch, self.eval_rng)

    def confirm_batch(self) -> tuple[np.ndarray, np.ndarray]:
        if self._confirm is None:
            self._confirm = self._held_out(self.budget.confirm_batch, stream(self.seed, "confirm"))
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
    lrs: Sequence[float] | None = None,
    groups: Sequence[StopGroup] | None = None,
    device: str | torch.device | None = None,
    callback: Callback | None = None,
    prefetch: bool | None = None,
    threads: int | None = None,
    objective: Objective | None = None,
) -> EnsembleOutcome:
    """Train the members of ``model`` at once on fresh samples of ``task`` at size ``length``.

    ``model``: a plain model — an ensemble of one, trained in place with its own forward pass —
    or a :class:`~sepbench.models.Ensemble` of E members (``models.build_ensemble``), whose
    parameters all carry the member as their first dimension. ``seeds``: one per member;
    member ``i`` draws its training, evaluation and confirmation data from the streams of
    ``seeds[i]`` (:mod:`sepbench.training.config`), so it sees exactly the data it would see
    trained alone. Each member's loss is its own mean cross-entropy and its gradient is clipped
    on its own, so AdamW (elementwise) updates it as if it were alone.

    ``lrs``: one peak learning rate per member (default: ``budget.lr`` for all); member i
    follows the budget's schedule with ``lr = lrs[i]`` — it trains as ``fit`` with
    ``replace(budget, lr=lrs[i])`` would, and its result records that budget. Different rates
    need an ensemble (:class:`MemberAdamW`); equal ones use torch's AdamW.

    ``groups``: members that stop together (:class:`~sepbench.training.config.StopGroup`;
    default: every member alone, quorum 1). When a group is decided — its quorum reached the
    threshold, or can no longer — its members still training stop with ``stop = "decided"``.

    Schedule (the module docstring); a member that reaches the threshold (confirmed) or
    diverges stops: its result and snapshot are taken at that step and its loss is masked to
    zero from then on; the others continue until all have stopped or the budget ends.
    ``device``: default the model's own (the model is moved there). ``threads``: CPU intra-op
    threads for the run (default: :func:`~sepbench.training.threads.auto_threads`).
    ``prefetch``: draw the next batches in a background thread (default: on CUDA only — see
    :func:`use_prefetch`). ``objective``: the loss to minimise instead of the plain one
    (:data:`Objective`; default: cross-entropy of ``model(inputs)``). Deterministic on CPU
    for given seeds, with or without prefetching.

    An ensemble's members differ from ``fit`` only in floating-point rounding: batched kernels
    sum in another order than the single-model ones, so trajectories agree to rounding at
    first and may drift apart over many steps (a close call at an evaluation can then fall
    either way); ``wall_time`` is the time from the start until the member stopped; torch's
    own RNG (dropout) is seeded from ``seeds[0]``.
    """
    budget = budget if budget is not None else Budget()
    task = task_for(task, model)  # a model without a retriever must write the results itself
    members: _Plain | _Stacked = (
        _Stacked(model, task.pad_id, objective)
        if isinstance(model, Ensemble)
        else _Plain(model, objective)
    )
    count = members.size
    if isinstance(seeds, int | str) or len(seeds) != count:
        raise UserError(f"train: give one seed per member ({count}), got {seeds!r}")
    seeds = [check_seed(s) for s in seeds]
    rates = _member_rates(lrs, budget, count)
    budgets = [budget if r == budget.lr else replace(budget, lr=r) for r in rates]
    stop_groups = _stop_groups(groups, count)
    threshold = check_threshold(threshold)
    task.check_length(length)
    lo, hi = budget.length_range(length)
    lengths = data_mod.training_lengths(task, lo, hi) if budget.mixed else [length]
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
            budgets[i],
            trial_config(task, length, model_config(members.member(i)), budgets[i], threshold),
            lengths,
        )
        for i, s in enumerate(seeds)
    ]
    tokens = count * budget.batch_size * task.max_tokens(max(lengths))
    threads = model_threads(model, tokens, dev, threads)
    make = data_mod.train_stream(
        task,
        length,
        budget.batch_size,
        [stream(s, "train") for s in seeds],
        dev,
        ensemble=members.stacked,
        lengths=lengths,
    )
    per_member = len(set(rates)) > 1
    optimizer: torch.optim.Optimizer | MemberAdamW = (
        MemberAdamW(params, budget, count) if per_member else make_optimizer(params, budgets[0])
    )
    results: list[TrialResult | None] = [None] * count
    snapshots: list[nn.Module | None] = [None] * count
    active = np.ones(count, dtype=bool)
    undecided = list(stop_groups)
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

    def settle(step: int, latest: dict[int, Metrics]) -> None:
        """Stop the members of every group decided by now (``latest``: this step's metrics)."""
        for group in list(undecided):
            stops = [r.stop for r in (results[i] for i in group.members) if r is not None]
            passed = sum(x == "reached" for x in stops)
            failed = sum(x in ("budget", "diverged") for x in stops)
            if rules.decide(passed, failed, len(group.members), group.quorum) is None:
                continue
            undecided.remove(group)
            for i in group.members:
                if active[i]:
                    finish(i, latest[i], members.member(i), step, "decided")

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
            if isinstance(optimizer, MemberAdamW):
                step_rates = [b.lr_at(step - 1) for b in budgets]
            else:
                for group in optimizer.param_groups:
                    group["lr"] = budgets[0].lr_at(step - 1)
            per_member_loss = members.losses(batch=batches.next())  # [E], or 0-dim (plain)
            if per_member_loss.dim() == 0:
                loss = per_member_loss
            elif mask is None:
                loss = per_member_loss.sum()
            else:  # stopped members contribute nothing
                loss = torch.where(mask, per_member_loss, 0.0).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.grad_clip > 0:
                members.clip_(params, budget.grad_clip)
            if isinstance(optimizer, MemberAdamW):
                optimizer.step(step_rates)
            else:
                optimizer.step()
            loss_sum += per_member_loss.detach()
            since += 1
            last = step == budget.max_steps
            if step % budget.eval_every and not last:
                continue
            train_losses = [float(x) / since for x in loss_sum.tolist()]
            loss_sum.zero_()
            since = 0
            latest: dict[int, Metrics] = {}
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
                    latest[i] = m
                    trials[i].history.append(_record(step, train_losses[i], m, "eval"))
                    report(step, train_losses[i], m, "eval", i)
                    if m.sequence_accuracy >= threshold:
                        confirmable.append(i)
                candidates = confirmable
            for i in candidates:
                snapshot = members.member(i)
                final = trials[i].confirm(snapshot)
                latest[i] = final
                trials[i].history.append(_record(step, train_losses[i], final, "confirm"))
                if final.sequence_accuracy >= threshold:
                    finish(i, final, snapshot, step, "reached")
                elif last:
                    finish(i, final, snapshot, step, "budget")
                report(step, train_losses[i], final, "confirm", i)
            if undecided and not last:
                settle(step, latest)
            if not active.any():
                break
            if not active.all():
                mask = torch.from_numpy(active.copy()).to(dev)
    done = [r for r in results if r is not None]
    kept = [s for s in snapshots if s is not None]
    assert len(done) == count and len(kept) == count
    return EnsembleOutcome(done, kept)


def _member_rates(lrs: Sequence[float] | None, budget: Budget, count: int) -> list[float]:
    """One validated peak learning rate per member (default: the budget's)."""
    if lrs is None:
        return [budget.lr] * count
    if isinstance(lrs, int | float | str) or len(lrs) != count:
        raise UserError(f"train: give one learning rate per member ({count}), got {lrs!r}")
    out = []
    for lr in lrs:
        if (
            isinstance(lr, bool)
            or not isinstance(lr, int | float | np.number)
            or not math.isfinite(lr)
            or lr <= 0
        ):
            raise UserError(f"train: learning rates must be numbers > 0, got {lr!r}")
        out.append(float(lr))
    return out


def _stop_groups(groups: Sequence[StopGroup] | None, count: int) -> list[StopGroup]:
    """The validated groups (every member in at most one); members of no group stop alone.
    Groups of one member with quorum 1 change nothing and are dropped."""
    if groups is None:
        return []
    seen: set[int] = set()
    out = []
    for g in groups:
        if not isinstance(g, StopGroup):
            raise UserError(f"train: groups must be StopGroup records, got {g!r}")
        bad = [i for i in g.members if not 0 <= i < count or i in seen]
        if bad:
            raise UserError(
                f"train: member {bad[0]} of a stop group is out of range 0..{count - 1} or "
                "in two groups"
            )
        seen.update(g.members)
        if len(g.members) > 1:
            out.append(g)
    return out


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
    objective: Objective | None = None,
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
        objective=objective,
    )
    return outcome.results[0]
