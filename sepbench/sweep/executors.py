"""Where probes run: in-process, a local process pool, or a Ray cluster.

Every executor has the same small interface, used only by the driver
(:func:`sepbench.sweep.runner.run_study`), which alone owns the results store:

* ``slots`` — how many trials may run at once;
* ``submit(trial)`` — start one probe;
* ``wait()`` — block until at least one probe finished, return the finished ones;
* ``close(cancel)`` — shut down (``cancel``: stop running probes, e.g. on Ctrl-C or an error).

Workers only compute: they receive a :class:`TrialSpec` and return a :class:`ProbeOutcome`
(or a :class:`ProbeError` describing an exception), never touching the store. Each worker runs
with ``threads`` intra-op threads (default 1: one trial per core).
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sepbench.errors import UserError
from sepbench.sweep.trial import ProbeOutcome, TrialSpec

ProbeFn = Callable[[TrialSpec], ProbeOutcome]

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


class Executor(Protocol):
    slots: int

    def submit(self, trial: TrialSpec) -> None: ...

    def wait(self) -> list[Completed]: ...

    def close(self, cancel: bool = False) -> None: ...


def _completed(trial: TrialSpec, result: ProbeOutcome | ProbeError) -> Completed:
    if isinstance(result, ProbeError):
        return Completed(trial, error=result)
    return Completed(trial, outcome=result)


class InlineExecutor:
    """Runs each probe in the calling process when the driver waits (debugging, tests)."""

    def __init__(self, probe: ProbeFn) -> None:
        self.slots = 1
        self._probe = probe
        self._queue: deque[TrialSpec] = deque()

    def submit(self, trial: TrialSpec) -> None:
        self._queue.append(trial)

    def wait(self) -> list[Completed]:
        trial = self._queue.popleft()
        return [_completed(trial, call_probe(self._probe, trial))]

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
        self._futures: dict[cf.Future[ProbeOutcome | ProbeError], TrialSpec] = {}

    def submit(self, trial: TrialSpec) -> None:
        future = self._pool.submit(call_probe, self._probe, trial)
        self._futures[future] = trial

    def wait(self) -> list[Completed]:
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            trial = self._futures.pop(future)
            try:
                result = future.result()
            except cf.process.BrokenProcessPool:
                raise RuntimeError(
                    f"a worker process died (killed, or out of memory?) while running "
                    f"{trial.describe()}; a script that calls run_study must guard its "
                    "top level with `if __name__ == '__main__':` (workers are spawned)"
                ) from None
            out.append(_completed(trial, result))
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
def _ray_call(probe: ProbeFn, trial: TrialSpec, threads: int) -> ProbeOutcome | ProbeError:
    _set_threads(threads)
    return call_probe(probe, trial)


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
        self._refs: dict[Any, TrialSpec] = {}

    def submit(self, trial: TrialSpec) -> None:
        ref = self._remote.remote(self._probe_ref, trial, self._threads)
        self._refs[ref] = trial

    def wait(self) -> list[Completed]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            trial = self._refs.pop(ref)
            try:
                result = self._ray.get(ref)
            except self._ray.exceptions.RayError as exc:
                raise RuntimeError(f"Ray failed to run {trial.describe()}: {exc}") from None
            out.append(_completed(trial, result))
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
