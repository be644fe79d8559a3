"""Training speed: optimiser steps per second per family and width, and the ensemble speed-up.

Run: ``pytest benchmarks/bench_training.py --benchmark-only -s``. Not part of the test suite.

* ``test_steps_per_second[family-width]`` — ``training.fit`` for ``STEPS`` steps on
  index_lookup (N = 32, batch 64; evaluation pushed past the budget, a 1-example confirmation),
  so the figure is the real training loop: data, forward, masked loss, backward, clipping,
  AdamW. Reported in ``extra_info["steps_per_s"]``.
* ``test_ensemble_speedup[workload-family-width]`` — 8 seeds trained as one ensemble
  vs 8 sequential ``fit`` calls (each with its own build), same steps;
  ``extra_info["speedup"]``. Two workloads: ``small`` (N = 16, batch 16: a step is mostly
  dispatch overhead, which the ensemble shares — the target is >= 3x at width <= 32 here) and
  ``default`` (N = 32, batch 64: on a small CPU even width 8 is arithmetic-bound, and batching
  the members cannot remove arithmetic).

The conftest pins one intra-op thread (OMP_NUM_THREADS=1); the trainer's own choice
(``auto_threads``) is 1 thread for all of these sizes anyway.
"""

from __future__ import annotations

import time

import pytest

from sepbench import models, tasks, training

FAMILIES = ["elman", "lstm", "gru", "ssm", "transformer", "hybrid", "rag"]
WIDTHS = [8, 32, 128]
STEPS = 50
SEEDS = list(range(8))
WORKLOADS = {"small": (16, 16), "default": (32, 64)}  # (N, batch size)


def _budget(steps: int, batch: int) -> training.Budget:
    return training.Budget(
        max_steps=steps, batch_size=batch, warmup=10, eval_every=10**9, confirm_batch=1
    )


TASK = tasks.make("index_lookup", alphabet=8, max_length=32)


def _fit(family: str, width: int, seed: int, steps: int, length: int = 32, batch: int = 64):
    model = models.build(family, len(TASK.vocab), width, seed=seed)
    return training.fit(model, TASK, length, _budget(steps, batch), seed=seed, threshold=1.0)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("family", FAMILIES)
def test_steps_per_second(benchmark, family: str, width: int) -> None:
    _fit(family, width, 0, 5)  # warm-up: allocator, kernels, lazy imports
    benchmark.pedantic(lambda: _fit(family, width, 0, STEPS), rounds=3, warmup_rounds=0)
    rate = STEPS / benchmark.stats.stats.min
    benchmark.extra_info["steps_per_s"] = round(rate, 1)
    print(f"\n{family:<12} width {width:>4}: {rate:8.1f} steps/s")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("family", ["lstm", "gru", "transformer"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_ensemble_speedup(benchmark, workload: str, family: str, width: int) -> None:
    length, batch = WORKLOADS[workload]
    _fit(family, width, 0, 5, length, batch)

    def sequential() -> float:
        start = time.perf_counter()
        for s in SEEDS:
            _fit(family, width, s, STEPS, length, batch)
        return time.perf_counter() - start

    def ensemble() -> None:
        ensemble = models.build_ensemble(family, len(TASK.vocab), width, SEEDS)
        training.train(ensemble, TASK, length, _budget(STEPS, batch), SEEDS, threshold=1.0)

    seq = min(sequential() for _ in range(2))
    benchmark.pedantic(ensemble, rounds=2, warmup_rounds=1)
    ens = benchmark.stats.stats.min
    speedup = seq / ens
    benchmark.extra_info.update(sequential_s=round(seq, 3), ensemble_s=round(ens, 3))
    benchmark.extra_info["speedup"] = round(speedup, 2)
    print(
        f"\n{workload:<8} {family:<12} width {width:>4}: 8 sequential {seq:6.2f} s, "
        f"ensemble {ens:6.2f} s, speed-up {speedup:4.1f}x"
    )
