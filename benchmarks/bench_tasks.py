"""Generation speed: the floors of tasks.md, one process, one thread.

Run: ``pytest benchmarks/bench_tasks.py --benchmark-only``. Each benchmark samples one batch of
``BATCH`` examples (``SMALL_BATCH`` for the long rows); examples/s = batch / mean time,
printed in ``extra_info`` and in the summary line this module adds at the end.
"""

from __future__ import annotations

import pytest

from sepbench import tasks

BATCH = 4096

# (task, params, N, floor in examples/s) — the table of tasks.md, plus the rest of the first wave
CASES = [
    ("mqar", {"pairs": 16, "vocab": 8192}, 256, 100_000),
    ("index_lookup", {"alphabet": 64}, 256, 200_000),
    ("dyck", {"types": 2, "depth": 2}, 256, 50_000),
    ("is_tree", {"trace": "cot"}, 32, 25_000),
    ("is_tree", {"trace": "retrieval"}, 32, 10_000),
    ("is_tree", {"trace": "none"}, 32, None),
    ("is_tree", {"trace": "cot", "graph": "random"}, 32, None),
    ("dyck_next", {"types": 2, "depth": 2}, 256, None),
    ("associative_recall", {"keys": 512}, 256, None),
    ("string_equality", {"negatives": "mixed"}, 256, None),
    ("disjointness", {}, 256, None),
    ("nearest_neighbor", {"bits": 10}, 256, None),
    # tasks-wave2.md
    ("passkey", {"filler_mode": "pattern"}, 1024, 50_000),
    ("passkey", {"filler_mode": "random"}, 1024, 50_000),
    ("addition", {"order": "lsb"}, 8, 1_000_000),
    ("addition", {"index_hints": True}, 32, 150_000),
    ("addition", {"long_carries": 0.5}, 32, None),
    ("prefix_sums", {}, 32, 500_000),
    ("prefix_sums", {}, 256, 100_000),
    ("listops", {}, 100, 2_500),
    ("listops", {"balanced": True}, 100, None),
]

SMALL_BATCH = 256
# long rows, sampled SMALL_BATCH at a time (the batch column of tasks-wave2.md)
SMALL_BATCH_CASES = [
    ("passkey", {"filler_mode": "pattern"}, 8192, 5_000),
    ("passkey", {"filler_mode": "random"}, 8192, 5_000),
    ("listops", {}, 1000, 200),
    ("listops", {"max_args": 10, "max_depth": 10}, 1000, None),
]
ALL_CASES = [(*c, BATCH) for c in CASES] + [(*c, SMALL_BATCH) for c in SMALL_BATCH_CASES]


@pytest.mark.parametrize(
    ("name", "params", "length", "floor", "batch"),
    ALL_CASES,
    ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}-N{N}" for n, p, N, *_ in ALL_CASES],
)
def test_generation_speed(benchmark, name, params, length, floor, batch) -> None:
    task = tasks.make(name, **params)
    seeds = iter(range(10**9))
    benchmark.pedantic(
        lambda: task.sample(length, batch, seed=next(seeds)), rounds=8, warmup_rounds=1
    )
    rate = batch / benchmark.stats.stats.mean
    benchmark.extra_info["examples_per_s"] = round(rate)
    benchmark.extra_info["floor"] = floor
    benchmark.extra_info["batch"] = batch
    print(f"\n{name} {params} N={length} B={batch}: {rate:,.0f} examples/s (floor {floor})")
