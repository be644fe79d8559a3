"""The anchors' protocol as study options: learning-rate grids and restarts (K members per
probe), the success rule, length mixtures — their validation, their identity, the rule logic
in the runner (fake probes with per-member outcomes), and what stored probes determine under
the other rule (replay)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sepbench import rules
from sepbench.errors import UserError
from sepbench.sweep import (
    FakeProbe,
    Store,
    StudySpec,
    TrainingProbe,
    load_spec,
    plan_study,
    run_study,
)
from sepbench.sweep.replay import bracket
from sepbench.sweep.summary import StudySummary
from tests.sweep.common import make_spec, spec_dict

PROTOCOL: dict[str, Any] = {
    "restarts": 2,
    "budget": {"steps": 10, "batch_size": 8, "lr": [0.01, 0.001]},
    "models": [{"family": "lstm"}, {"family": "tf"}],
}
MEMBERS = (1.0, 1.5, 2.0, 3.0)  # member j needs width >= ceil(base * MEMBERS[j])
COEF = {"lstm": 2.0, "tf": 1.0}


# ---------------------------------------------------------------------- the rules
def test_quorum_and_decisions() -> None:
    assert [rules.quorum("median", k) for k in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]
    assert [rules.quorum("best_of", k) for k in (1, 4)] == [1, 1]
    assert rules.combine("best_of", [None, True, False]) is True
    assert rules.combine("best_of", [False, False]) is False
    assert rules.combine("best_of", [False, None]) is None
    assert rules.combine("median", [True, None, True, False]) is True  # 2 of 4
    assert rules.combine("median", [True, False, False, False]) is False
    assert rules.combine("median", [True, False, False, None]) is None
    with pytest.raises(ValueError, match="unknown success rule"):
        rules.quorum("max", 3)


# ---------------------------------------------------------------------- spec and identity
def test_new_keys_enter_identity_only_when_set_and_a_one_rate_list_is_that_rate() -> None:
    base = make_spec()
    assert make_spec(budget={**base.budget.model_dump(), "lr": [0.001]}).spec_hash() == (
        base.spec_hash()
    )
    assert (
        plan_study(make_spec(budget={"steps": 10, "batch_size": 8, "lr": [0.001]}))[0].trial(4).key
        == plan_study(base)[0].trial(4).key
    )
    spec = make_spec(
        **{**PROTOCOL, "budget": {**PROTOCOL["budget"], "mixture": {}}},
        rule="median",
        lengths=[4, 32],
    )
    assert spec.spec_hash() != base.spec_hash()
    config = plan_study(spec)[0].trial(4).config()
    assert (config["restarts"], config["rule"]) == (2, "median")
    assert config["budget"]["lr"] == [0.01, 0.001]
    assert spec.budget.mixture is not None and spec.budget.mixture.fraction == 0.1
    shortest = {p.config.length: p.config.budget.min_length for p in plan_study(spec)}
    assert shortest == {4: 1, 32: 4}  # ceil(N / 10)
    assert plan_study(spec)[-1].trial(4).config()["budget"]["min_length"] == 4
    fixed = make_spec(budget={"steps": 10, "batch_size": 8, "lr": 0.01, "mixture": {"min": 3}})
    assert {p.config.budget.min_length for p in plan_study(fixed)} == {3}


def test_protocol_spec_round_trips_through_toml(tmp_path: Path) -> None:
    mixed = {**PROTOCOL, "budget": {**PROTOCOL["budget"], "mixture": {"fraction": 0.25}}}
    spec = make_spec(**mixed, rule="median")
    path = tmp_path / "s.toml"
    path.write_text(spec.to_toml())
    assert load_spec(path) == spec and load_spec(path).spec_hash() == spec.spec_hash()


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"budget": {"steps": 10, "batch_size": 8, "lr": []}}, "budget.lr: an empty list"),
        ({"budget": {"steps": 10, "batch_size": 8, "lr": [0.01, 0.0]}}, "budget.lr: must be"),
        ({"budget": {"steps": 10, "batch_size": 8, "lr": [0.01, 0.01]}}, "budget.lr: 0.01 appears"),
        ({"budget": {"steps": 10, "batch_size": 8, "lr": "fast"}}, "budget.lr: must be"),
        ({"rule": "max"}, "rule: "),
        ({"restarts": 0}, "restarts: "),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "mixture": {"fraction": 0}}},
            "budget.mixture.fraction: ",
        ),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "mixture": {"fraction": 1.5}}},
            "budget.mixture.fraction: ",
        ),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "mixture": {"min": 0}}},
            "budget.mixture.min: ",
        ),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "mixture": {"min": 5}}},
            "budget.mixture.min: 5 is above lengths[0] = 4; the training lengths [min, N] "
            "must lie in 1..N",
        ),
        (
            {
                "budget": {
                    "steps": 10,
                    "batch_size": 8,
                    "lr": 0.1,
                    "mixture": {"min": 1, "fraction": 0.5},
                }
            },
            "budget.mixture: give fraction or min, not both",
        ),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "mixture": {"upto": 3}}},
            "budget.mixture: unknown key 'upto'",
        ),
        (
            {"budget": {"steps": 10, "batch_size": 8, "lr": 0.1, "options": {"min_length": 2}}},
            "budget.options: 'min_length' is not a study option",
        ),
    ],
)
def test_bad_protocol_options_are_one_line_errors_naming_the_key(
    patch: dict[str, Any], expected: str
) -> None:
    with pytest.raises(UserError) as info:
        StudySpec.from_dict(spec_dict(**patch))
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_members_of_a_probe_restart_major_with_shared_seeds_per_restart() -> None:
    trial = plan_study(make_spec(**PROTOCOL))[0].trial(4)
    members = trial.members()
    assert trial.search.size == 4 == len(members)
    assert [(m.index, m.restart, m.lr) for m in members] == [
        (0, 0, 0.01),
        (1, 0, 0.001),
        (2, 1, 0.01),
        (3, 1, 0.001),
    ]
    assert members[0].seed == members[1].seed == trial.seed  # restart 0: the trial's seed
    assert members[2].seed == members[3].seed != trial.seed
    assert [m.seed for m in plan_study(make_spec(**PROTOCOL))[0].trial(4).members()] == [
        m.seed for m in members
    ]


# ---------------------------------------------------------------------- the rule in the runner
def _study(
    tmp: Path, rule: str, members: tuple[float, ...] = MEMBERS
) -> tuple[StudySummary, list[Any], StudySpec]:
    spec = make_spec(**PROTOCOL, rule=rule)
    probe = FakeProbe(coef=COEF, member_coef=members)
    summary = run_study(spec, tmp, executor="inline", probe=probe, progress=False)
    with Store.open(tmp / "unit.sqlite") as store:
        return summary, store.records(), spec


def _expected(family: str, length: int, factor: float) -> int:
    return max(1, math.ceil(COEF[family] * length * factor - 1e-9))


@pytest.mark.parametrize(("rule", "factor"), [("best_of", 1.0), ("median", 1.5)])
def test_the_search_decides_by_the_study_rule(tmp_path: Path, rule: str, factor: float) -> None:
    """Best of 4 members finds the easiest member's width; the median (2 of 4) the second
    easiest's. Every member's outcome is stored, with both rules' outcomes per trial."""
    summary, records, _ = _study(tmp_path, rule)
    family = {"lstm": "lstm", "tf": "tf"}
    for s in summary.searches:
        assert s.status == "done" and s.width == _expected(family[s.model], s.length, factor)
    for r in records:
        details = r.outcome["details"]
        assert details["rule"] == rule and len(details["members"]) == 4
        assert details["outcomes"][rule] is r.reached
        assert details["examples"] == r.outcome["steps"] * 8
        stops = [m["stop"] for m in details["members"]]
        passed = stops.count("reached")
        if r.reached:  # the rule was decided before the budget's end: the rest were cut
            assert set(stops) <= {"reached", "decided"}
            assert passed == rules.quorum(rule, 4)
        else:
            assert "decided" not in stops


