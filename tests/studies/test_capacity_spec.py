"""The capacity spec: planning, trial identity and seeds, one-line errors, dispatch by kind,
and the shipped study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sepbench import mainjob, studies
from sepbench.errors import UserError
from sepbench.studies.capacity import CapacitySpec, bin_centres
from sepbench.studies.grid import GridConfig, plan_grid
from sepbench.sweep.spec import StudySpec
from tests.studies.common import cap_dict, make_cap
from tests.sweep.common import spec_dict


def error_of(fn: Any, *args: Any) -> str:
    with pytest.raises(UserError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message  # one line
    return message


# ---------------------------------------------------------------------------------- planning
def test_plan_enumerates_every_cell_once_in_order() -> None:
    spec = make_cap()
    plan = plan_grid(spec)
    assert len(plan) == (3 + 2) * 2 * 2  # sizes × T_train × seeds
    assert len({p.trial.key for p in plan}) == len(plan)
    cells = [(p.model_label, p.trial.width, p.config.length, p.config.replicate) for p in plan]
    assert cells[:4] == [("ssm", 4, 16, 0), ("ssm", 4, 16, 1), ("ssm", 4, 32, 0), ("ssm", 4, 32, 1)]
    assert [p.state_size for p in plan if p.model_label == "lstm"] == [4] * 4 + [16] * 4
    ssm = plan[0].config
    assert isinstance(ssm, GridConfig) and ssm.model_options == {"state_dim": 1}
    assert ssm.identity()["kind"] == "capacity"
    assert ssm.identity()["evaluation"] == spec.evaluation.model_dump(mode="json")


def test_seeds_follow_the_training_identity_only() -> None:
    plan = plan_grid(make_cap())
    lstm = {
        (p.trial.width, p.config.length, p.config.replicate): p.trial
        for p in plan
        if p.model_label == "lstm"
    }
    # widths of one family and options share a seed (common random numbers) but not keys
    assert lstm[(2, 16, 0)].seed == lstm[(8, 16, 0)].seed
    assert lstm[(2, 16, 0)].key != lstm[(8, 16, 0)].key
    assert lstm[(2, 16, 0)].seed != lstm[(2, 16, 1)].seed != lstm[(2, 32, 0)].seed
    # a different evaluation plan changes every key but trains the same models
    other = cap_dict()
    other["evaluation"]["rows"] = 6
    again = plan_grid(CapacitySpec.from_dict(other))
    assert all(a.trial.key != b.trial.key for a, b in zip(plan, again, strict=True))
    assert [a.trial.seed for a in plan] == [b.trial.seed for b in again]
    # a different budget trains other models
    cheaper = plan_grid(make_cap(budget={"steps": 11, "batch_size": 8, "lr": 0.01}))
    assert plan[0].trial.seed != cheaper[0].trial.seed


def test_spec_round_trips_through_toml(tmp_path: Path) -> None:
    spec = make_cap()
    path = tmp_path / "cap.toml"
    path.write_text(spec.to_toml())
    back = studies.load_study(path)
    assert back == spec and back.spec_hash() == spec.spec_hash()
    assert make_cap(description="other words").spec_hash() == spec.spec_hash()
    assert make_cap(executor={"kind": "local"}).spec_hash() == spec.spec_hash()
    assert make_cap(seed=4).spec_hash() != spec.spec_hash()


def test_default_depths_are_bin_centres() -> None:
    data = cap_dict()
    del data["evaluation"]["depths"]
    spec = CapacitySpec.from_dict(data)
    assert spec.evaluation.depths == bin_centres(10) == [(i + 0.5) / 10 for i in range(10)]


# ---------------------------------------------------------------------------------- errors
def _eval(**changes: Any) -> dict[str, Any]:
    data = cap_dict()
    data["evaluation"].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _eval(depths=[0.25, 1.5]),
            "evaluation.depths[1]: task 'passkey': parameter 'depth' must be 'uniform' or a "
            "number in [0, 1], got 1.5",
        ),
        (_eval(depths=[-0.1]), "evaluation.depths[0]"),
        (
            _eval(lengths=[3, 16]),
            "evaluation.lengths[0] = 3: task 'passkey': length 3 is shorter than the key",
        ),
        (cap_dict(train_lengths=[4]), "train_lengths[0] = 4 does not suit the task"),
        (
            cap_dict(models=[{"family": "ssm", "sizes": [{"width": 4, "state_dim": 0}]}]),
            "models[0]: sizes[0]: model 'ssm': option 'state_dim'",
        ),
        (
            cap_dict(models=[{"family": "lstm", "sizes": [0]}]),
            "models[0]: sizes[0]: width must be an integer >= 1, got 0",
        ),
        (cap_dict(models=[{"family": "lstm", "sizes": []}]), "models[0].sizes"),
        (cap_dict(models=[{"family": "lstm", "sizes": [2, 2]}]), "appears twice"),
        (cap_dict(models=[{"family": "mamba", "sizes": [2]}]), "unknown model family 'mamba'"),
        (
            cap_dict(models=[{"family": "lstm", "options": {"width": 3}, "sizes": [2]}]),
            "'width' is set per size",
        ),
        (_eval(mitigations=[{"name": "m"}]), "set exactly one of"),
        (
            _eval(mitigations=[{"name": "m", "decay_c": 2.0, "window_factor": 1.0}]),
            "set exactly one of",
        ),
        (
            _eval(mitigations=[{"name": "m", "window_factor": 1.0, "renorm_every": 8}]),
            "renorm_every applies only",
        ),
        (_eval(mitigations=[{"name": "none", "decay_c": 2.0}]), "not 'none'"),
        (_eval(mitigations=[{"name": "m", "write_scale": 1.5}]), "write_scale"),
        (_eval(mitigation_rows=5), "mitigation_rows (5) must be <= rows (4)"),
        (_eval(lengths=[16, 16]), "16 appears twice"),
        (cap_dict(analysis={"thresholds": [0.95, 1.5]}), "each threshold must be in (0, 1]"),
        (cap_dict(task={"name": "index_lookup", "params": {}}), "runs the passkey task"),
        (
            cap_dict(task={"name": "passkey", "params": {"depth": 2}}),
            "task: task 'passkey': parameter 'depth'",
        ),
        (cap_dict(colour="red"), "unknown key 'colour'"),
        (cap_dict(threshold=0), "threshold"),
        (cap_dict(seeds=0), "a count of seeds must be >= 1"),
    ],
)
def test_bad_parameters_are_one_line_errors(data: dict[str, Any], expected: str) -> None:
    assert expected in error_of(studies.from_dict, data)


def test_kinds_are_told_apart() -> None:
    assert isinstance(studies.from_dict(spec_dict()), StudySpec)
    assert isinstance(studies.from_dict(cap_dict()), CapacitySpec)
    assert "unknown study kind 'depth'" in error_of(studies.from_dict, cap_dict(kind="depth"))
    # a width spec refuses another kind, pointing at the loader that reads it
    message = error_of(StudySpec.from_dict, spec_dict(kind="capacity"))
    assert "kind: 'capacity' is not a width search" in message and "load_study" in message
    # the width spec's identity (hence every stored hash) does not mention the kind
    assert "kind" not in StudySpec.from_dict(spec_dict()).identity()
    explicit = StudySpec.from_dict(spec_dict(kind="width"))
    assert explicit.spec_hash() == StudySpec.from_dict(spec_dict()).spec_hash()


# ---------------------------------------------------------------------------------- shipped
def test_shipped_state_capacity_covers_the_spec_grid() -> None:
    assert "state_capacity" in studies.shipped() and "state_capacity" in mainjob.shipped()
    spec, origin = mainjob.resolve_study("state_capacity", quick=False)
    assert isinstance(spec, CapacitySpec) and origin == "shipped study state_capacity"
    states = {label: [m.state_size(s) for s in m.sizes] for m, label in spec.model_labels()}
    assert min(states["ssm"]) <= 4 and max(states["ssm"]) >= 256
    assert min(states["lstm"]) <= 4 and max(states["lstm"]) >= 256
    assert max(spec.evaluation.lengths) >= 8192 and len(spec.evaluation.depths) >= 10
    kinds = sorted(m.kind for m in spec.evaluation.mitigations)
    assert kinds == ["forget_more", "state_norm", "window"]
    assert len(spec.train_lengths) >= 2 and len(spec.seeds) >= 2
    quick, _ = mainjob.resolve_study("state_capacity", quick=True)
    assert isinstance(quick, CapacitySpec) and quick.name == "state_capacity-quick"
    assert len(plan_grid(quick)) < len(plan_grid(spec))
    assert max(quick.evaluation.lengths) <= 1024


def test_a_grid_study_file_resolves_by_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(make_cap(name="mine").to_toml())
    spec, origin = mainjob.resolve_study(str(path), quick=False)
    assert isinstance(spec, CapacitySpec) and spec.name == "mine" and "study file" in origin
