"""The probes: the training probe's adapter and up-front validation; the fake probe."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sepbench.errors import UserError
from sepbench.sweep import FakeProbe, ProbeOutcome, TrainingProbe, plan_study
from tests.sweep.common import make_spec

TINY = {
    "lengths": [4],
    "seeds": 1,
    "budget": {
        "steps": 4,
        "batch_size": 4,
        "lr": 0.01,
        "options": {"eval_every": 2, "eval_batch": 8, "confirm_batch": 8, "warmup": 1},
    },
}


def test_training_probe_runs_one_real_trial() -> None:
    spec = make_spec(models=[{"family": "lstm"}], **TINY)
    trial = plan_study(spec)[0].trial(3)
    outcome = TrainingProbe()(trial)
    assert isinstance(outcome, ProbeOutcome) and isinstance(outcome.reached, bool)
    assert outcome.steps is not None and 1 <= outcome.steps <= 4
    assert outcome.accuracy is not None and 0.0 <= outcome.accuracy <= 1.0
    assert outcome.details["seed"] == trial.seed
    assert outcome.details["config"]["length"] == 4
    again = TrainingProbe()(trial)  # same trial, same seed: the same run
    assert (again.reached, again.accuracy, again.steps) == (
        outcome.reached,
        outcome.accuracy,
        outcome.steps,
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"models": [{"family": "lstm"}, {"family": "mlp"}]}, "models[1].family: unknown model"),
        ({"models": [{"family": "lstm", "options": {"colour": 1}}]}, "models[0] at width 1: "),
        (
            {
                "models": [{"family": "lstm"}],
                "budget": {"steps": 4, "batch_size": 4, "lr": 0.01, "options": {"warmpu": 3}},
            },
            "budget: unknown field 'warmpu'",
        ),
    ],
)
def test_training_probe_validates_up_front(overrides: dict, expected: str) -> None:
    with pytest.raises(UserError) as info:
        TrainingProbe().validate(make_spec(**{**TINY, **overrides}))
    assert expected in str(info.value)


def test_fake_probe_is_deterministic_with_flips_and_noise() -> None:
    spec = make_spec(models=[{"family": "lstm"}])
    plan = plan_study(spec)[0]
    probe = FakeProbe(law="linear", coef={"lstm": 2.0}, flips=(3,))
    assert probe.threshold("lstm", 4) == 8
    assert [probe(plan.trial(w)).reached for w in (7, 8, 3)] == [False, True, True]
    assert probe(plan.trial(3, attempt=1)).reached is False
    noisy = FakeProbe(noise=0.3)
    outcomes = [noisy(plan.trial(w)).reached for w in range(1, 41)]
    assert outcomes == [noisy(plan.trial(w)).reached for w in range(1, 41)]
    flipped = sum(o != (w >= 4) for w, o in zip(range(1, 41), outcomes, strict=True))
    assert 2 <= flipped <= 25
    with pytest.raises(UserError, match="unknown law"):
        FakeProbe(law="cubic").validate(spec)


def test_training_probe_records_the_facts_of_the_model_it_trained() -> None:
    """State size (at the task's token length), parameter count and theory class, single and
    ensemble trainer alike: the report reads them instead of recomputing them."""
    from sepbench import models, tasks
    from sepbench.models.cards import ModelFacts

    model = {"family": "transformer", "options": {"layers": 2, "heads": 2}}
    spec = make_spec(models=[model], trainer="ensemble", **{**TINY, "seeds": 2})
    first, second = (plan.trial(4) for plan in plan_study(spec))
    task = tasks.make(first.search.task, **first.search.task_params)
    built = models.build("transformer", len(task.vocab), 4, layers=2, heads=2)
    tokens = task.max_tokens(first.search.length)
    size = built.state_size(tokens)
    expected = ModelFacts("transformer-2", size, tokens, built.num_parameters(), 4, 32 * size, None)
    assert expected.state_size == 2 * 2 * 2 * 2 * tokens  # layers · (k, v) · heads · head_dim
    outcomes = [
        *TrainingProbe().batch([first, second]),
        TrainingProbe()(replace(first, search=replace(first.search, trainer="single"))),
    ]
    for outcome in outcomes:
        assert ModelFacts.from_details(outcome.details) == expected
