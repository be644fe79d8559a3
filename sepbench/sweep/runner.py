"""The driver: runs a study's searches concurrently and owns its results store.

Loop: for every search not yet finished and not waiting on a trial, ask
:func:`~sepbench.sweep.search.next_probe` for its next width (searches in plan order, while
executor slots are free); submit those trials; wait for any to finish; **commit it to the
store**; repeat. A search has at most one trial in flight and asks for its next one only after
the previous is committed, so the store always holds every trial any later decision used, and a
killed study resumes from the store alone. Different searches (seeds, lengths, tasks, models)
run in parallel.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from sepbench.errors import UserError
from sepbench.sweep import DEFAULT_OUT
from sepbench.sweep.executors import Completed, Executor, ProbeFn, make_executor
from sepbench.sweep.plan import SearchPlan, plan_study
from sepbench.sweep.search import Done, Observation, bisection_left, expected_probes, next_probe
from sepbench.sweep.spec import StudySpec, load_spec
from sepbench.sweep.store import Store
from sepbench.sweep.summary import StudySummary, summarize
from sepbench.sweep.trial import TrialSpec


def store_path(spec: StudySpec, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a study's store lives: ``<out_dir>/<study name>.sqlite`` (default ``runs/``)."""
    return Path(out_dir if out_dir is not None else DEFAULT_OUT) / f"{spec.name}.sqlite"


def run_study(
    spec: StudySpec | str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    device: str | None = None,
    probe: ProbeFn | None = None,
    progress: bool = True,
) -> StudySummary:
    """Run (or resume) a study and return its summary.

    ``spec``: a :class:`StudySpec` or a TOML path. ``out_dir``: where the store goes (see
    :func:`store_path`), or give ``store`` (a file path) directly. ``executor``, ``workers``,
    ``threads``, ``address``, ``device`` override the spec's ``[executor]`` table. ``probe``:
    the trial runner (default :class:`~sepbench.sweep.probes.TrainingProbe` on ``device``).
    Trials already in the store are never rerun; an interrupted study (Ctrl-C, kill -9, a
    crash) is resumed by calling this again with the same spec.
    """
    if not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    if probe is None:
        from sepbench.sweep.probes import TrainingProbe

        probe = TrainingProbe(device=device or spec.executor.device)
    validate = getattr(probe, "validate", None)
    if callable(validate):
        validate(spec)
    ex_spec = spec.executor
    kind = executor or ex_spec.kind
    n_workers = ex_spec.workers if workers is None else workers
    n_threads = ex_spec.threads_per_worker if threads is None else threads
    if n_workers < 0 or n_threads < 1:
        raise UserError("workers must be >= 0 (0 = one per core) and threads >= 1")
    path = Path(store) if store is not None else store_path(spec, out_dir)
    if store is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {str(path.parent)!r}: {exc.strerror}") from None
    plans = plan_study(spec)
    start = time.perf_counter()
    with Store.for_study(path, spec) as db:
        stored = db.count()
        orphans = set(db.observations()) - {p.search_key for p in plans}
        if orphans:
            raise UserError(
                f"{path}: {len(orphans)} stored searches do not match this study's trials as "
                "this sepbench resolves them (task defaults changed since they ran?); resume "
                "with the sepbench version that wrote the store, or use another --out directory"
            )
        driver = _Driver(plans, db, progress)
        if driver.pending():
            pool = make_executor(kind, probe, n_workers, n_threads, address or ex_spec.address)
            try:
                driver.run(pool)
            except BaseException:
                pool.close(cancel=True)
                raise
            finally:
                driver.close_bar()
            pool.close()
        return summarize(db, new_trials=db.count() - stored, wall_s=time.perf_counter() - start)


