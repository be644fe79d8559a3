"""associative_recall and mqar: the promises of tasks.md beyond the generic contract."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks, testing
from sepbench.errors import UserError
from sepbench.tasks import IGNORE
from sepbench.tasks.base import sample_distinct

# ----------------------------------------------------------------------------- sample_distinct


@given(
    st.integers(1, 40),
    st.integers(0, 30),
    st.integers(0, 200),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_sample_distinct_rows_are_distinct_and_in_range(
    batch: int, count: int, extra: int, per_row: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    if per_row:
        universe: int | np.ndarray = count + rng.integers(0, extra + 1, size=batch)
    else:
        universe = count + extra
    out = sample_distinct(rng, batch, count, universe)
    assert out.shape == (batch, count) and out.dtype == np.int64
    high = np.broadcast_to(universe, (batch,))
    assert (out >= 0).all() and (out < high[:, None]).all()
    for row in out:
        assert len(set(row.tolist())) == count


@pytest.mark.parametrize(("count", "universe"), [(2, 3), (2, 5), (3, 9)])
def test_sample_distinct_is_uniform_over_ordered_tuples(count: int, universe: int) -> None:
    """Both regimes (dense: universe < 2·count; sparse: redraw repeats) are exactly uniform."""
    rows = 30_000
    out = sample_distinct(np.random.default_rng(1), rows, count, universe)
    freq = Counter(map(tuple, out.tolist()))
    support = list(itertools.permutations(range(universe), count))
    assert set(freq) == set(support)
    expected = rows / len(support)
    worst = max(abs(freq[t] - expected) for t in support)
    assert worst < 5 * np.sqrt(expected), (worst, expected)


def test_sample_distinct_per_row_universes_are_respected_and_uniform() -> None:
    high = np.array([3, 10] * 10_000)
    out = sample_distinct(np.random.default_rng(2), high.size, 2, high)
    small = out[high == 3]
    assert (small < 3).all() and (out[high == 10] < 10).all()
    counts = Counter(map(tuple, small.tolist()))
    assert len(counts) == 6 and min(counts.values()) > 10_000 / 6 * 0.9
    # the sparse rows reach the top of their own universe
    assert (out[high == 10] == 9).any()


def test_sample_distinct_rejects_too_small_universes() -> None:
    with pytest.raises(ValueError, match="distinct"):
        sample_distinct(np.random.default_rng(0), 4, 5, 4)


# ----------------------------------------------------------------------------- associative_recall


def _check_recall_rows(task: tasks.Task, batch: tasks.Batch, n: int) -> None:
    nk, nv = task.params["keys"], task.params["values"]
    for row in range(len(batch)):
        tokens = task.decode(batch.inputs[row])
        assert len(tokens) == 2 * n + 1
        keys, values, query = tokens[0 : 2 * n : 2], tokens[1 : 2 * n : 2], tokens[-1]
        assert all(k.startswith("k") and 0 <= int(k[1:]) < nk for k in keys)
        assert all(v.startswith("v") and 0 <= int(v[1:]) < nv for v in values)
        assert len(set(keys)) == n, "keys distinct within a line"
        assert keys.count(query) == 1
        answer = task.supervised_positions(batch, row)
        assert answer == [(2 * n, values[keys.index(query)])]


@settings(max_examples=30)
@given(testing.task_samples("associative_recall", max_batch=10))
def test_associative_recall_rows(case: testing.TaskSample) -> None:
    _check_recall_rows(case.task, case.batch, case.length)


@pytest.mark.parametrize(("n", "keys"), [(1024, 1024), (1024, 1500), (2048, 1 << 16)])
def test_associative_recall_long_lines(n: int, keys: int) -> None:
    task = tasks.make("associative_recall", keys=keys, values=7)
    batch = task.sample(n, 6, seed=3)
    _check_recall_rows(task, batch, n)


def test_associative_recall_query_index_and_keys_are_spread() -> None:
    task = tasks.make("associative_recall", keys=8)
    n = 8
    batch = task.sample(n, 4000, seed=0)
    keys = batch.inputs[:, 0 : 2 * n : 2]
    where = (keys == batch.inputs[:, -1:]).argmax(axis=1)
    counts = np.bincount(where, minlength=n)
    assert counts.min() > 4000 / n * 0.8, counts  # j uniform in 1..N
    # with keys = N every line is a permutation of the key vocabulary
    assert (np.sort(keys, axis=1) == np.arange(1, n + 1)).all()


def test_associative_recall_rejects_more_pairs_than_keys() -> None:
    task = tasks.make("associative_recall", keys=10)
    task.sample(10, 2, seed=0)
    with pytest.raises(UserError, match="keys"):
        task.sample(11, 2, seed=0)


# ----------------------------------------------------------------------------- mqar


def _check_mqar_batch(task: tasks.Task, batch: tasks.Batch, length: int) -> None:
    pairs, vocab = task.params["pairs"], task.params["vocab"]
    half = vocab // 2
    ctx = 2 * pairs
    assert batch.inputs.shape == (len(batch), length)
    assert (batch.lengths == length).all()
    first = (batch.targets != IGNORE).argmax(axis=1)
    assert (batch.prompt_lengths == first + 1).all() and (first >= ctx).all()
    assert (batch.inputs != task.pad_id).all()
    for row in range(len(batch)):
        ids = batch.inputs[row]
        keys, values = ids[0:ctx:2], ids[1:ctx:2]
        assert ((keys >= 1) & (keys < half)).all() and len(set(keys.tolist())) == pairs
        assert ((values >= half) & (values < vocab)).all() and len(set(values.tolist())) == pairs
        region = ids[ctx:]
        targets = batch.targets[row]
        assert (targets[:ctx] == IGNORE).all()
        supervised = set(np.flatnonzero(targets != IGNORE).tolist())
        query_positions = set()
        for key, value in zip(keys, values, strict=True):
            at = np.flatnonzero(region == key)
            assert at.size == 1, "every key is queried exactly once"
            assert at[0] % 2 == 0, "queries sit at even offsets of the query region"
            pos = ctx + int(at[0])
            assert targets[pos] == value
            query_positions.add(pos)
        assert supervised == query_positions, "targets only at query positions"
        unused = np.ones(region.size, dtype=bool)
        unused[[p - ctx for p in query_positions]] = False
        if not task.params["random_non_queries"]:
            assert (region[unused] == 0).all()
        assert not np.isin(region[unused], keys).any()


@settings(max_examples=40)
@given(testing.task_samples("mqar", max_batch=8))
def test_mqar_layout(case: testing.TaskSample) -> None:
    _check_mqar_batch(case.task, case.batch, case.length)


@pytest.mark.parametrize(("length", "pairs"), [(2048, 16), (2048, 512), (2047, 512), (1024, 64)])
def test_mqar_long_sequences(length: int, pairs: int) -> None:
    task = tasks.make("mqar", pairs=pairs)
    batch = task.sample(length, 4, seed=1)
    _check_mqar_batch(task, batch, length)
    tokens = task.decode(batch.inputs[0])
    assert task.solve(tokens) == task.supervised(batch, 0)


def test_mqar_smallest_length_fills_every_even_slot() -> None:
    task = tasks.make("mqar", pairs=5, vocab=64)
    for length in (19, 20):  # 4P − 1 (odd) and 4P (Zoology's bound)
        batch = task.sample(length, 16, seed=0)
        _check_mqar_batch(task, batch, length)
        sup = batch.targets[:, 10::2] != IGNORE
        assert sup.all()
    with pytest.raises(UserError, match="length"):
        task.sample(18, 2, seed=0)


def test_mqar_vocab_must_hold_the_keys() -> None:
    tasks.make("mqar", pairs=8, vocab=18)  # keys 1..8: exactly enough
    with pytest.raises(UserError, match="pairs"):
        tasks.make("mqar", pairs=8, vocab=17)


def test_mqar_power_a_must_be_positive_and_bounded() -> None:
    tasks.make("mqar", power_a=10)
    for bad in (0, -1, 10.5, "nan"):
        with pytest.raises(UserError, match="power_a"):
            tasks.make("mqar", power_a=bad)


def test_mqar_token_names_follow_zoology_ids() -> None:
    task = tasks.make("mqar", pairs=2, vocab=10)
    assert task.vocab == ("_", "k1", "k2", "k3", "k4", "v5", "v6", "v7", "v8", "v9", "<pad>")
    assert task.pad_id == 10


def test_mqar_random_non_queries_changes_the_unused_slots() -> None:
    plain = tasks.make("mqar", pairs=4, random_non_queries=False)
    noisy = tasks.make("mqar", pairs=4, random_non_queries=True)
    a, b = plain.sample(64, 200, seed=9), noisy.sample(64, 200, seed=9)
    unused = a.targets == IGNORE
    unused[:, :8] = False
    assert (a.inputs[unused] == 0).all()
    filled = b.inputs[(b.targets == IGNORE) & (np.arange(64) >= 8)]
    # uniform over 0 … V−1 minus the row's keys: zeros are rare, keys and values both occur
    assert (filled == 0).mean() < 0.01
    half = 4096
    assert 0.4 < ((filled >= 1) & (filled < half)).mean() < 0.6


def _gaps(task: tasks.Task, length: int, batch_size: int, seed: int) -> np.ndarray:
    """Query offsets / 2 (the drawn gaps), in context (= draw) order."""
    pairs = task.params["pairs"]
    batch = task.sample(length, batch_size, seed=seed)
    region = batch.inputs[:, 2 * pairs :]
    keys = batch.inputs[:, 0 : 2 * pairs : 2]
    return np.stack([(region == keys[:, [i]]).argmax(axis=1) // 2 for i in range(pairs)], axis=1)


def test_mqar_power_law_biases_queries_early() -> None:
    length, pairs, rows = 256, 4, 8192
    slots = (length - 2 * pairs) // 2
    biased = _gaps(tasks.make("mqar", pairs=pairs), length, rows, seed=4)
    flat = _gaps(tasks.make("mqar", pairs=pairs, power_a=1.0), length, rows, seed=4)
    assert abs(flat.mean() - (slots - 1) / 2) < 2.0  # power_a = 1: uniform offsets
    assert biased.mean() < 0.6 * flat.mean()
    # the first draw (the first key) has exactly P(g) ∝ (g + 1)^(a − 1)
    weights = np.arange(1, slots + 1) ** (0.01 - 1)
    p0 = weights[0] / weights.sum()
    freq0 = (biased[:, 0] == 0).mean()
    assert abs(freq0 - p0) < 4 * np.sqrt(p0 * (1 - p0) / rows), (freq0, p0)
    # later keys draw without replacement from what is left, so they sit later on average
    assert biased[:, 0].mean() < biased[:, -1].mean()
    # power_a > 1 biases toward late offsets
    late = _gaps(tasks.make("mqar", pairs=pairs, power_a=3.0), length, rows, seed=4)
    assert late.mean() > 1.2 * flat.mean()


def test_mqar_second_draw_is_without_replacement_and_reweighted() -> None:
    """P(g2 = 0) = Σ_{g≠0} p_g · p_0 / (1 − p_g): successive sampling, as numpy's choice."""
    length, pairs, rows = 24, 2, 40_000  # 10 slots
    gaps = _gaps(tasks.make("mqar", pairs=pairs, vocab=64, power_a=0.3), length, rows, seed=5)
    w = np.arange(1, 11) ** (0.3 - 1)
    p = w / w.sum()
    expected = sum(p[g] * p[0] / (1 - p[g]) for g in range(1, 10))
    got = (gaps[:, 1] == 0).mean()
    assert (gaps[:, 0] != gaps[:, 1]).all()
    assert abs(got - expected) < 4 * np.sqrt(expected * (1 - expected) / rows), (got, expected)


def test_mqar_default_speed_setting_layout() -> None:
    """The benchmark setting (L = 256, P = 16, V = 8192) on a batch big enough to exercise
    the redraw paths of the key and filler samplers."""
    task = tasks.make("mqar", pairs=16)
    batch = task.sample(256, 512, seed=0)
    _check_mqar_batch(task, batch, 256)


def test_mqar_same_tokens_as_targets_via_solve() -> None:
    task = tasks.make("mqar", pairs=3, vocab=16)
    batch = task.sample(12, 50, seed=2)
    for row in range(50):
        assert task.solve(task.decode(batch.inputs[row])) == task.supervised(batch, row)


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("name", "params", "length"),
    [("mqar", {"pairs": 4, "vocab": 1 << 18}, 64), ("associative_recall", {"keys": 1 << 18}, 32)],
)
def test_memory_does_not_scale_with_the_vocabulary(name: str, params: dict, length: int) -> None:
    task = tasks.make(name, **params)
    batch_size = 256  # a batch x vocabulary int64 table would be 512 MiB
    tracemalloc.start()
    try:
        task.sample(length, batch_size, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
