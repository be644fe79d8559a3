"""The driver: runs a study's searches concurrently and owns its results store.

Loop: for every search not yet finished and not waiting on a trial, ask
:func:`~sepbench.sweep.search.next_probe` for its next width (in the driver's priority order,
while executor slots are free); submit those trials as jobs; wait for any job to finish;
**commit its trials to the store** (one transaction per job); repeat. A search has at
most one trial in flight and asks for its next one only after the previous is committed, so
the store always holds every trial any later decision used, and a killed study resumes from
the store alone. Different searches (seeds, lengths, tasks, models) run in parallel.

With the ``ensemble`` trainer (``trainer = "ensemble"`` in the spec, and a probe with
``batch()``), the seeds of one (task, model, length) that probe the same width form one job,
trained as one batched ensemble; with ``[width] start = "previous"`` a search starts at the
answer of the next shorter length (see :class:`_Driver`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sepbench.errors import UserError
from sepbench.sweep import DEFAULT_OUT
from sepbench.sweep.executors import Completed, Executor, Job, ProbeFn, make_executor
from sepbench.sweep.plan import SearchPlan, plan_study
from sepbench.sweep.search import Done, Observation, bisection_left, expected_probes, next_probe
from sepbench.sweep.spec import ExecutorSpec, StudySpec, load_spec
from sepbench.sweep.store import Store
from sepbench.sweep.summary import StudySummary, summarize
from sepbench.sweep.trial import ProbeOutcome, TrialSpec


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
    pool_of = pool_factory(spec.executor, probe, executor, workers, threads, address)
    path = open_path(store, store_path(spec, out_dir))
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
        batch = spec.trainer == "ensemble" and callable(getattr(probe, "batch", None))
        max_members = int(getattr(probe, "max_members", 0) or 0)
        driver = _Driver(plans, db, progress, batch=batch, max_members=max_members)
        if driver.pending():
            pool = pool_of()
            try:
                driver.run(pool)
            except BaseException:
                pool.close(cancel=True)
                raise
            finally:
                driver.close_bar()
            pool.close()
        return summarize(db, new_trials=db.count() - stored, wall_s=time.perf_counter() - start)


def pool_factory(
    ex_spec: ExecutorSpec,
    probe: ProbeFn,
    executor: str | None,
    workers: int | None,
    threads: int | None,
    address: str | None,
) -> Callable[[], Executor]:
    """A maker of the study's executor: the spec's ``[executor]`` table with the caller's
    overrides (None: the spec's), checked now (UserError for bad counts), started later (only
    if there is something to run)."""
    kind = executor or ex_spec.kind
    n_workers = ex_spec.workers if workers is None else workers
    n_threads = ex_spec.threads_per_worker if threads is None else threads
    if n_workers < 0 or n_threads < 1:
        raise UserError("workers must be >= 0 (0 = one per core) and threads >= 1")
    where = address or ex_spec.address
    return lambda: make_executor(kind, probe, n_workers, n_threads, where)


def open_path(store: str | os.PathLike[str] | None, default: Path) -> Path:
    """The store file: ``store`` if given (its directory must exist), else ``default`` with
    its directory created."""
    if store is not None:
        return Path(store)
    try:
        default.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {str(default.parent)!r}: {exc.strerror}") from None
    return default


Cell = tuple[str, str, int]


def _priority(cells: dict[Cell, list[SearchPlan]]) -> list[Cell]:
    """Cells in the order the driver serves them: longest chain of work first.

    A cell's work is taken as its length N (budgets grow with N, and so do widths); with
    ``start = "previous"`` a cell also carries the work of the longer lengths that wait for it.
    Serving the longest chains first keeps both the longest trials and the longest waiting
    chains off the end of the run (a longest-processing-time-first schedule); ties go in plan
    order.
    """
    following: dict[Cell, Cell] = {}
    for cell, members in cells.items():
        previous = members[0].previous_cell
        if previous is not None:
            following[previous] = cell
    work: dict[Cell, int] = {}
    for cell in sorted(cells, key=lambda c: -c[2]):  # longest lengths first: successors known
        nxt = following.get(cell)
        work[cell] = cell[2] + (work[nxt] if nxt is not None else 0)
    first = {cell: members[0].index for cell, members in cells.items()}
    return sorted(cells, key=lambda c: (-work[c], first[c]))


class _Driver:
    """Schedules the searches' trials as jobs; owns every decision, all made from the store.

    A *cell* is the searches of one (task, model, length) (its seeds). A cell is *ready* when
    it has unfinished searches and, with ``start = "previous"``, every search of the previous
    cell is done (a search with no trials then starts at the largest answer found there).
    With ``batch`` (the ensemble trainer) a ready cell with nothing queued or running forms its
    next trials all at once and groups those at the same width into one job (up to
    ``max_members`` trials), so which trials train together depends on the stored trials only,
    never on timing; otherwise every idle search forms its own one-trial job. Cells are served
    in :func:`_priority` order (most work left in their chain of lengths first).
    """

    def __init__(
        self,
        plans: list[SearchPlan],
        store: Store,
        progress: bool,
        batch: bool = False,
        max_members: int = 0,
    ) -> None:
        self.plans = plans
        self.store = store
        self.batch = batch
        self.max_members = max_members
        obs = store.observations()
        self.history: dict[str, list[Observation]] = {
            p.search_key: list(obs.get(p.search_key, [])) for p in plans
        }
        self.stored_keys = store.keys()
        self._plan = {p.search_key: p for p in plans}
        self.cells: dict[Cell, list[SearchPlan]] = {}
        for plan in plans:
            self.cells.setdefault(plan.cell, []).append(plan)
        self._order = _priority(self.cells)
        self.done: dict[str, Done] = {}
        self.in_flight: dict[str, TrialSpec] = {}  # search key -> its queued/running trial
        self.queue: deque[Job] = deque()  # formed, not yet submitted
        self.running: dict[int, set[str]] = {}  # job id -> trial keys not yet finished
        self._job_of: dict[str, int] = {}  # trial key -> job id
        self._next_job = 0
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

    def start_hint(self, plan: SearchPlan) -> tuple[bool, int | None]:
        """(ready, start width) of a search: the largest answer of the previous cell.

        Widths grow with N, so the previous cell's answers are (about) lower bounds of this
        one's; the largest of them skips the most failing probes. A censored seed counts as
        the grid's maximum.
        """
        previous = plan.previous_cell
        if previous is None or previous not in self.cells:
            return True, None
        answers = []
        for p in self.cells[previous]:
            done = self.done.get(p.search_key)
            if done is None:
                return False, None
            answers.append(done.width if done.width is not None else p.grid.maximum)
        return True, max(answers)

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

    def _advance(self, count: int) -> None:
        if self.bar is None:
            return
        self.bar.total = self.bar.n + count + self._estimate()
        self.bar.update(count)
        self._postfix()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ------------------------------------------------------------------ the loop
    def _trial(self, plan: SearchPlan, start: int | None) -> TrialSpec:
        key = plan.search_key
        step = next_probe(self.history[key], plan.grid, plan.reprobes, start)
        assert not isinstance(step, Done)  # _update marks finished searches
        trial = plan.trial(step.width, step.attempt)
        if trial.key in self.stored_keys:  # would mean the search rule is not a function
            raise RuntimeError(f"search asked again for stored trial {trial.describe()}")
        return trial

    def _form(self, cell: Cell) -> list[Job]:
        """The next jobs of a cell (none if it is not ready or, batching, still busy)."""
        members = [p for p in self.cells[cell] if p.search_key not in self.done]
        if not members:
            return []
        if self.batch and any(p.search_key in self.in_flight for p in members):
            return []
        ready, start = self.start_hint(members[0])
        if not ready:
            return []
        trials = [self._trial(p, start) for p in members if p.search_key not in self.in_flight]
        if not self.batch:
            return [(t,) for t in trials]
        groups: dict[str, list[TrialSpec]] = {}
        for t in trials:
            groups.setdefault(t.batch_key(), []).append(t)
        size = self.max_members or len(trials)
        return [tuple(g[i : i + size]) for g in groups.values() for i in range(0, len(g), size)]

    def _fill(self, pool: Executor) -> None:
        cells = iter(self._order)
        while len(self.running) < pool.slots:
            if not self.queue:
                for cell in cells:
                    jobs = self._form(cell)
                    if jobs:
                        for job in jobs:
                            for trial in job:
                                self.in_flight[trial.search_key] = trial
                        self.queue.extend(jobs)
                        break
                else:
                    return
            job = self.queue.popleft()
            pool.submit(job)
            job_id = self._next_job
            self._next_job += 1
            self.running[job_id] = {t.key for t in job}
            for trial in job:
                self._job_of[trial.key] = job_id

    def _finish(self, completed: list[Completed]) -> None:
        ok: list[tuple[TrialSpec, ProbeOutcome]] = []
        failed: Completed | None = None
        for c in completed:
            if c.error is not None:
                failed = failed or c
            else:
                assert c.outcome is not None
                ok.append((c.trial, c.outcome))
        if ok:  # a failing probe must not cost a finished trial its record
            self.store.record_many(ok)  # committed before the searches move on
        for trial, outcome in ok:
            self.stored_keys.add(trial.key)
            self.history[trial.search_key].append(
                Observation(trial.width, trial.attempt, outcome.reached)
            )
            del self.in_flight[trial.search_key]
            job_id = self._job_of.pop(trial.key)
            self.running[job_id].discard(trial.key)
            if not self.running[job_id]:
                del self.running[job_id]
            self._update(self._plan[trial.search_key])
        if ok:
            self._advance(len(ok))
        if failed is not None:
            trial, error = failed.trial, failed.error
            assert error is not None
            if error.user_error:
                raise UserError(f"{trial.describe()}: {error.message}")
            raise RuntimeError(
                f"{trial.describe()} failed: {error.kind}: {error.message}\n"
                f"--- probe traceback ---\n{error.traceback}"
            )

    def run(self, pool: Executor) -> None:
        self._open_bar()
        while True:
            self._fill(pool)
            self._postfix()
            if not self.running:
                if self.pending():  # cannot happen: the shortest cells wait for nothing
                    raise RuntimeError("searches left that no finished search can unblock")
                break
            self._finish(pool.wait())
