"""string_equality and disjointness: the promises of tasks.md beyond the generic contract."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks
from sepbench.errors import UserError


def halves(task: tasks.Task, batch: tasks.Batch, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The two halves as symbol indices (s{i} / b{i} -> i), shape [B, N] each."""
    assert (batch.inputs[:, n] == task.token_to_id["|"]).all()
    return batch.inputs[:, :n] - 1, batch.inputs[:, n + 1 :] - 1


def answers(task: tasks.Task, batch: tasks.Batch) -> list[str]:
    return [task.supervised(batch, r)[0] for r in range(len(batch))]


# ----------------------------------------------------------------------------- string equality


def check_negative(kind: str, x: np.ndarray, y: np.ndarray) -> None:
    diff = np.flatnonzero(x != y)
    if kind == "random":
        assert diff.size >= 1
    elif kind == "one":
        assert diff.size == 1
    else:
        assert diff.size == 2, "a swap changes exactly two positions"
        i, j = diff
        assert x[i] != x[j] and y[i] == x[j] and y[j] == x[i]
        assert sorted(x.tolist()) == sorted(y.tolist()), "a swap keeps the multiset"


@settings(max_examples=40)
@given(
    st.sampled_from(["random", "one", "swap"]),
    st.integers(2, 5),
    st.integers(1, 20),
    st.integers(1, 24),
    st.integers(0, 2**31 - 1),
)
def test_string_equality_negatives_follow_their_rule(
    kind: str, k: int, n: int, batch_size: int, seed: int
) -> None:
    task = tasks.make("string_equality", alphabet=k, negatives=kind)
    if kind == "swap" and n < 2:
        with pytest.raises(UserError, match="length >= 2"):
            task.sample(n, batch_size, seed=seed)
        return
    batch = task.sample(n, batch_size, seed=seed)
    x, y = halves(task, batch, n)
    assert ((x >= 0) & (x < k)).all() and ((y >= 0) & (y < k)).all()
    for row, answer in enumerate(answers(task, batch)):
        if answer == "eq":
            assert (x[row] == y[row]).all()
        else:
            assert answer == "neq"
            check_negative(kind, x[row], y[row])


def classify(x: np.ndarray, y: np.ndarray) -> str:
    diff = np.flatnonzero(x != y)
    if diff.size == 1:
        return "one"
    if diff.size == 2 and sorted(x.tolist()) == sorted(y.tolist()):
        return "swap"
    return "random"


def test_mixed_negatives_are_a_third_each() -> None:
    task = tasks.make("string_equality")  # mixed, k = 2
    n = 64  # a random negative differs in ~32 positions: never mistaken for the other two
    batch = task.sample(n, 6000, seed=1)
    x, y = halves(task, batch, n)
    kinds = Counter(classify(x[r], y[r]) for r, a in enumerate(answers(task, batch)) if a == "neq")
    assert sum(kinds.values()) == 3000
    assert all(abs(kinds[kind] - 1000) <= 1 for kind in ("random", "one", "swap")), kinds


def test_swap_with_binary_pairs_reverses_the_string() -> None:
    task = tasks.make("string_equality", negatives="swap")
    batch = task.sample(2, 400, seed=0)
    x, y = halves(task, batch, 2)
    neg = np.array(answers(task, batch)) == "neq"
    # constant strings (00, 11) have no swap: their x was redrawn to 01 or 10
    assert (x[neg, 0] != x[neg, 1]).all() and (y[neg] == x[neg, ::-1]).all()
    assert {tuple(r) for r in x[neg].tolist()} == {(0, 1), (1, 0)}


def test_swap_pairs_are_uniform_over_unequal_pairs() -> None:
    task = tasks.make("string_equality", negatives="swap")
    n = 5
    batch = task.sample(n, 40_000, seed=2)
    x, y = halves(task, batch, n)
    neg = np.flatnonzero(np.array(answers(task, batch)) == "neq")
    # for rows whose x is s0 s1 s0 s0 s1 the unequal pairs are 6, each equally likely
    hits: Counter[tuple[int, ...]] = Counter()
    for r in neg:
        if x[r].tolist() == [0, 1, 0, 0, 1]:
            hits[tuple(np.flatnonzero(x[r] != y[r]).tolist())] += 1
    assert set(hits) == {(0, 1), (0, 4), (1, 2), (1, 3), (2, 4), (3, 4)}
    expected = sum(hits.values()) / 6
    assert expected > 80  # x is uniform over the 30 non-constant strings
    assert max(abs(v - expected) for v in hits.values()) < 4 * np.sqrt(expected), hits


def test_one_and_random_work_at_length_one_but_swap_does_not() -> None:
    for kind in ("one", "random"):
        task = tasks.make("string_equality", negatives=kind, alphabet=3)
        batch = task.sample(1, 40, seed=0)
        x, y = halves(task, batch, 1)
        neg = np.array(answers(task, batch)) == "neq"
        assert (x[neg] != y[neg]).all() and (x[~neg] == y[~neg]).all()
    for kind in ("swap", "mixed"):
        with pytest.raises(UserError, match="negatives"):
            tasks.make("string_equality", negatives=kind).sample(1, 4, seed=0)
    with pytest.raises(UserError, match="negatives"):
        tasks.make("string_equality", negatives="shuffle")


