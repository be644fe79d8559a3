"""The main job's speed: trials per minute of the default study and the wall time of
`sepbench run` (real training; not part of the test suite — benchmarks/ is outside testpaths).

Run::

    pytest benchmarks/bench_main_job.py --benchmark-only -s            # --quick (~2 min)
    SEPBENCH_BENCH_FULL=1 pytest benchmarks/bench_main_job.py --benchmark-only -s   # + full

Each round runs ``sepbench run [--quick]`` end to end into a fresh directory (sweep with the
default local pool, constructive widths, report) and records: wall time, CPU time of the
process and its workers (user + sys), trials, jobs (ensembles), trials and jobs per minute,
and the load average before and after (the machine's other work inflates wall times: compare
CPU time across runs, wall time only on a quiet machine). The two-minute / ten-minute targets
of `sepbench run --quick` / `sepbench run` are for a quiet two-core machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sepbench.sweep import Store

FULL = os.environ.get("SEPBENCH_BENCH_FULL") == "1"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_main_job(quick: bool) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="bench-main-job-"))
    args = [sys.executable, "-m", "sepbench", "run", "--out", str(out), "--no-progress"]
    if quick:
        args.append("--quick")
    load_before = os.getloadavg()[0]
    cpu0, t0 = _cpu_children(), time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    name = "index_lookup-quick" if quick else "index_lookup"
    with Store.open(out / name / f"{name}.sqlite") as store:
        records = store.records()
    # one job = the trials trained together (same cell, width and ensemble membership)
    jobs = {
        (r.model, r.length, r.width, json.dumps(r.outcome["details"].get("ensemble", r.key)))
        for r in records
    }
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "trials": len(records),
        "jobs": len(jobs),
        "trials_per_min": len(records) / wall * 60,
        "jobs_per_min": len(jobs) / wall * 60,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


@pytest.mark.parametrize(
    "quick",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.skipif(not FULL, reason="set SEPBENCH_BENCH_FULL=1 (~10 min)"),
        ),
    ],
    ids=["quick", "full"],
)
def test_main_job_wall_time(benchmark, quick: bool) -> None:
    result = benchmark.pedantic(_run_main_job, args=(quick,), rounds=1, warmup_rounds=0)
    benchmark.extra_info.update({k: round(v, 2) for k, v in result.items()})
    target = 120 if quick else 600
    print(
        f"\nsepbench run{' --quick' if quick else ''}: {result['wall_s']:.0f} s wall "
        f"(target {target} s on a quiet 2-core machine), {result['cpu_s']:.0f} s CPU, "
        f"{result['trials']:.0f} trials in {result['jobs']:.0f} jobs: "
        f"{result['trials_per_min']:.1f} trials/min, {result['jobs_per_min']:.1f} jobs/min; "
        f"load {result['load_before']:.1f} -> {result['load_after']:.1f}"
    )
