"""nearest_neighbor: the promises of tasks.md beyond the generic contract."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings

from sepbench import tasks, testing
from sepbench.errors import UserError


def parse(task: tasks.Task, batch: tasks.Batch, row: int) -> tuple[list[int], list[int], int]:
    """(point codes, label indices, query code) of one row, from the token strings."""
    tokens = task.decode(batch.inputs[row])
    points = [int(t[1:]) for t in tokens[0:-1:2]]
    labels = [int(t[1:]) for t in tokens[1:-1:2]]
    assert all(t.startswith("p") for t in tokens[0:-1:2]) and tokens[-1].startswith("p")
    assert all(t.startswith("y") for t in tokens[1:-1:2])
    return points, labels, int(tokens[-1][1:])


def check_rows(task: tasks.Task, batch: tasks.Batch, n: int) -> None:
    bits, nl = task.params["bits"], task.params["labels"]
    popcount = np.array([bin(v).count("1") for v in range(1 << bits)])
    for row in range(len(batch)):
        points, labels, query = parse(task, batch, row)
        assert len(points) == n
        assert len(set(points)) == n, "points distinct"
        assert query not in points, "query not among the points"
        assert all(0 <= c < 1 << bits for c in [*points, query])
        assert all(0 <= lab < nl for lab in labels)
        dist = popcount[np.asarray(points) ^ query]
        nearest = np.flatnonzero(dist == dist.min())
        assert nearest.size == 1, "unique nearest point"
        assert task.supervised(batch, row) == [f"y{labels[nearest[0]]}"]


@settings(max_examples=40)
@given(testing.task_samples("nearest_neighbor", max_batch=10))
def test_nearest_neighbor_rows(case: testing.TaskSample) -> None:
    check_rows(case.task, case.batch, case.length)


@pytest.mark.parametrize(("bits", "n"), [(12, 1024), (11, 2000), (16, 1024), (4, 12), (1, 1)])
def test_nearest_neighbor_long_and_dense(bits: int, n: int) -> None:
    task = tasks.make("nearest_neighbor", bits=bits, labels=3)
    batch = task.sample(n, 5, seed=7)
    assert batch.inputs.shape == (5, 2 * n + 1)
    check_rows(task, batch, n)


def test_densest_case_leaves_exactly_the_query_and_b_minus_1_neighbours_out() -> None:
    bits = 4
    task = tasks.make("nearest_neighbor", bits=bits)
    n = (1 << bits) - bits
    batch = task.sample(n, 30, seed=1)
    for row in range(30):
        points, _, query = parse(task, batch, row)
        neighbours = {query ^ (1 << i) for i in range(bits)}
        assert len(neighbours & set(points)) == 1
        assert set(range(1 << bits)) - set(points) - {query} < neighbours


def test_too_many_points_is_a_clear_error() -> None:
    task = tasks.make("nearest_neighbor", bits=3)
    task.sample(5, 2, seed=0)
    for n in (6, 7, 8, 9, 100):
        with pytest.raises(UserError, match="length"):
            task.sample(n, 2, seed=0)
    with pytest.raises(UserError, match=r"2\^bits = 256"):
        tasks.make("nearest_neighbor").sample(256, 2, seed=0)
    with pytest.raises(UserError, match="bits"):
        tasks.make("nearest_neighbor", bits=17)
    with pytest.raises(UserError, match="labels"):
        tasks.make("nearest_neighbor", labels=1)


def valid_configurations(bits: int, n: int) -> list[frozenset[int]]:
    """Every set of n points, relative to the query (p ⊕ q), with a unique nearest point."""
    weight = [bin(v).count("1") for v in range(1 << bits)]
    out = []
    for points in itertools.combinations(range(1, 1 << bits), n):
        ws = sorted(weight[p] for p in points)
        if len(ws) == 1 or ws[0] < ws[1]:
            out.append(frozenset(points))
    return out


@pytest.mark.parametrize(("bits", "n"), [(3, 1), (3, 2), (3, 4), (4, 10)])
def test_distribution_equals_redrawing_until_unique(bits: int, n: int) -> None:
    """Uniform over valid (points, query): every valid relative point set equally likely, and
    the query uniform — what drawing and redrawing failed rows would give."""
    support = valid_configurations(bits, n)
    rows = 160 * len(support)
    task = tasks.make("nearest_neighbor", bits=bits)
    batch = task.sample(n, rows, seed=3)
    p0 = task.token_to_id["p0"]
    points, query = batch.inputs[:, 0 : 2 * n : 2] - p0, batch.inputs[:, -1] - p0
    relative = np.sort(points ^ query[:, None], axis=1)
    seen = Counter(frozenset(r) for r in relative.tolist())
    queries = Counter(query.tolist())
    assert set(seen) == set(support)
    expected = rows / len(support)
    assert max(abs(v - expected) for v in seen.values()) < 5 * np.sqrt(expected), seen
    q_expected = rows / (1 << bits)
    assert max(abs(v - q_expected) for v in queries.values()) < 5 * np.sqrt(q_expected)


def test_labels_are_uniform_and_the_answer_position_is_uniform() -> None:
    task = tasks.make("nearest_neighbor", labels=4)
    n, rows = 8, 8000
    batch = task.sample(n, rows, seed=4)
    labels = batch.inputs[:, 1 : 2 * n : 2] - task.token_to_id["y0"]
    assert abs(np.bincount(labels.ravel(), minlength=4) / labels.size - 0.25).max() < 0.01
    where = []
    for row in range(500):
        points, _, query = parse(task, batch, row)
        d = [bin(p ^ query).count("1") for p in points]
        where.append(int(np.argmin(d)))
    assert len(set(where)) == n


def test_memory_does_not_scale_with_the_code_space() -> None:
    task = tasks.make("nearest_neighbor", bits=16)
    tracemalloc.start()
    try:
        task.sample(16, 512, seed=0)  # a batch x 2^16 int64 table would be 256 MiB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
