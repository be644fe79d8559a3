"""Sweep overhead: how many trials per minute the driver, executors and store sustain.

Run: ``pytest benchmarks/bench_sweep.py --benchmark-only -s``. The probe is the deterministic
:class:`~sepbench.sweep.FakeProbe` (no training), so these figures are the *ceiling* the
sweep machinery puts on a study — search decisions, one durable SQLite commit per trial, and
(for the pool) a round trip to a worker process. A real trial trains for seconds to minutes,
so the machinery must stay far above ~60 trials/min per core to be invisible.

``test_parallel_efficiency`` uses a probe that sleeps 50 ms: with W workers the ideal is W×
the serial rate; the ratio printed is how much of it the driver delivers.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest

from sepbench.sweep import FakeProbe, ProbeOutcome, Store, StudySpec, plan_study, run_study

SPEC = StudySpec.from_dict(
    {
        "name": "bench",
        "lengths": [4, 8, 16, 32, 64],
        "seeds": 4,
        "threshold": 0.9,
        "tasks": [{"name": "index_lookup"}],
        "models": [{"family": "lstm"}, {"family": "tf"}],
        "budget": {"steps": 1, "batch_size": 1, "lr": 1.0},
        "width": {"min": 1, "max": 1024},
    }
)
PROBE = FakeProbe(law="linear", coef={"lstm": 3.0, "tf": 1.5})
_counter = itertools.count()


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-sweep-")) / f"s{next(_counter)}.sqlite"


def _run(executor: str, workers: int, probe: FakeProbe = PROBE) -> int:
    summary = run_study(
        SPEC, store=_fresh(), executor=executor, workers=workers, probe=probe, progress=False
    )
    return summary.trials


@pytest.mark.parametrize(("executor", "workers"), [("inline", 1), ("local", 2)])
def test_trials_per_minute(benchmark, executor: str, workers: int) -> None:
    trials = benchmark.pedantic(_run, args=(executor, workers), rounds=3, warmup_rounds=0)
    rate = trials / benchmark.stats.stats.mean * 60
    benchmark.extra_info["trials"] = trials
    benchmark.extra_info["trials_per_min"] = round(rate)
    print(f"\n{executor} x{workers}: {trials} trials, {rate:,.0f} trials/min (incl. pool start)")


def test_store_commits_per_second(benchmark) -> None:
    plan = plan_study(SPEC)[0]
    trials = [plan.trial(w) for w in range(1, 201)]
    outcome = ProbeOutcome(True, 1.0, 10, 0.1, {"history": [{"step": 1, "acc": 0.5}] * 20})

    def write() -> None:
        with Store.for_study(_fresh(), SPEC) as store:
            for t in trials:
                store.record(t, outcome)

    benchmark.pedantic(write, rounds=3)
    rate = len(trials) / benchmark.stats.stats.mean
    benchmark.extra_info["commits_per_s"] = round(rate)
    print(f"\nstore: {rate:,.0f} durable commits/s")


def test_parallel_efficiency(benchmark) -> None:
    slow = FakeProbe(law="linear", coef={"lstm": 3.0, "tf": 1.5}, delay=0.05)
    small = SPEC.model_copy(update={"lengths": [4, 8], "seeds": [0, 1]})

    def run(workers: int) -> float:
        summary = run_study(
            small, store=_fresh(), executor="local", workers=workers, probe=slow, progress=False
        )
        return summary.trials / summary.wall_s

    serial = run(1)
    parallel = benchmark.pedantic(run, args=(2,), rounds=1)
    benchmark.extra_info["efficiency_2_workers"] = round(parallel / (2 * serial), 2)
    print(f"\n2 workers: {parallel / serial:.2f}x the 1-worker rate (ideal 2x)")
