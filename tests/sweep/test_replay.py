"""What stored probes determine at another threshold: the member replay against real training
runs at that threshold, the determined width against the search itself."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import models, tasks, training
from sepbench.sweep import Grid, find_min_width
from sepbench.sweep.replay import member_passes, members_of, trial_passes
from sepbench.sweep.search import determined


def _h(step: int, kind: str, acc: float) -> dict[str, Any]:
    return {"step": step, "kind": kind, "sequence_accuracy": acc}


def test_member_replay_rules() -> None:
    """Trained with t = 0.9, budget 100 steps, evaluations every 25."""
    climbing = {
        "stop": "budget",
        "history": [
            _h(25, "eval", 0.5),
            _h(50, "eval", 0.85),
            _h(75, "eval", 0.7),
            _h(100, "confirm", 0.82),
        ],
    }
    assert member_passes(climbing, 0.9, 0.9, 100) is False  # its own threshold: the stop
    assert member_passes(climbing, 0.95, 0.9, 100) is False  # nothing ever reached 0.95
    assert member_passes(climbing, 0.8, 0.9, 100) is True  # the final confirmation >= 0.8
    # at 0.84: step 50's evaluation qualifies but was never confirmed; the end (0.82) fails
    assert member_passes(climbing, 0.84, 0.9, 100) is None
    reached = {
        "stop": "reached",
        "history": [_h(25, "eval", 0.6), _h(50, "eval", 0.93), _h(50, "confirm", 0.92)],
    }
    assert member_passes(reached, 0.9, 0.9, 100) is True
    assert member_passes(reached, 0.8, 0.9, 100) is True  # both accuracies >= 0.8 at 50
    assert member_passes(reached, 0.55, 0.9, 100) is True  # step 25 unknown, step 50 passes
    assert member_passes(reached, 0.95, 0.9, 100) is None  # would have trained on
    near = {
        "stop": "budget",
        "history": [_h(25, "eval", 0.91), _h(25, "confirm", 0.88), _h(100, "confirm", 0.7)],
    }
    assert member_passes(near, 0.88, 0.9, 100) is True  # step 25: 0.91 and 0.88
    assert member_passes(near, 0.89, 0.9, 100) is False  # confirmed below, end below
    cut = {"stop": "decided", "history": [_h(25, "eval", 0.6)]}
    assert member_passes(cut, 0.9, 0.9, 100) is None
    assert member_passes(cut, 0.5, 0.9, 100) is None  # 0.6 at 25, confirmation unknown
    assert member_passes(cut, 0.7, 0.9, 100) is None  # cut before the end
    diverged = {"stop": "diverged", "history": [_h(25, "eval", 0.3)]}
    assert member_passes(diverged, 0.5, 0.9, 100) is False
    assert member_passes(diverged, 0.2, 0.9, 100) is None


def test_trials_without_members_are_known_at_their_own_threshold_only() -> None:
    assert members_of({}) == [] and members_of(None) == []
    assert trial_passes(True, {}, "median", 0.9, 0.9, 10) is True
    assert trial_passes(True, {}, "best_of", 0.8, 0.9, 10) is None
    one = {"stop": "budget", "history": [_h(10, "confirm", 0.85)]}
    assert members_of(one) == [one]
    assert trial_passes(False, one, "median", 0.8, 0.9, 10) is True


def test_replay_matches_training_at_the_other_threshold() -> None:
    """Train each case at t = 0.9, replay at t', then train again at t': wherever the replay
    says pass or fail, the run at t' does exactly that (and the replay decides most cases)."""
    task = tasks.make("index_lookup", max_length=8)
    budget = training.Budget(max_steps=300, lr=1e-2, eval_every=25, confirm_batch=512)
    decided = 0
    for family, width, seed in [("transformer", 16, 0), ("gru", 6, 1), ("lstm", 3, 2)]:
        base = models.build(family, len(task.vocab), width, seed=seed)
        record = training.fit(base, task, 6, budget, seed=seed, threshold=0.9).to_dict()
        for other in (0.3, 0.6, 0.8, 0.95, 0.99):
            guess = member_passes(record, other, 0.9, budget.max_steps)
            if guess is None:
                continue
            decided += 1
            model = models.build(family, len(task.vocab), width, seed=seed)
            truth = training.fit(model, task, 6, budget, seed=seed, threshold=other)
            assert truth.reached is guess, (family, other)
    assert decided >= 8


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(0, 2),
    st.lists(st.integers(1, 40), max_size=3),
    st.sampled_from([0, 2]),
)
def test_determined_width_is_the_searchs_answer(
    t: int, reprobes: int, flips: list[int], per_octave: int
) -> None:
    """With the search's own outcomes (flaky ones included), the determined width is what the
    search answered."""
    grid = Grid(1, 32, 1, per_octave)
    done, history = find_min_width(lambda w, a: (w >= t) != (a == 0 and w in flips), grid, reprobes)
    latest: dict[int, tuple[int, bool]] = {}
    for o in history:
        if o.width not in latest or o.attempt > latest[o.width][0]:
            latest[o.width] = (o.attempt, o.reached)
    got = determined({w: r for w, (_, r) in latest.items()}, grid)
    assert got.exact and got.width == done.width and got.censored == done.censored


def test_determined_brackets_unknowns_and_unprobed_widths() -> None:
    grid = Grid(1, 64)
    assert determined({4: False, 8: True}, grid).text() == "(4, 8]"
    assert determined({4: False, 5: None, 6: True}, grid).text() == "(4, 6]"
    assert determined({4: False, 5: True}, grid).text() == "5"
    assert determined({1: True}, grid).text() == "1"
    assert determined({8: False, 16: None}, grid).text() == "(>8)"
    assert determined({64: False}, grid).text() == ">64"
    assert determined({2: True, 4: False, 6: True}, grid).text() == "(4, 6]"  # 2 ignored
    with pytest.raises(ValueError, match="not on the search grid"):
        determined({5: True}, Grid(1, 64, 1, 2))
