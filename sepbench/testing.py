"""Hypothesis strategies over sepbench's tasks, for property-testing your own models.

>>> from hypothesis import given
>>> from sepbench import testing
>>> @given(testing.task_samples("dyck", max_batch=8))
... def test_my_model(sample): ...

Strategies draw parameter values from each parameter's declared ``examples`` (plus its
default) and lengths from the task's ``test_lengths`` range, skipping lengths the task cannot
take; ``task_samples(name, params=..., lengths=...)`` widens both, e.g. with
:func:`passkey_params` and :func:`addition_params`, which cover whole parameter ranges.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from sepbench import tasks
from sepbench.errors import UserError
from sepbench.tasks.base import Batch, Task


@dataclass(frozen=True)
class TaskSample:
    """One drawn case: the task, its problem size, the seed and the sampled batch."""

    task: Task
    length: int
    seed: int
    batch: Batch


def task_params(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid parameter dictionaries for task ``name`` (invalid combinations filtered out)."""
    cls = tasks.get_class(name)
    fields = {
        p.name: st.sampled_from(sorted({p.default, *p.examples}, key=repr)) for p in cls.params_spec
    }

    def valid(params: dict[str, Any]) -> bool:
        try:
            cls(**params)
        except UserError:
            return False
        return True

    return st.fixed_dictionaries(fields).filter(valid)


def task_instances(name: str) -> st.SearchStrategy[Task]:
    """Built tasks with drawn parameters."""
    return task_params(name).map(lambda params: tasks.make(name, **params))


def valid_lengths(task: Task) -> list[int]:
    """The lengths in ``task.test_lengths`` that the task accepts."""
    lo, hi = task.test_lengths
    ok = []
    for n in range(lo, hi + 1):
        try:
            task.check_length(n)
        except UserError:
            continue
        ok.append(n)
    return ok


@st.composite
def task_samples(
    draw: st.DrawFn,
    name: str,
    max_batch: int = 16,
    min_batch: int = 1,
    params: st.SearchStrategy[dict[str, Any]] | None = None,
    lengths: st.SearchStrategy[int] | None = None,
) -> TaskSample:
    """A drawn task, a valid length, a seed, and the batch sampled from them.

    ``params`` replaces the declared-examples strategy (e.g. :func:`passkey_params`), and
    ``lengths`` the ``test_lengths`` range (lengths the task rejects are skipped).
    """
    from hypothesis import assume, reject

    task = draw(task_instances(name)) if params is None else tasks.make(name, **draw(params))
    if lengths is None:
        accepted = valid_lengths(task)
        if not accepted:
            reject()
        length = draw(st.sampled_from(accepted))
    else:
        length = draw(lengths)
        try:
            task.check_length(length)
        except UserError:
            assume(False)
    seed = draw(st.integers(0, 2**31 - 1))
    batch_size = draw(st.integers(min_batch, max_batch))
    return TaskSample(task, length, seed, task.sample(length, batch_size, seed=seed))


def any_task_samples(max_batch: int = 16) -> st.SearchStrategy[TaskSample]:
    """A sample from any registered task."""
    return st.sampled_from(tasks.names()).flatmap(lambda n: task_samples(n, max_batch=max_batch))


# --------------------------------------------------------------------- wave-2 parameter ranges
# Strategies over whole parameter ranges, where the declared examples are a few points of a
# continuum; pass them as ``task_samples(name, params=...)``.


def passkey_params() -> st.SearchStrategy[dict[str, Any]]:
    """passkey parameters: any key length and filler count, depth ``uniform`` or in [0, 1]."""
    return st.fixed_dictionaries(
        {
            "digits": st.integers(1, 16),
            "filler": st.integers(1, 64),
            "filler_mode": st.sampled_from(("pattern", "random")),
            "depth": st.one_of(st.just("uniform"), st.floats(0.0, 1.0)),
        }
    )


def addition_params(max_length: int = 64) -> st.SearchStrategy[dict[str, Any]]:
    """addition parameters: either order, hints or not, any long-carry fraction in [0, 1]."""
    return st.fixed_dictionaries(
        {
            "order": st.sampled_from(("lsb", "msb")),
            "index_hints": st.booleans(),
            "long_carries": st.one_of(st.sampled_from((0.0, 1.0)), st.floats(0.0, 1.0)),
            "max_length": st.just(max_length),
        }
    )


# --------------------------------------------------------------------- listops (wave 2)
def listops_expressions(max_args: int = 5, max_leaves: int = 40) -> st.SearchStrategy[list[str]]:
    """Arbitrary ListOps expressions as token lists, for testing solvers and tree models.

    Any shape hypothesis can build and shrink (not the task's sampling law): an operator token,
    2 … ``max_args`` arguments (digits or nested expressions), ``]``; about ``max_leaves``
    digits at most. The root is always an operator.
    """
    from sepbench.tasks.listops import CLOSE, DIGITS, OPERATORS

    def expression(args: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
        return st.tuples(
            st.sampled_from(OPERATORS), st.lists(args, min_size=2, max_size=max_args)
        ).map(lambda t: [t[0], *(tok for arg in t[1] for tok in arg), CLOSE])

    digit = st.sampled_from(DIGITS).map(lambda d: [d])
    return expression(st.recursive(digit, expression, max_leaves=max_leaves))
