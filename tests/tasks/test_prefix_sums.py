"""prefix_sums (tasks-wave2.md): every prefix parity supervised, uniform bits, solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks, testing
from sepbench.errors import UserError

EXAMPLE, EXAMPLE_TARGETS = "1 0 1 1 0 0 1 0", "1 1 0 1 1 1 0 0"


def check_batch(task: tasks.Task, batch: tasks.Batch, n: int) -> None:
    bits = np.array([[int(tok) for tok in task.decode(row)] for row in batch.inputs])
    assert bits.shape == (len(batch), n)
    parity = np.cumsum(bits, axis=1) % 2  # a different algorithm from the generator's XOR
    targets = np.array([[int(tok) for tok in task.supervised(batch, r)] for r in range(len(batch))])
    assert (targets == parity).all()
    assert (batch.prompt_lengths == 1).all() and (batch.lengths == n).all()


@settings(max_examples=40, deadline=None)
@given(testing.task_samples("prefix_sums", max_batch=32, lengths=st.integers(1, 300)))
def test_every_position_holds_the_prefix_parity(case: testing.TaskSample) -> None:
    check_batch(case.task, case.batch, case.length)
    for row in range(len(case.batch)):
        tokens = case.task.decode(case.batch.inputs[row])
        assert case.task.solve(tokens) == case.task.supervised(case.batch, row)


def test_long_strings_are_checked_as_strictly() -> None:
    task = tasks.make("prefix_sums")
    batch = task.sample(4096, 16, seed=1)
    check_batch(task, batch, 4096)
    for row in range(len(batch)):
        assert task.solve(task.decode(batch.inputs[row])) == task.supervised(batch, row)


def test_the_spec_example_is_reproduced() -> None:
    task = tasks.make("prefix_sums")
    assert task.solve(EXAMPLE.split()) == EXAMPLE_TARGETS.split()
    # a generated row equal to the example carries the example's targets (2^8 strings, so a
    # batch of 4096 holds it with probability 1 − (255/256)^4096 > 0.9999999)
    batch = task.sample(8, 4096, seed=0)
    example = task.encode(EXAMPLE.split())
    rows = np.flatnonzero((batch.inputs == example).all(axis=1))
    assert rows.size
    for row in rows:
        assert task.supervised(batch, int(row)) == EXAMPLE_TARGETS.split()


def test_bits_and_parities_are_uniform() -> None:
    batch = tasks.make("prefix_sums").sample(256, 2000, seed=0)
    assert abs((batch.inputs == 2).mean() - 0.5) < 0.01
    assert abs((batch.targets == 2).mean() - 0.5) < 0.01
    # every position, not just on average
    per_position = (batch.inputs == 2).mean(axis=0)
    assert per_position.min() > 0.43 and per_position.max() < 0.57


def test_same_seed_same_bytes() -> None:
    task = tasks.make("prefix_sums")
    a, b = task.sample(77, 9, seed=3), task.sample(77, 9, seed=3)
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.targets.tobytes() == b.targets.tobytes()


def test_errors() -> None:
    task = tasks.make("prefix_sums")
    with pytest.raises(UserError, match="length \\(the number of bits\\) must be >= 1"):
        task.sample(0, 4, seed=0)
    with pytest.raises(UserError, match="expected bits"):
        task.solve(["0", "2"])
    with pytest.raises(UserError, match="unknown parameter 'bits'; allowed: none"):
        tasks.make("prefix_sums", bits=3)
