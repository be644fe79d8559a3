"""Where probes run: in-process, a local process pool, or a Ray cluster.

Every executor has the same small interface, used only by the driver
(:func:`sepbench.sweep.runner.run_study`), which alone owns the results store:

* ``slots`` — how many jobs may run at once;
* ``submit(job)`` — start one job: a trial, or a tuple of trials that the probe's
  ``batch(trials)`` runs together (an ensemble);
* ``wait()`` — block until at least one job finished, return its trials' outcomes;
* ``close(cancel)`` — shut down (``cancel``: stop running probes, e.g. on Ctrl-C or an error).

Workers only compute: they receive :class:`TrialSpec` s and return :class:`ProbeOutcome` s
(or a :class:`ProbeError` describing an exception), never touching the store. Each worker runs
with ``threads`` intra-op threads (default 1: one job per core).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sepbench.errors import UserError
from sepbench.sweep.trial import ProbeOutcome, TrialSpec

ProbeFn = Callable[[TrialSpec], ProbeOutcome]
Job = tuple[TrialSpec, ...]
"""Trials run together by one probe call (one trial, or an ensemble via ``probe.batch``)."""

_THREADS: int | None = None


def worker_threads() -> int | None:
    """The intra-op thread count this worker process was given (None outside a worker)."""
    return _THREADS


def _set_threads(threads: int) -> None:
    global _THREADS
    _THREADS = threads
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:  # already imported (e.g. by a previous trial): apply now
        torch: Any = sys.modules["torch"]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@dataclass(frozen=True)
class ProbeError:
    """An exception raised by a probe, made safe to send between processes."""

    kind: str
    message: str
    traceback: str
    user_error: bool


@dataclass
class Completed:
    """A finished probe: exactly one of ``outcome`` and ``error`` is set."""

    trial: TrialSpec
    outcome: ProbeOutcome | None = None
    error: ProbeError | None = None


def call_probe(probe: ProbeFn, trial: TrialSpec) -> ProbeOutcome | ProbeError:
    """Run one probe, timing it and turning any exception into a :class:`ProbeError`."""
    start = time.perf_counter()
    try:
        outcome = probe(trial)
        if not isinstance(outcome, ProbeOutcome):
            raise TypeError(f"a probe must return a ProbeOutcome, got {type(outcome).__name__}")
    except Exception as exc:
        return ProbeError(
            kind=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(),
            user_error=isinstance(exc, UserError),
        )
    if not outcome.wall_s:
        outcome = replace(outcome, wall_s=time.perf_counter() - start)
    return outcome


def call_job(probe: ProbeFn, job: Job) -> list[ProbeOutcome | ProbeError]:
    """Run one job: ``probe(trial)`` for a single trial, ``probe.batch(trials)`` for several.

    An exception in a batch becomes the same :class:`ProbeError` for each of its trials.
    """
    if len(job) == 1:
        return [call_probe(probe, job[0])]
    start = time.perf_counter()
    try:
        batch = getattr(probe, "batch", None)
        if not callable(batch):
            raise TypeError(f"{type(probe).__name__} cannot run trials together (no batch())")
        outcomes = list(batch(list(job)))
        if len(outcomes) != len(job) or not all(isinstance(o, ProbeOutcome) for o in outcomes):
            raise TypeError(f"batch() must return {len(job)} ProbeOutcomes, got {outcomes!r}")
    except Exception as exc:
        error = ProbeError(
            kind=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(),
            user_error=isinstance(exc, UserError),
        )
        return [error] * len(job)
    wall = time.perf_counter() - start
    return [o if o.wall_s else replace(o, wall_s=wall) for o in outcomes]


def as_job(trials: TrialSpec | Sequence[TrialSpec]) -> Job:
    job = (trials,) if isinstance(trials, TrialSpec) else tuple(trials)
    if not job:
        raise ValueError("a job needs at least one trial")
    return job


class Executor(Protocol):
    slots: int

    def submit(self, trials: TrialSpec | Sequence[TrialSpec]) -> None: ...

    def wait(self) -> list[Completed]: ...

    def close(self, cancel: bool = False) -> None: ...


def _completed(trial: TrialSpec, result: ProbeOutcome | ProbeError) -> Completed:
    if isinstance(result, ProbeError):
        return Completed(trial, error=result)
    return Completed(trial, outcome=result)


def _job_completed(job: Job, results: Sequence[ProbeOutcome | ProbeError]) -> list[Completed]:
    return [_completed(t, r) for t, r in zip(job, results, strict=True)]


class InlineExecutor:
    """Runs each job in the calling process when the driver waits (debugging, tests)."""

    def __init__(self, probe: ProbeFn) -> None:
        self.slots = 1
        self._probe = probe
        self._queue: deque[Job] = deque()

    def submit(self, trials: TrialSpec | Sequence[TrialSpec]) -> None:
        self._queue.append(as_job(trials))

    def wait(self) -> list[Completed]:
        job = self._queue.popleft()
        return _job_completed(job, call_job(self._probe, job))

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


# ---------------------------------------------------------------------- local process pool
def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:  # the driver died (kill -9): do not linger
            os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    _set_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class LocalExecutor:
    """A pool of ``workers`` fresh processes (``spawn``), ``threads`` threads each.

    ``spawn`` rather than ``fork``: the driver may have torch (and its thread pools) loaded,
    which is unsafe to fork. Workers exit on their own if the driver dies.
    """

    def __init__(self, probe: ProbeFn, workers: int = 0, threads: int = 1) -> None:
        self.slots = workers or max(1, (os.cpu_count() or 1) // threads)
        self._probe = probe
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads, os.getpid()),
        )
        self._futures: dict[cf.Future[list[ProbeOutcome | ProbeError]], Job] = {}

    def submit(self, trials: TrialSpec | Sequence[TrialSpec]) -> None:
        job = as_job(trials)
        future = self._pool.submit(call_job, self._probe, job)
        self._futures[future] = job

    def wait(self) -> list[Completed]:
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            job = self._futures.pop(future)
            try:
                results = future.result()
            except cf.process.BrokenProcessPool:
                raise RuntimeError(
                    f"a worker process died (killed, or out of memory?) while running "
                    f"{job[0].describe()}; a script that calls run_study must guard its "
                    "top level with `if __name__ == '__main__':` (workers are spawned)"
                ) from None
            out += _job_completed(job, results)
        return out

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for future in self._futures:
                future.cancel()
            processes = getattr(self._pool, "_processes", None) or {}
            for proc in list(processes.values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        self._futures.clear()


# ---------------------------------------------------------------------- Ray
def _ray_call(probe: ProbeFn, job: Job, threads: int) -> list[ProbeOutcome | ProbeError]:
    _set_threads(threads)
    return call_job(probe, job)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(
            "the Ray executor needs Ray, an optional extra: pip install 'sepbench[ray]'"
        ) from None
    return ray


class RayExecutor:
    """Probes as Ray tasks (``num_cpus = threads`` each); the driver still owns the store.

    Connects to ``address`` (or starts a local Ray instance with ``workers`` CPUs) unless Ray is
    already initialised in this process, in which case that instance is used and left running.
    """

    def __init__(
        self, probe: ProbeFn, workers: int = 0, threads: int = 1, address: str | None = None
    ) -> None:
        ray = _import_ray()
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            env = {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            kwargs: dict[str, Any] = {
                "address": address,
                "runtime_env": {"env_vars": env},
                "include_dashboard": False,
                "log_to_driver": True,
            }
            if address is None and workers:
                kwargs["num_cpus"] = workers * threads
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise UserError(f"cannot connect to Ray at {address!r}: {exc}") from None
            self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = workers or max(1, cpus // threads)
        self._threads = threads
        self._remote = ray.remote(num_cpus=threads, max_retries=0)(_ray_call)
        self._probe_ref = ray.put(probe)
        self._refs: dict[Any, Job] = {}

    def submit(self, trials: TrialSpec | Sequence[TrialSpec]) -> None:
        job = as_job(trials)
        ref = self._remote.remote(self._probe_ref, job, self._threads)
        self._refs[ref] = job

    def wait(self) -> list[Completed]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                results = self._ray.get(ref)
            except self._ray.exceptions.RayError as exc:
                raise RuntimeError(f"Ray failed to run {job[0].describe()}: {exc}") from None
            out += _job_completed(job, results)
        return out

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                with contextlib.suppress(Exception):
                    self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns:
            self._ray.shutdown()


def make_executor(
    kind: str, probe: ProbeFn, workers: int = 0, threads: int = 1, address: str | None = None
) -> Executor:
    """The executor named ``kind`` (``local``, ``ray`` or ``inline``)."""
    if kind == "local":
        return LocalExecutor(probe, workers, threads)
    if kind == "ray":
        return RayExecutor(probe, workers, threads, address)
    if kind == "inline":
        return InlineExecutor(probe)
    raise UserError(f"unknown executor '{kind}'; known: local, ray, inline")
