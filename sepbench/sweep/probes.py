"""Probes: the one function through which the sweep touches training.

A probe is any picklable callable ``probe(trial: TrialSpec) -> ProbeOutcome``; it may also
have ``validate(spec)``, called once before a study starts, to reject model families or
options it cannot run (with a UserError), and ``batch(trials) -> [ProbeOutcome, ...]``, which
runs trials that differ only in their seed together (used for studies with
``trainer = "ensemble"``). :class:`TrainingProbe` trains a real model with
:func:`sepbench.training.fit` (or, for the ensemble trainer, a batched ensemble with
:func:`~sepbench.training.train`); :class:`FakeProbe` is a deterministic stand-in for tests and
benchmarks.

:class:`TrainingProbe` records in each outcome's details, besides the trainer's result, the
facts of the model it trained (:class:`sepbench.models.cards.ModelFacts`: state size,
parameter count, theory class), so the report reads them instead of recomputing them.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sepbench.errors import UserError
from sepbench.sweep.laws import LAWS
from sepbench.sweep.replay import member_state
from sepbench.sweep.trial import ProbeOutcome, TrialSpec, derive_seed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sepbench.sweep.spec import Budget, StudySpec


@dataclass(frozen=True)
class TrainingProbe:
    """Build ``models.build(family, vocab, width, **options)`` and ``training.fit`` it.

    Trainer ``single`` (its search's ``trainer``): initial weights
    ``models.build(..., seed=derive_seed(trial seed, "init"))``; the trainer derives its own
    data streams from the trial seed. Trainer ``ensemble``: :meth:`batch` trains the given
    trials (same configuration and width, different seeds) as one ensemble
    (:func:`~sepbench.training.train`) whose member i starts as ``models.build(...,
    seed=seed_i)`` and sees exactly the data ``fit(..., seed=seed_i)`` would; a lone trial is an
    ensemble of one, so a trial's outcome does not depend on whether it had company (up to
    floating-point summation order in the batched kernels). ``device``: passed to the trainer
    (default: CPU). Inside a sweep worker, training uses the worker's thread count.

    A search with K > 1 members per probe (``restarts`` × learning rates,
    :meth:`TrialSpec.members`) trains each trial's members as one ensemble — with the trials
    of a batch, for the ensemble trainer — each trial one stop group with its rule's quorum
    (:mod:`sepbench.rules`); the outcome is :func:`probe_outcome` of its members.
    """

    device: str | None = None
    max_members: int = 0
    """Most trials :meth:`batch` trains at once (0: no limit)."""

    def validate(self, spec: StudySpec) -> None:
        """Check families, options and budget before any trial runs.

        Each model is built (tiny, on CPU) at the two smallest widths of its grid, so an
        option that needs a width multiple (e.g. attention heads) is reported up front.
        """
        from sepbench import models, tasks

        families = models.families()
        vocab = max(len(tasks.make(t.name, **t.params).vocab) for t in spec.tasks)
        for i, (m, _) in enumerate(spec.model_labels()):
            if m.family not in families:
                raise UserError(
                    f"models[{i}].family: unknown model family '{m.family}'; "
                    f"known: {', '.join(families)}"
                )
            grid = spec.width_for(m)
            first = -(-grid.min // grid.resolution) * grid.resolution
            for width in (first, first + grid.resolution):
                if width > grid.max:
                    break
                try:
                    models.build(m.family, vocab, width, seed=0, options=m.options)
                except ValueError as exc:
                    hint = " (width.resolution sets the step of the widths searched)"
                    raise UserError(
                        f"models[{i}] at width {width}: {exc}" + (hint if width != first else "")
                    ) from None
        check_budgets(spec.budget, spec.lengths)

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        from sepbench import models, tasks, training
        from sepbench.sweep.executors import worker_threads

        search = trial.search
        if search.trainer == "ensemble":
            return self.batch([trial])[0]
        if search.trainer != "single":
            raise UserError(f"unknown trainer '{search.trainer}'; known: single, ensemble")
        if search.size > 1:
            return self._train([trial], derived_init=True)[0]
        threads = worker_threads()
        task = tasks.make(search.task, **search.task_params)
        model = models.build(
            search.family,
            len(task.vocab),
            trial.width,
            seed=derive_seed(trial.seed, "init"),
            options=search.model_options,
        )
        result = training.fit(
            model,
            task,
            search.length,
            search.budget.for_trainer(),
            trial.seed,
            search.threshold,
            device=self.device,
            threads=threads,
        )
        return probe_outcome(trial, [result.to_dict()], _model_facts(model, task, search.length))

    def batch(self, trials: list[TrialSpec]) -> list[ProbeOutcome]:
        """Train ``trials`` (one configuration and width, different seeds) as one ensemble."""
        return self._train(trials, derived_init=False)

    def _train(self, trials: list[TrialSpec], derived_init: bool) -> list[ProbeOutcome]:
        """Train every member of ``trials`` (one configuration and width) as one ensemble.

        Trial t's members (:meth:`TrialSpec.members`) form one stop group with the quorum of
        the search's rule, so its training stops as soon as its rule is decided. Member
        initial weights: ``build(..., seed=s)`` for the ensemble trainer, ``build(...,
        seed=derive_seed(s, "init"))`` for a single trial's members (``derived_init``: the
        single trainer's rule, so member 0 starts as the one-model trial does).
        """
        from sepbench import models, rules, tasks, training
        from sepbench.sweep.executors import worker_threads
        from sepbench.training.config import StopGroup

        if not trials:
            return []
        first = trials[0]
        key = first.batch_key()
        if any(t.batch_key() != key for t in trials[1:]):
            raise ValueError("batch(): trials differ in more than their seed")
        search = first.search
        task = tasks.make(search.task, **search.task_params)
        members = [t.members() for t in trials]
        flat = [m for ms in members for m in ms]
        seeds = [m.seed for m in flat]
        inits = [derive_seed(s, "init") for s in seeds] if derived_init else seeds
        ensemble = models.build_ensemble(
            search.family, len(task.vocab), first.width, inits, options=search.model_options
        )
        groups, at = [], 0
        for ms in members:
            groups.append(
                StopGroup(tuple(range(at, at + len(ms))), rules.quorum(search.rule, len(ms)))
            )
            at += len(ms)
        outcome = training.train(
            ensemble,
            task,
            search.length,
            search.budget.for_trainer(),
            seeds,
            search.threshold,
            lrs=[m.lr for m in flat],
            groups=groups,
            device=self.device,
            threads=worker_threads(),
        )
        # every member has this architecture: its facts, read off the first trained member
        facts = _model_facts(outcome.models[0], task, search.length)
        if search.trainer == "ensemble":
            replicates = [t.search.replicate for t in trials]
            facts["ensemble"] = {"members": len(flat), "replicates": replicates}
        results = iter(outcome.results)
        outcomes = []
        for trial, ms in zip(trials, members, strict=True):
            records = []
            for m in ms:
                record = next(results).to_dict()
                if len(ms) > 1:
                    record.update(member=m.index, restart=m.restart, lr=m.lr)
                records.append(record)
            outcomes.append(probe_outcome(trial, records, facts))
        return outcomes


def check_budgets(budget: Budget, lengths: Sequence[int]) -> None:
    """The study's budget resolved at every length is a valid trainer budget (UserError
    naming the bad field otherwise)."""
    reference = min(lengths)
    for n in lengths:
        try:
            budget.at(n, reference).for_trainer()
        except ValueError as exc:
            msg = str(exc)
            raise UserError(msg if msg.startswith("budget") else f"budget: {msg}") from None


def probe_outcome(
    trial: TrialSpec, members: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> ProbeOutcome:
    """A trial's outcome from its members' records (``TrialResult`` dicts, plus ``member``,
    ``restart`` and ``lr`` when there are several).

    ``reached``: the members' outcomes combined by the search's rule
    (:func:`sepbench.rules.combine`; training ran until it was decided). ``accuracy``: what
    the rule compares — the best member's sequence accuracy (``best_of``) or the quorum-th
    best (``median``). ``steps`` and ``wall_s``: the longest member's. Details: a one-member
    trial stores its ``TrialResult`` itself (as trials always did); several members are stored
    as ``members``, with the ``rule``, its ``quorum`` and ``outcomes`` under both rules (None
    where the stored members leave it undetermined). Both add ``examples``: training examples
    seen per member (steps × batch size) and ``extra`` (model facts, ensemble membership).
    """
    from sepbench import rules

    search = trial.search
    states = [member_state(m) for m in members]
    reached = rules.combine(search.rule, states)
    if reached is None:
        raise RuntimeError(f"{trial.describe()}: training ended before its rule was decided")
    steps = max(int(m["steps"]) for m in members)
    need = rules.quorum(search.rule, len(members))
    accuracies = sorted((float(m["sequence_accuracy"]) for m in members), reverse=True)
    if len(members) == 1:
        details = dict(members[0])
    else:
        details = {
            "rule": search.rule,
            "quorum": need,
            "outcomes": {r: rules.combine(r, states) for r in rules.RULES},
            "members": members,
        }
    details["examples"] = steps * search.budget.batch_size
    details.update(extra or {})
    return ProbeOutcome(
        reached=reached,
        accuracy=accuracies[need - 1],
        steps=steps,
        wall_s=max(float(m.get("wall_time", 0.0)) for m in members),
        details=details,
    )


def _model_facts(model: Any, task: Any, length: int) -> dict[str, Any]:
    """The details entry recording the trained model's facts (state size at the task's token
    length for N = ``length``, parameters, theory class): see ``models.cards.ModelFacts``."""
    from sepbench.models.cards import ModelFacts

    facts = ModelFacts.of(model, task.name, task.params, task.max_tokens(length))
    return {ModelFacts.KEY: facts.to_dict()}


# ---------------------------------------------------------------------- the fake
@dataclass(frozen=True)
class FakeProbe:
    """A deterministic, training-free probe: success iff ``width >= threshold(trial)``.

    ``threshold = ceil(coef[family] * law(N))`` (``coef`` default 1 per family, ``law`` one of
    constant, log, sqrt, linear). Non-monotonicity on demand:

    * ``flips``: widths whose outcome is inverted on attempt 0 (a re-probe sees the truth);
    * ``noise``: probability that an outcome is inverted, drawn from a hash of the trial key
      (so the same trial always gives the same answer).

    ``delay`` seconds of sleep per probe (to simulate work); ``log``: a file to which each
    probe appends ``start <key>`` and ``end <key>`` lines (O_APPEND, safe across processes).

    Probes of K > 1 members (restarts × learning rates), or with ``member_coef``: member j
    succeeds iff ``width >= ceil(coef[family] · law(N) · member_coef[j % len])`` (flips and
    noise apply per member), and the members stop as the trainer stops them under the
    search's rule: the successes in order of their thresholds (lowest first) reach, until the
    rule's quorum is met — then the others are cut short (``decided``) — else every failure
    runs to the end of its budget. The outcome is the trainer's probe outcome
    (:func:`probe_outcome`), details included.
    """

    law: str = "linear"
    coef: dict[str, float] = field(default_factory=dict)
    flips: tuple[int, ...] = ()
    noise: float = 0.0
    delay: float = 0.0
    log: str | None = None
    member_coef: tuple[float, ...] = ()

    def validate(self, spec: StudySpec) -> None:
        if self.law not in LAWS:
            raise UserError(f"FakeProbe: unknown law '{self.law}'; known: {', '.join(LAWS)}")

    def threshold(self, family: str, length: int) -> int:
        return max(1, math.ceil(self.coef.get(family, 1.0) * LAWS[self.law](length) - 1e-9))

    def truth(self, trial: TrialSpec) -> bool:
        return trial.width >= self.threshold(trial.search.family, trial.search.length)

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        self._log("start", trial.key)
        if self.delay:
            time.sleep(self.delay)
        if trial.search.size > 1 or self.member_coef:
            outcome = self._members(trial)
            self._log("end", trial.key)
            return outcome
        reached = self._flip(trial, self.truth(trial), trial.key)
        accuracy = (
            1.0
            if reached
            else min(0.9, trial.width / self.threshold(trial.search.family, trial.search.length))
        )
        self._log("end", trial.key)
        return ProbeOutcome(
            reached=reached, accuracy=accuracy, steps=trial.search.budget.steps, wall_s=self.delay
        )

    def _flip(self, trial: TrialSpec, reached: bool, key: str) -> bool:
        if trial.attempt == 0 and trial.width in self.flips:
            reached = not reached
        if self.noise:
            u = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if u < self.noise:
                reached = not reached
        return reached

    def member_threshold(self, trial: TrialSpec, member: int) -> int:
        """The width member ``member`` of ``trial``'s probe needs."""
        search = trial.search
        factor = self.member_coef[member % len(self.member_coef)] if self.member_coef else 1.0
        raw = self.coef.get(search.family, 1.0) * LAWS[self.law](search.length) * factor
        return max(1, math.ceil(raw - 1e-9))

    def _members(self, trial: TrialSpec) -> ProbeOutcome:
        from sepbench import rules

        search = trial.search
        steps = search.budget.steps
        specs = trial.members()
        need = rules.quorum(search.rule, len(specs))
        needs = [self.member_threshold(trial, m.index) for m in specs]
        passes = [
            self._flip(trial, trial.width >= t, f"{trial.key}/{m.index}")
            for m, t in zip(specs, needs, strict=True)
        ]
        order = sorted((t, m.index) for m, t, ok in zip(specs, needs, passes, strict=True) if ok)
        reach = {j for _, j in order[:need]} if len(order) >= need else {j for _, j in order}
        decided = len(order) >= need
        records = []
        for m, t in zip(specs, needs, strict=True):
            if m.index in reach:
                stop, at, acc = "reached", max(1, steps // 2), 1.0
            elif decided:
                stop, at, acc = "decided", max(1, steps // 2), min(0.9, trial.width / t)
            else:
                stop, at, acc = "budget", steps, min(0.9, trial.width / t)
            records.append(
                {
                    "member": m.index,
                    "restart": m.restart,
                    "lr": m.lr,
                    "seed": m.seed,
                    "reached": stop == "reached",
                    "stop": stop,
                    "steps": at,
                    "sequence_accuracy": acc,
                    "wall_time": self.delay,
                    "history": [],
                }
            )
        return probe_outcome(trial, records)

    def _log(self, event: str, key: str) -> None:
        log_event(self.log, event, key)


def log_event(log: str | None, event: str, key: str) -> None:
    """Append ``<event> <key>`` to the file ``log`` (O_APPEND: safe across processes); a
    fake probe's record of which trials it started and ended (None: no log)."""
    if log is None:
        return
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {key}\n".encode())
    finally:
        os.close(fd)