class _Driver:
    def __init__(self, plans: list[SearchPlan], store: Store, progress: bool) -> None:
        self.plans = plans
        self.store = store
        obs = store.observations()
        self.history: dict[str, list[Observation]] = {
            p.search_key: list(obs.get(p.search_key, [])) for p in plans
        }
        self.stored_keys = store.keys()
        self._plan = {p.search_key: p for p in plans}
        self.done: dict[str, Done] = {}
        self.in_flight: dict[str, TrialSpec] = {}
        self.progress = progress
        self.bar: Any = None
        # progress estimates, updated per search as its trials arrive (never used for decisions)
        self._left: dict[str, tuple[int | None, int]] = {}  # key -> (bisection bound, #trials)
        self._prior = {p.search_key: expected_probes(p.grid) for p in plans}
        self._probes_done = 0
        for plan in plans:
            self._update(plan)

    def _update(self, plan: SearchPlan) -> None:
        """Re-derive one search's state after its history changed."""
        key = plan.search_key
        history = self.history[key]
        step = next_probe(history, plan.grid, plan.reprobes)
        if isinstance(step, Done):
            self.done[key] = step
            self._left.pop(key, None)
            self._probes_done += step.probes
        elif step.reason == "bisect":
            self._left[key] = (bisection_left(history, plan.grid), len(history))
        else:
            self._left[key] = (None, len(history))

    def pending(self) -> bool:
        return len(self.done) < len(self.plans)

    # ------------------------------------------------------------------ progress
    def _estimate(self) -> int:
        """Trials still to run: bisection bounds, else a typical search's length so far."""
        typical = self._probes_done / len(self.done) if self.done else None
        left = 0.0
        for key, (bound, n) in self._left.items():
            left += bound if bound is not None else max(1.0, (typical or self._prior[key]) - n)
        return math.ceil(left)

    def _open_bar(self) -> None:
        if not self.progress:
            return
        from tqdm.auto import tqdm

        stored = sum(len(h) for h in self.history.values())
        self.bar = tqdm(
            total=stored + self._estimate(),
            initial=stored,
            unit="trial",
            desc=f"sweep {self.store.study}",
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._postfix()

    def _postfix(self) -> None:
        if self.bar is None:
            return
        censored = sum(d.censored for d in self.done.values())
        violations = sum(bool(d.violations) for d in self.done.values())
        self.bar.set_postfix_str(
            f"searches {len(self.done)}/{len(self.plans)}, running {len(self.in_flight)}, "
            f"censored {censored}, violations {violations}, ~{self._estimate()} to go",
            refresh=False,
        )

    def _advance(self) -> None:
        if self.bar is None:
            return
        self.bar.total = self.bar.n + 1 + self._estimate()
        self.bar.update(1)
        self._postfix()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ------------------------------------------------------------------ the loop
    def _fill(self, pool: Executor) -> None:
        for plan in self.plans:
            if len(self.in_flight) >= pool.slots:
                return
            key = plan.search_key
            if key in self.done or key in self.in_flight:
                continue
            step = next_probe(self.history[key], plan.grid, plan.reprobes)
            assert not isinstance(step, Done)  # _update marks finished searches
            trial = plan.trial(step.width, step.attempt)
            if trial.key in self.stored_keys:  # would mean the search rule is not a function
                raise RuntimeError(f"search asked again for stored trial {trial.describe()}")
            pool.submit(trial)
            self.in_flight[key] = trial

    def _finish(self, c: Completed) -> None:
        trial = c.trial
        if c.error is not None:
            if c.error.user_error:
                raise UserError(f"{trial.describe()}: {c.error.message}")
            raise RuntimeError(
                f"{trial.describe()} failed: {c.error.kind}: {c.error.message}\n"
                f"--- probe traceback ---\n{c.error.traceback}"
            )
        assert c.outcome is not None
        self.store.record(trial, c.outcome)  # committed before the search moves on
        self.stored_keys.add(trial.key)
        self.history[trial.search_key].append(
            Observation(trial.width, trial.attempt, c.outcome.reached)
        )
        del self.in_flight[trial.search_key]
        self._update(self._plan[trial.search_key])
        self._advance()

    def run(self, pool: Executor) -> None:
        self._open_bar()
        while True:
            self._fill(pool)
            self._postfix()
            if not self.in_flight:
                break
            # successes first: a failing probe must not cost a finished trial its record
            for completed in sorted(pool.wait(), key=lambda c: c.error is not None):
                self._finish(completed)
