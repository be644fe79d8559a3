"""addition (tasks-wave2.md): layouts, answers, digit positions, carry chains, balancing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks, testing
from sepbench.errors import UserError
from sepbench.tasks import IGNORE
from sepbench.tasks.addition import carries, layout

# the spec's example, 472 + 389 = 861, with N = 3
SPEC = {
    ("lsb", False): "2 7 4 + 9 8 3 = 1 6 8 0",
    ("msb", False): "4 7 2 + 3 8 9 = 0 8 6 1",
    ("lsb", True): "i1 2 i2 7 i3 4 + i1 9 i2 8 i3 3 = i1 1 i2 6 i3 8 i4 0",
}
MSB_HINTS = "i3 4 i2 7 i1 2 + i3 3 i2 8 i1 9 = i4 0 i3 8 i2 6 i1 1"


def operands(task: tasks.Task, tokens: list[str]) -> tuple[str, str, str]:
    """The three numbers of a row as ordinary (most significant first) digit strings."""
    plus, equals = tokens.index("+"), tokens.index("=")
    parts = (tokens[:plus], tokens[plus + 1 : equals], tokens[equals + 1 :])
    numbers = ["".join(t for t in part if not t.startswith("i")) for part in parts]
    lsb = task.params["order"] == "lsb"
    return tuple(s[::-1] if lsb else s for s in numbers)  # type: ignore[return-value]


def chain_by_loop(a: str, b: str) -> int:
    """Longest generate-then-propagate run, by a plain loop from the units digit up."""
    best = run = 0
    for x, y in zip(reversed(a), reversed(b), strict=True):
        s = int(x) + int(y)
        run = 1 if s >= 10 else run + 1 if s == 9 and run else 0
        best = max(best, run)
    return best


def check_row(task: tasks.Task, batch: tasks.Batch, row: int, n: int) -> None:
    hints = task.params["index_hints"]
    tokens = task.decode(batch.inputs[row])
    assert len(tokens) == (6 * n + 4 if hints else 3 * n + 3)
    a, b, c = operands(task, tokens)
    assert len(a) == len(b) == n and len(c) == n + 1
    if n > 1:
        assert a[0] != "0" and b[0] != "0"
    assert int(a) + int(b) == int(c)
    equals = tokens.index("=")
    assert batch.prompt_lengths[row] == equals + 1
    sup = task.supervised_positions(batch, row)
    assert sup == [(t, tokens[t + 1]) for t in range(equals, len(tokens) - 1)]
    assert batch.targets[row, -1] == IGNORE
    # digit_pos from the tokens alone: hints name it; else the index within the run of digits
    pos = batch.meta["digit_pos"][row]
    for t, tok in enumerate(tokens):
        if not tok.isdigit():
            assert pos[t] == 0
        elif hints:
            assert pos[t] == int(tokens[t - 1][1:])
        else:
            start = t
            while start > 0 and tokens[start - 1].isdigit():
                start -= 1
            end = t
            while end + 1 < len(tokens) and tokens[end + 1].isdigit():
                end += 1
            in_run = t - start + 1
            assert pos[t] == (in_run if task.params["order"] == "lsb" else end - t + 1)
    assert batch.meta["carry_chain"][row] == chain_by_loop(a, b)
    if batch.meta["long_carry"][row]:
        assert batch.meta["carry_chain"][row] >= math.ceil(n / 2)


@settings(max_examples=80, deadline=None)
@given(
    testing.task_samples(
        "addition",
        max_batch=24,
        params=testing.addition_params(max_length=64),
        lengths=st.integers(1, 64),
    )
)
def test_every_row_follows_the_format_and_the_solver(case: testing.TaskSample) -> None:
    for row in range(len(case.batch)):
        check_row(case.task, case.batch, row, case.length)
        tokens = case.task.decode(case.batch.inputs[row])
        assert case.task.solve(tokens) == case.task.supervised(case.batch, row)


@pytest.mark.parametrize(
    "params", [{}, {"order": "msb", "long_carries": 0.5}, {"index_hints": True, "max_length": 400}]
)
def test_long_operands_are_checked_as_strictly(params: dict[str, object]) -> None:
    task = tasks.make("addition", **params)
    batch = task.sample(400, 24, seed=2)
    for row in range(len(batch)):
        check_row(task, batch, row, 400)
        assert task.solve(task.decode(batch.inputs[row])) == task.supervised(batch, row)


@pytest.mark.parametrize(("key", "text"), list(SPEC.items()))
def test_the_spec_example_is_reproduced(key: tuple[str, bool], text: str) -> None:
    order, hints = key
    task = tasks.make("addition", order=order, index_hints=hints)
    # the generator's layout, filled with the example's digits (units first)
    a, b = np.array([[2, 7, 4]]), np.array([[9, 8, 3]])
    carry_out, chain = carries(a, b)
    assert carry_out.tolist() == [[True, True, False]] and chain.max() == 1
    lay = layout(3, order == "lsb", hints)
    row = lay.template.copy()
    row[lay.a_cols], row[lay.b_cols] = a[0] + 1, b[0] + 1
    row[lay.c_cols] = np.array([1, 6, 8, 0]) + 1
    assert task.decode(row) == text.split()
    # the solver's answer is the example's part after '='
    tokens = text.split()
    assert task.solve(tokens) == tokens[tokens.index("=") + 1 :]
    # and the generator writes rows in exactly that shape
    batch = task.sample(3, 50, seed=0)
    template = [tok if not tok.isdigit() else "#" for tok in tokens]
    for r in range(len(batch)):
        got = task.decode(batch.inputs[r])
        assert [tok if not tok.isdigit() else "#" for tok in got] == template


def test_msb_hints_put_the_significance_before_each_digit() -> None:
    task = tasks.make("addition", order="msb", index_hints=True)
    tokens = MSB_HINTS.split()
    assert task.solve(tokens) == tokens[tokens.index("=") + 1 :]
    batch = task.sample(3, 1, seed=0)
    got = task.decode(batch.inputs[0])
    assert [t for t in got if t.startswith("i")] == [t for t in tokens if t.startswith("i")]


@pytest.mark.parametrize(
    ("fraction", "batch_size", "count"),
    [(0.0, 64, 0), (1.0, 64, 64), (0.25, 64, 16), (0.5, 5, 3), (0.3, 10, 3), (0.5, 1, 1)],
)
def test_long_carries_forces_exactly_round_fb_rows(
    fraction: float, batch_size: int, count: int
) -> None:
    for n in (1, 2, 7, 32):
        task = tasks.make("addition", long_carries=fraction)
        batch = task.sample(n, batch_size, seed=n)
        forced = batch.meta["long_carry"]
        assert forced.sum() == count
        assert (batch.meta["carry_chain"][forced] >= math.ceil(n / 2)).all()
        for row in range(batch_size):
            check_row(task, batch, row, n)


def test_forced_rows_are_shuffled_and_their_chains_start_anywhere() -> None:
    task = tasks.make("addition", long_carries=0.5)
    batch = task.sample(6, 4000, seed=0)
    forced = batch.meta["long_carry"]
    assert 0 < forced[:2000].sum() < 2000  # not the first half of the batch
    # which start the forced chain of length 3 took: the lowest generating position whose
    # pairs above it propagate for two more positions (a chance chain below it is also a start)
    digits = batch.inputs[forced][:, :6] - 1 + batch.inputs[forced][:, 7:13] - 1
    starts = set()
    for total in digits:
        for s in range(4):
            if total[s] >= 10 and total[s + 1] == 9 and total[s + 2] == 9:
                starts.add(s)
    assert starts == {0, 1, 2, 3}


def test_uniform_rows_have_short_chains_and_nonzero_leading_digits() -> None:
    batch = tasks.make("addition").sample(32, 4000, seed=0)
    assert batch.meta["carry_chain"].max() < 16  # ⌈N/2⌉: essentially never by chance
    assert not batch.meta["long_carry"].any()
    lead_a, lead_b = batch.inputs[:, 31] - 1, batch.inputs[:, 64] - 1
    assert (lead_a > 0).all() and (lead_b > 0).all()
    assert set(lead_a.tolist()) == set(range(1, 10))
    one = tasks.make("addition").sample(1, 2000, seed=0)
    assert (one.inputs[:, 0] == 1).any()  # N = 1: the operand 0 is allowed


def test_digit_pos_is_msb_reversed_within_each_number() -> None:
    lsb = tasks.make("addition").sample(4, 2, seed=0).meta["digit_pos"]
    msb = tasks.make("addition", order="msb").sample(4, 2, seed=0).meta["digit_pos"]
    assert lsb[0].tolist() == [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5]
    assert msb[0].tolist() == [4, 3, 2, 1, 0, 4, 3, 2, 1, 0, 5, 4, 3, 2, 1]
    assert lsb.shape == msb.shape == (2, 15)


def test_same_seed_same_bytes_with_every_option() -> None:
    for params in [{}, {"order": "msb", "index_hints": True, "long_carries": 0.4}]:
        task = tasks.make("addition", **params)
        a, b = task.sample(20, 33, seed=4), task.sample(20, 33, seed=4)
        assert a.inputs.tobytes() == b.inputs.tobytes()
        assert a.targets.tobytes() == b.targets.tobytes()
        assert a.meta["long_carry"].tobytes() == b.meta["long_carry"].tobytes()
        assert a.inputs.tobytes() != task.sample(20, 33, seed=5).inputs.tobytes()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"long_carries": -0.1}, "'long_carries' must be a number in \\[0, 1\\]"),
        ({"long_carries": 1.5}, "long_carries"),
        ({"order": "middle"}, "'order' must be one of lsb, msb"),
        ({"max_length": 0}, "'max_length' must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_one_line_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        tasks.make("addition", **params)
    assert "\n" not in str(err.value)


def test_max_length_bounds_n_with_hints_only() -> None:
    hinted = tasks.make("addition", index_hints=True, max_length=8)
    assert hinted.vocab[-1] == "i9"
    hinted.sample(8, 2, seed=0)
    with pytest.raises(UserError, match="length 9 exceeds max_length 8"):
        hinted.sample(9, 2, seed=0)
    tasks.make("addition", max_length=8).sample(9, 2, seed=0)  # no hints: no position tokens
    with pytest.raises(UserError, match="length"):
        hinted.sample(0, 2, seed=0)


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        ("1 2 3 = 4", "exactly one '\\+' and one '='"),
        ("1 = 2 + 3", "before"),
        ("1 2 + 3 = 4", "differ in length"),
        ("+ 3 = 4", "must be digits"),
    ],
)
def test_the_solver_rejects_malformed_rows(tokens: str, match: str) -> None:
    with pytest.raises(UserError, match=match):
        tasks.make("addition").solve(tokens.split())
