"""The task contract of tasks.md, checked for every registered task."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks, testing
from sepbench.errors import UserError
from sepbench.tasks import IGNORE

NAMES = tasks.names()


def mid_length(task: tasks.Task) -> int:
    lengths = testing.valid_lengths(task)
    return lengths[len(lengths) * 3 // 4]


@pytest.mark.parametrize("name", NAMES)
def test_solver_agrees_with_targets_on_every_row(name: str) -> None:
    @settings(max_examples=25)
    @given(testing.task_samples(name, max_batch=12))
    def check(case: testing.TaskSample) -> None:
        for row in range(len(case.batch)):
            tokens = case.task.decode(case.batch.inputs[row])
            assert len(tokens) == case.batch.lengths[row]
            assert case.task.solve(tokens) == case.task.supervised(case.batch, row)

    check()


@pytest.mark.parametrize("name", NAMES)
def test_batch_layout(name: str) -> None:
    @settings(max_examples=15)
    @given(testing.task_samples(name, max_batch=12))
    def check(case: testing.TaskSample) -> None:
        b, task = case.batch, case.task
        bsz = len(b)
        assert b.inputs.dtype == np.int64 and b.targets.dtype == np.int64
        assert b.inputs.shape == b.targets.shape and b.inputs.shape[0] == bsz
        assert b.inputs.shape[1] <= task.max_tokens(case.length)
        assert b.lengths.shape == (bsz,) and b.prompt_lengths.shape == (bsz,)
        assert (b.prompt_lengths >= 1).all() and (b.prompt_lengths <= b.lengths).all()
        assert b.lengths.max() == b.inputs.shape[1]
        pos = np.arange(b.inputs.shape[1])[None, :]
        pad = pos >= b.lengths[:, None]
        assert (b.inputs[pad] == task.pad_id).all()
        assert (b.inputs[~pad] != task.pad_id).all()
        assert (b.targets[pad] == IGNORE).all()
        assert ((b.inputs >= 0) & (b.inputs < len(task.vocab))).all()
        sup = b.targets != IGNORE
        assert sup.any(axis=1).all(), "every row supervises something"
        assert ((b.targets[sup] >= 0) & (b.targets[sup] < len(task.vocab))).all()
        # the prompt is exactly the prefix read before the first supervised output
        first_sup = np.argmax(sup, axis=1)
        assert (first_sup == b.prompt_lengths - 1).all()

    check()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_different_seed_differs(name: str) -> None:
    task = tasks.make(name)
    n = mid_length(task)
    a = task.sample(n, 64, seed=11)
    b = task.sample(n, 64, seed=11)
    c = task.sample(n, 64, seed=12)
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.targets.tobytes() == b.targets.tobytes()
    assert a.inputs.shape != c.inputs.shape or a.inputs.tobytes() != c.inputs.tobytes()
    rng_batch = task.sample(n, 64, rng=np.random.default_rng(11))
    assert rng_batch.inputs.tobytes() == a.inputs.tobytes()


def _binary_names() -> list[str]:
    found = []
    for n in NAMES:
        try:
            cls = tasks.get_class(n)
        except ModuleNotFoundError:  # a task still being written; the test below then fails
            continue
        if cls.binary_answers is not None:
            found.append(n)
    return found


BINARY = _binary_names()


def test_the_yes_no_tasks_declare_their_answers() -> None:
    assert set(BINARY) == {"dyck", "string_equality", "disjointness", "is_tree"}


@pytest.mark.parametrize("name", BINARY)
def test_binary_tasks_are_exactly_balanced(name: str) -> None:
    task = tasks.make(name)
    assert task.binary_answers is not None
    yes, no = task.binary_answers
    n = mid_length(task)
    for bsz, seed in [(64, 0), (101, 1), (2, 2), (1, 3)]:
        batch = task.sample(n, bsz, seed=seed)
        answers = [task.supervised(batch, r)[-1] for r in range(bsz)]
        assert set(answers) <= {yes, no}
        assert abs(answers.count(yes) - answers.count(no)) <= bsz % 2


def _outputs_seen(name: str, param: tasks.Param, context: dict[str, object]) -> int:
    """How many distinct (vocabulary, rows) the values of ``param`` give, others at ``context``."""
    values = sorted({param.default, *param.examples}, key=repr)
    assert len(values) >= 2, f"{name}.{param.name} declares no example to vary it"
    seen = set()
    for value in values:
        try:
            task = tasks.make(name, **{**context, param.name: value})
        except UserError:
            continue
        n = min(mid_length(tasks.make(name)), max(testing.valid_lengths(task)))
        batch = task.sample(n, 32, seed=5)
        rows = tuple(
            (tuple(task.decode(batch.inputs[r])), tuple(task.supervised(batch, r)))
            for r in range(len(batch))
        )
        seen.add((task.vocab, rows))
    return len(seen)


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_parameter_reaches_the_generator(name: str) -> None:
    # with the other parameters at their defaults, or else at one of their examples (a
    # parameter may matter only beside another: addition's max_length bounds index hints)
    cls = tasks.get_class(name)
    for param in cls.params_spec:
        contexts = [{}] + [
            {other.name: value}
            for other in cls.params_spec
            if other is not param
            for value in other.examples
        ]
        assert any(_outputs_seen(name, param, c) >= 2 for c in contexts), (
            f"{name}: parameter {param.name!r} never changes the output"
        )


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_and_lengths_are_clear_errors(name: str) -> None:
    with pytest.raises(UserError, match="unknown parameter 'bogus'"):
        tasks.make(name, bogus=1)
    cls = tasks.get_class(name)
    for param in cls.params_spec:
        bad = "not-a-valid-value" if param.kind is not str else 12345
        with pytest.raises(UserError, match=param.name):
            tasks.make(name, **{param.name: bad})
    task = tasks.make(name)
    with pytest.raises(UserError, match="length"):
        task.sample(-1, 4, seed=0)
    with pytest.raises(UserError):
        task.sample(mid_length(task), 0, seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_encode_decode_round_trip(name: str) -> None:
    @settings(max_examples=10)
    @given(testing.task_samples(name, max_batch=4), st.data())
    def check(case: testing.TaskSample, data: st.DataObject) -> None:
        row = data.draw(st.integers(0, len(case.batch) - 1))
        tokens = case.task.decode(case.batch.inputs[row])
        ids = case.task.encode(tokens)
        assert (ids == case.batch.inputs[row, : len(tokens)]).all()

    check()


def test_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="known tasks: index_lookup"):
        tasks.make("nope")


def test_tasks_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from sepbench import tasks, testing\n"
        "for n in tasks.names():\n"
        "    t = tasks.make(n); t.sample(testing.valid_lengths(t)[0], 4, seed=0)\n"
        "assert 'torch' not in sys.modules, 'sepbench.tasks imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
