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
        details = result.to_dict()
        details.update(_model_facts(model, task, search.length))
        return ProbeOutcome(
            reached=bool(result.reached),
            accuracy=float(result.sequence_accuracy),
            steps=int(result.steps),
            wall_s=float(result.wall_time),
            details=details,
        )

    def batch(self, trials: list[TrialSpec]) -> list[ProbeOutcome]:
        """Train ``trials`` (one configuration and width, different seeds) as one ensemble."""
        from sepbench import models, tasks, training
        from sepbench.sweep.executors import worker_threads

        if not trials:
            return []
        first = trials[0]
        key = first.batch_key()
        if any(t.batch_key() != key for t in trials[1:]):
            raise ValueError("batch(): trials differ in more than their seed")
        search = first.search
        task = tasks.make(search.task, **search.task_params)
        seeds = [t.seed for t in trials]
        ensemble = models.build_ensemble(
            search.family, len(task.vocab), first.width, seeds, options=search.model_options
        )
        outcome = training.train(
            ensemble,
            task,
            search.length,
            search.budget.for_trainer(),
            seeds,
            search.threshold,
            device=self.device,
            threads=worker_threads(),
        )
        replicates = [t.search.replicate for t in trials]
        # every member has this architecture: its facts, read off the first trained member
        facts = _model_facts(outcome.models[0], task, search.length)
        results = outcome.results
        outcomes = []
        for result in results:
            details = result.to_dict()
            details["ensemble"] = {"members": len(trials), "replicates": replicates}
            details.update(facts)
            outcomes.append(
                ProbeOutcome(
                    reached=bool(result.reached),
                    accuracy=float(result.sequence_accuracy),
                    steps=int(result.steps),
                    wall_s=float(result.wall_time),
                    details=details,
                )
            )
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
    """

    law: str = "linear"
    coef: dict[str, float] = field(default_factory=dict)
    flips: tuple[int, ...] = ()
    noise: float = 0.0
    delay: float = 0.0
    log: str | None = None

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
        reached = self.truth(trial)
        if trial.attempt == 0 and trial.width in self.flips:
            reached = not reached
        if self.noise:
            u = int(hashlib.sha256(trial.key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if u < self.noise:
                reached = not reached
        accuracy = (
            1.0
            if reached
            else min(0.9, trial.width / self.threshold(trial.search.family, trial.search.length))
        )
        self._log("end", trial.key)
        return ProbeOutcome(
            reached=reached, accuracy=accuracy, steps=trial.search.budget.steps, wall_s=self.delay
        )

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
