"""Speed of the construction machinery: building, verifying, simulated precision, width search.

Run: ``pytest benchmarks/bench_constructions.py --benchmark-only``. One torch thread (on a
busy 2-core machine OpenMP spinning makes small ops far slower with two). Rows/s and the
cost of a simulated-precision pass relative to float64 are printed and stored in
``extra_info``; nothing is asserted about speed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from sepbench import constructions
from sepbench.constructions import curves
from sepbench.constructions import verify as V

ROWS = 64


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CASES = [
    ("index_lookup_1layer", 256, {"addr_dim": 32}),
    ("index_lookup_1layer", 2048, {"addr_dim": 32, "max_length": 2048}),
    ("string_equality_2layer", 256, {"addr_dim": 32}),
    ("disjointness_2layer", 256, {"addr_dim": 32}),
    ("nearest_neighbor_2layer", 256, {"addr_dim": 32}),
    ("associative_recall_2layer", 256, {"addr_dim": 32}),
]


@pytest.mark.parametrize(
    ("name", "length", "params"), CASES, ids=[f"{c[0]}-N{c[1]}" for c in CASES]
)
def test_build(benchmark, name: str, length: int, params: dict) -> None:
    benchmark.pedantic(
        lambda: constructions.get(name).build(length, **params), rounds=3, warmup_rounds=1
    )


@pytest.mark.parametrize(
    ("name", "length", "params"), CASES, ids=[f"{c[0]}-N{c[1]}" for c in CASES]
)
def test_verify_rows_per_second(benchmark, name: str, length: int, params: dict) -> None:
    hb = constructions.get(name).build(length, **params)
    rows = ROWS if length <= 512 else 8
    benchmark.pedantic(
        lambda: V.check(hb, samples=rows, hard_limit=0, exhaustive_limit=0), rounds=3
    )
    rate = rows / benchmark.stats.stats.mean
    benchmark.extra_info["rows_per_s"] = round(rate, 1)
    print(f"\n{name} N={length} width {hb.width}: {rate:,.1f} rows/s (float64)")


@pytest.mark.parametrize("fixed", [False, True], ids=["mantissa", "fixed"])
def test_simulated_precision_slowdown(benchmark, fixed: bool) -> None:
    hb = constructions.get("string_equality_2layer").build(128, addr_dim=32)
    args: dict[str, Any] = {"samples": 32, "hard_limit": 0, "exhaustive_limit": 0}
    start = time.perf_counter()
    V.check(hb, **args)
    plain = time.perf_counter() - start
    benchmark.pedantic(lambda: V.check(hb, bits=12, fixed=fixed, **args), rounds=3)
    slowdown = benchmark.stats.stats.mean / plain
    benchmark.extra_info["slowdown_vs_float64"] = round(slowdown, 1)
    print(f"\nsimulated {'fixed' if fixed else 'mantissa'} precision: {slowdown:.1f}x float64")


def test_width_search(benchmark) -> None:
    point = benchmark.pedantic(
        lambda: curves.smallest_knob("index_lookup_1layer", 256), rounds=1, iterations=1
    )
    benchmark.extra_info["knob"] = point.knob
    benchmark.extra_info["probes"] = len(point.probes)
    print(f"\nwidth search N=256: addr_dim {point.knob} after {len(point.probes)} probes")


@pytest.mark.parametrize("length", [1024, 4096])
def test_every_position_context_vs_full_rows(benchmark, length: int) -> None:
    """One shared-prefix context (a query at each of the N positions) against the cost of
    the N full rows it replaces (estimated from 2 full rows), at the accepted address width."""
    from sepbench.constructions.shared_prefix import last_logits

    c = constructions.get("index_lookup_1layer")
    assert c.admissible is not None
    hb = c.build(length, addr_dim=c.admissible(length, 1), max_length=length)
    ctx = V.EVERY_POSITION["index_lookup"](hb.task, length, np.random.default_rng(0))
    assert isinstance(ctx, V.Context)
    rows = np.concatenate([np.repeat(ctx.prefix[None], 2, 0), ctx.finals[:2, None]], axis=1)
    start = time.perf_counter()
    with torch.no_grad():
        hb.module(torch.from_numpy(rows))
    full = (time.perf_counter() - start) / 2 * length
    benchmark.pedantic(lambda: last_logits(hb.module, ctx.prefix, ctx.finals), rounds=1)
    shared = benchmark.stats.stats.mean
    benchmark.extra_info["speedup_vs_full_rows"] = round(full / shared, 1)
    print(f"\nN={length}: {length} queries in {shared:.1f} s shared vs ~{full:.0f} s as full rows")
