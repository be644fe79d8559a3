"""passkey (tasks-wave2.md): layout, targets, depth rule and bins, solver, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks, testing
from sepbench.cli import main
from sepbench.errors import UserError
from sepbench.tasks import IGNORE

EXAMPLE = "f0 f1 [KEY] 4 0 7 f0 f1 f2 f0 f1 f2 [Q] 4 0 7"
SPEC_EXAMPLE = EXAMPLE.split()


def check_row(task: tasks.Task, batch: tasks.Batch, row: int) -> None:
    """Every rule of the format, re-derived from the token strings of one row."""
    n = int(batch.lengths[row])
    d, k = task.params["digits"], task.params["filler"]
    tokens = task.decode(batch.inputs[row])
    assert len(tokens) == n and n >= 2 * d + 3
    depth = float(batch.meta["depth"][row])
    p = int(batch.meta["key_pos"][row])
    assert p == math.floor(depth * (n - 2 * d - 2) + 0.5)  # round half up
    assert p >= 0 and p + d <= n - d - 2  # the block stays inside the context
    assert tokens[p] == "[KEY]" and tokens.count("[KEY]") == 1
    key = tokens[p + 1 : p + 1 + d]
    assert all(tok in "0123456789" and len(tok) == 1 for tok in key)
    assert tokens[n - d - 1] == "[Q]" and tokens.count("[Q]") == 1
    assert tokens[n - d :] == key
    fillers = [(t, tok) for t, tok in enumerate(tokens[: n - d - 1]) if not p <= t <= p + d]
    assert len(fillers) == n - 2 * d - 2
    if task.params["filler_mode"] == "pattern":
        assert all(tok == f"f{t % k}" for t, tok in fillers)
    else:
        assert all(tok[0] == "f" and 0 <= int(tok[1:]) < k for _, tok in fillers)
    # targets: [Q] -> k1, k_i -> k_{i+1}, nothing else
    assert task.supervised_positions(batch, row) == [
        (n - d - 1 + i, digit) for i, digit in enumerate(key)
    ]
    assert batch.targets[row, -1] == IGNORE
    assert batch.prompt_lengths[row] == n - d


@settings(max_examples=60, deadline=None)
@given(
    testing.task_samples(
        "passkey", max_batch=24, params=testing.passkey_params(), lengths=st.integers(5, 400)
    )
)
def test_every_row_follows_the_format_and_the_solver(case: testing.TaskSample) -> None:
    for row in range(len(case.batch)):
        check_row(case.task, case.batch, row)
        tokens = case.task.decode(case.batch.inputs[row])
        assert case.task.solve(tokens) == case.task.supervised(case.batch, row)


@pytest.mark.parametrize("mode", ["pattern", "random"])
def test_long_contexts_are_checked_as_strictly(mode: str) -> None:
    task = tasks.make("passkey", filler_mode=mode)
    batch = task.sample(8192, 48, seed=3)
    for row in range(len(batch)):
        check_row(task, batch, row)
        assert task.solve(task.decode(batch.inputs[row])) == task.supervised(batch, row)


def test_the_spec_example_is_reproduced() -> None:
    task = tasks.make("passkey", digits=3, filler=3, depth=0.25)
    batch = task.sample(16, 200, seed=0)
    assert (batch.meta["key_pos"] == 2).all()
    for row in range(len(batch)):
        tokens = task.decode(batch.inputs[row])
        key = tokens[3:6]
        expected = [*SPEC_EXAMPLE[:3], *key, *SPEC_EXAMPLE[6:13], *key]
        assert tokens == expected
        assert task.supervised_positions(batch, row) == list(zip([12, 13, 14], key, strict=True))
    assert task.solve(SPEC_EXAMPLE) == ["4", "0", "7"]


def test_depth_ends_put_the_block_at_the_start_and_just_before_the_query() -> None:
    for n, d in [(13, 5), (40, 5), (1000, 16)]:
        first = tasks.make("passkey", digits=d, depth=0).sample(n, 4, seed=1)
        last = tasks.make("passkey", digits=d, depth=1).sample(n, 4, seed=1)
        assert (first.meta["key_pos"] == 0).all()
        assert (last.meta["key_pos"] + d == n - d - 2).all()  # last key digit, then [Q]
        assert (last.inputs[:, n - d - 1] == last.inputs[0, n - d - 1]).all()


def test_ties_round_half_up() -> None:
    # N − 2d − 2 = 5 at N = 17, d = 5: depth 0.5 gives 2.5 -> 3 (half-to-even would give 2)
    batch = tasks.make("passkey", depth=0.5).sample(17, 2, seed=0)
    assert (batch.meta["key_pos"] == 3).all()


@pytest.mark.parametrize("batch_size", [1, 2, 7, 64, 1000])
def test_uniform_depth_puts_exactly_one_row_in_each_bin(batch_size: int) -> None:
    task = tasks.make("passkey")
    for seed in range(3):
        depth = task.sample(200, batch_size, seed=seed).meta["depth"]
        assert ((depth >= 0) & (depth < 1)).all()
        bins = np.floor(depth * batch_size).astype(int)
        assert sorted(bins) == list(range(batch_size))
    # the bins are in random order, not sorted by row
    depth = task.sample(200, 1000, seed=0).meta["depth"]
    assert not (np.diff(depth) > 0).all()


def test_a_fixed_depth_is_the_same_for_every_row() -> None:
    batch = tasks.make("passkey", depth=0.3).sample(100, 50, seed=0)
    assert (batch.meta["depth"] == 0.3).all()
    assert (batch.meta["key_pos"] == round(0.3 * 88)).all()


def test_random_filler_and_key_digits_are_uniform() -> None:
    task = tasks.make("passkey", filler_mode="random", filler=4)
    batch = task.sample(4096, 64, seed=0)
    fillers = batch.inputs[:, : 4096 - 6]
    fillers = fillers[(fillers >= 1) & (fillers <= 4)]
    freq = np.bincount(fillers - 1, minlength=4) / fillers.size
    assert np.abs(freq - 0.25).max() < 0.01
    keys = tasks.make("passkey").sample(100, 5000, seed=0).inputs[:, -5:] - 5  # digit 0 is id 5
    freq = np.bincount(keys.ravel(), minlength=10) / keys.size
    assert np.abs(freq - 0.1).max() < 0.01


def test_same_seed_same_bytes_with_every_option() -> None:
    for params in [{}, {"filler_mode": "random"}, {"depth": 0.7, "digits": 9, "filler": 11}]:
        task = tasks.make("passkey", **params)
        a, b = task.sample(300, 32, seed=9), task.sample(300, 32, seed=9)
        assert a.inputs.tobytes() == b.inputs.tobytes()
        assert a.targets.tobytes() == b.targets.tobytes()
        assert a.meta["depth"].tobytes() == b.meta["depth"].tobytes()
        assert a.inputs.tobytes() != task.sample(300, 32, seed=10).inputs.tobytes()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"depth": -0.1}, "'depth' must be 'uniform' or a number in \\[0, 1\\]"),
        ({"depth": 1.5}, "depth"),
        ({"depth": "deep"}, "depth"),
        ({"digits": 0}, "'digits' must be an integer in 1..16"),
        ({"digits": 17}, "digits"),
        ({"filler": 0}, "'filler' must be an integer in 1..64"),
        ({"filler": 65}, "filler"),
        ({"filler_mode": "sentence"}, "filler_mode"),
    ],
)
def test_bad_parameters_are_one_line_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        tasks.make("passkey", **params)
    assert "\n" not in str(err.value)


def test_a_context_shorter_than_the_key_is_an_error() -> None:
    task = tasks.make("passkey", digits=5)
    with pytest.raises(
        UserError, match=r"length 12 is shorter than the key.*>= 2·digits \+ 3 = 13"
    ):
        task.sample(12, 4, seed=0)
    task.sample(13, 4, seed=0)  # the shortest row: one filler token


def test_depth_parses_from_cli_strings() -> None:
    assert tasks.make("passkey", depth="0.25").params["depth"] == 0.25
    assert tasks.make("passkey", depth="uniform").params["depth"] == "uniform"
    assert tasks.make("passkey", depth=1).params["depth"] == 1.0


def test_cli_sample_with_a_depth(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tasks", "sample", "passkey", "--length", "16", "-n", "2"]
    code = main([*argv, "--param", "depth=0", "--param", "digits=3"])
    out = capsys.readouterr().out
    assert code == 0
    assert [line.split()[0] for line in out.splitlines() if "targets" not in line] == [
        "[KEY]",
        "[KEY]",
    ]
    assert main([*argv, "--param", "depth=2"]) == 2
    assert "must be 'uniform' or a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        ("f0 f1 f2 [Q] 1 2 3", r"exactly one \[KEY\].*found 0"),
        ("[KEY] 1 2 3 [KEY] 1 2 3 [Q] 1 2 3", r"exactly one \[KEY\].*found 2"),
        ("[KEY] 1 2 3 f0 1 2 3", r"exactly one \[Q\].*found 0"),
        ("[Q] 1 2 3 [KEY] 1 2 3", "before"),
        ("[KEY] 1 f0 3 f1 [Q] 1 2 3", "followed by 3 digits"),
    ],
)
def test_the_solver_rejects_malformed_rows(tokens: str, match: str) -> None:
    with pytest.raises(UserError, match=match):
        tasks.make("passkey", digits=3).solve(tokens.split())