@pytest.mark.parametrize(
    ("rule", "other", "members", "factor", "all_exact"),
    [
        ("best_of", "median", MEMBERS, 1.5, False),
        ("median", "best_of", MEMBERS, 1.0, False),
        ("median", "best_of", (1.0, 1.0, 2.0, 3.0), 1.0, True),
    ],
)
def test_the_other_rule_is_what_the_stored_probes_determine(
    tmp_path: Path,
    rule: str,
    other: str,
    members: tuple[float, ...],
    factor: float,
    all_exact: bool,
) -> None:
    """Replayed under the study's own rule, the stored probes give the search's answers;
    under the other rule they give the truth where they determine it (its boundary probed,
    the members' outcomes known) and otherwise a bracket that holds the truth."""
    summary, records, spec = _study(tmp_path, rule, members)
    plans = {p.search_key: p for p in plan_study(spec)}
    exact = 0
    for s in summary.searches:
        plan = plans[s.search_key]
        mine = [r for r in records if r.search_key == s.search_key]
        own = bracket(mine, plan.grid, rule, spec.threshold, spec.threshold)
        assert own.exact and own.width == s.width  # the replay reproduces the search
        truth = _expected(plan.config.family, plan.config.length, factor)
        got = bracket(mine, plan.grid, other, spec.threshold, spec.threshold)
        if got.exact:
            exact += 1
            assert got.width == truth
        else:  # never a guess: the truth lies in the bracket
            assert (got.low or 0) < truth and (got.high is None or truth <= got.high)
    assert (exact == len(summary.searches)) == all_exact
    states = [r.outcome["details"]["outcomes"][other] for r in records]
    if rule == "median":  # a failure ran every member to the end: best_of is known per trial
        assert None not in states
    else:  # a best_of success cut the others short: the median is often unknown
        assert None in states


