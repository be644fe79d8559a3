"""Generation speed: the floors of tasks.md, one process, one thread.

Run: ``pytest benchmarks/bench_tasks.py --benchmark-only``. Each benchmark samples one batch of
``BATCH`` examples; examples/s = BATCH / mean time, printed in ``extra_info`` and in the
summary line this module adds at the end.
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
]


@pytest.mark.parametrize(
    ("name", "params", "length", "floor"),
    CASES,
    ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}-N{N}" for n, p, N, _ in CASES],
)
def test_generation_speed(benchmark, name, params, length, floor) -> None:
    task = tasks.make(name, **params)
    seeds = iter(range(10**9))
    benchmark.pedantic(
        lambda: task.sample(length, BATCH, seed=next(seeds)), rounds=8, warmup_rounds=1
    )
    rate = BATCH / benchmark.stats.stats.mean
    benchmark.extra_info["examples_per_s"] = round(rate)
    benchmark.extra_info["floor"] = floor
    print(f"\n{name} {params} N={length}: {rate:,.0f} examples/s (floor {floor})")
