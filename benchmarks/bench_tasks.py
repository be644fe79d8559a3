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
    measure(benchmark, name, params, length, BATCH, floor)


def measure(benchmark, name, params, length, batch, floor) -> None:
    """Sample ``batch`` examples per round (the first round, untimed, builds any caches)."""
    task = tasks.make(name, **params)
    seeds = iter(range(10**9))
    benchmark.pedantic(
        lambda: task.sample(length, batch, seed=next(seeds)), rounds=8, warmup_rounds=1
    )
    rate = batch / benchmark.stats.stats.mean
    benchmark.extra_info["examples_per_s"] = round(rate)
    benchmark.extra_info["floor"] = floor
    print(f"\n{name} {params} N={length} batch={batch}: {rate:,.0f} examples/s (floor {floor})")


# wave 2, listops (tasks-wave2.md): (params, N, batch, floor in examples/s)
LISTOPS_CASES = [
    ({}, 100, 4096, 2_500),
    ({}, 1000, 256, 200),
    ({"balanced": True}, 100, 4096, None),
    ({"max_args": 10, "max_depth": 10}, 1000, 256, None),
]


@pytest.mark.parametrize(
    ("params", "length", "batch", "floor"),
    LISTOPS_CASES,
    ids=[
        f"listops-{'-'.join(f'{k}={v}' for k, v in p.items())}-N{N}" for p, N, _, _ in LISTOPS_CASES
    ],
)
def test_listops_generation_speed(benchmark, params, length, batch, floor) -> None:
    measure(benchmark, "listops", params, length, batch, floor)