def test_a_training_probe_with_a_grid_and_a_mixture_stores_every_member(tmp_path: Path) -> None:
    spec = make_spec(
        lengths=[6],
        seeds=1,
        restarts=2,
        models=[{"family": "transformer", "options": {"layers": 1}}],
        trainer="ensemble",
        budget={
            "steps": 150,
            "batch_size": 32,
            "lr": [0.01, 0.0001],
            "mixture": {"min": 2},
            "options": {"eval_every": 25, "eval_batch": 64, "confirm_batch": 128},
        },
        width={"min": 16, "max": 16},
        tasks=[{"name": "index_lookup", "params": {"max_length": 8}}],
        threshold=0.9,
    )
    trial = plan_study(spec)[0].trial(16)
    outcome = TrainingProbe().batch([trial])[0]
    members = outcome.details["members"]
    assert [(m["restart"], m["lr"]) for m in members] == [
        (0, 0.01),
        (0, 0.0001),
        (1, 0.01),
        (1, 0.0001),
    ]
    assert [m["config"]["budget"]["lr"] for m in members] == [0.01, 0.0001, 0.01, 0.0001]
    assert all(m["config"]["budget"]["min_length"] == 2 for m in members)
    assert members[0]["seed"] == members[1]["seed"] == trial.seed != members[2]["seed"]
    assert outcome.details["ensemble"]["members"] == 4
    assert outcome.reached == any(m["stop"] == "reached" for m in members)
    if outcome.reached:  # best_of: everyone stops at the first confirmed member's step
        assert {m["steps"] for m in members} == {outcome.steps}
    tiny = [m for m in members if m["lr"] == 0.0001]
    assert all(m["stop"] != "reached" for m in tiny)  # 1e-4 for 150 steps learns nothing