@pytest.mark.parametrize("kind", ["random", "one", "swap", "mixed"])
def test_string_equality_long_strings(kind: str) -> None:
    task = tasks.make("string_equality", negatives=kind, alphabet=3)
    n = 1024
    batch = task.sample(n, 40, seed=5)
    assert batch.inputs.shape == (40, 2 * n + 1)
    x, y = halves(task, batch, n)
    labels = answers(task, batch)
    assert labels.count("eq") == 20
    for row, answer in enumerate(labels):
        assert task.solve(task.decode(batch.inputs[row])) == [answer]
        if answer == "neq" and kind != "mixed":
            check_negative(kind, x[row], y[row])
        assert (answer == "eq") == bool((x[row] == y[row]).all())


# ----------------------------------------------------------------------------- disjointness


@settings(max_examples=40)
@given(st.integers(1, 40), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_disjointness_labels_match_brute_force(n: int, batch_size: int, seed: int) -> None:
    task = tasks.make("disjointness")
    batch = task.sample(n, batch_size, seed=seed)
    x, y = halves(task, batch, n)
    assert set(np.unique(x)) <= {0, 1} and set(np.unique(y)) <= {0, 1}
    for row, answer in enumerate(answers(task, batch)):
        common = [i for i in range(n) if x[row, i] == 1 and y[row, i] == 1]
        assert answer == ("intersect" if common else "disjoint")
    labels = answers(task, batch)
    assert abs(labels.count("disjoint") - labels.count("intersect")) <= batch_size % 2


def test_disjointness_witness_counts() -> None:
    task = tasks.make("disjointness")
    n, rows = 32, 8000
    batch = task.sample(n, rows, seed=3)
    x, y = halves(task, batch, n)
    both = (x & y).sum(axis=1)
    inter = np.array(answers(task, batch)) == "intersect"
    c = both[inter]
    assert (both[~inter] == 0).all()
    share_one = (c == 1).mean()
    assert abs(share_one - 0.75) < 0.03, share_one  # c = 1 dominates
    many = c[c > 1]
    assert many.min() == 2 and many.max() >= n - 2
    assert abs(many.mean() - (n + 2) / 2) < 1.5  # uniform in 2..N
    # disjoint rows: (1,0), (0,1), (0,0) a third each
    cells = Counter(zip(x[~inter].ravel().tolist(), y[~inter].ravel().tolist(), strict=True))
    assert set(cells) == {(1, 0), (0, 1), (0, 0)}
    total = sum(cells.values())
    assert all(abs(v / total - 1 / 3) < 0.01 for v in cells.values()), cells


def test_disjointness_length_one_and_long_lines() -> None:
    task = tasks.make("disjointness")
    batch = task.sample(1, 50, seed=0)
    x, y = halves(task, batch, 1)
    inter = np.array(answers(task, batch)) == "intersect"
    assert (x[inter] == 1).all() and (y[inter] == 1).all()
    n = 1024
    batch = task.sample(n, 30, seed=1)
    x, y = halves(task, batch, n)
    for row, answer in enumerate(answers(task, batch)):
        assert (answer == "intersect") == bool((x[row] & y[row]).any())
        assert task.solve(task.decode(batch.inputs[row])) == [answer]


def test_disjointness_takes_no_parameters() -> None:
    with pytest.raises(UserError, match="allowed: none"):
        tasks.make("disjointness", alphabet=3)


# ----------------------------------------------------------------------- string_equality_lm
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.sampled_from([2, 3, 5]), st.integers(0, 2**32 - 1))
def test_lm_rows_are_x_sep_x_and_every_target_is_the_next_token(n: int, k: int, seed: int) -> None:
    task = tasks.make("string_equality_lm", alphabet=k)
    batch = task.sample(n, 16, seed=seed)
    x, y = halves(task, batch, n)
    assert (x == y).all() and ((x >= 0) & (x < k)).all()
    sup = batch.targets != -100
    positions = np.flatnonzero(sup[0])
    assert positions.tolist() == list(range(n, 2 * n))  # the separator and y_1 .. y_{N-1}
    assert (sup == sup[0]).all()
    # next-character prediction: the target at t is the token at t + 1
    assert (batch.targets[:, n : 2 * n] == batch.inputs[:, n + 1 :]).all()
    assert (batch.prompt_lengths == n + 1).all() and (batch.lengths == 2 * n + 1).all()


def test_lm_worked_example_and_solver() -> None:
    task = tasks.make("string_equality_lm", alphabet=3)
    row = ["s2", "s0", "s1", "|", "s2", "s0", "s1"]
    assert task.solve(row) == ["s2", "s0", "s1"]
    with pytest.raises(UserError, match="repeats its first half"):
        task.solve(["s2", "s0", "|", "s2", "s1"])
    batch = task.sample(3, 1, seed=0)
    assert task.supervised(batch, 0) == task.solve(task.decode(batch.inputs[0]))
    assert len(task.vocab) == 5  # pad, s0, s1, s2, |
