"""Study specs: TOML and Python forms, strict validation with one-line errors naming the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sepbench.errors import UserError
from sepbench.sweep import (
    Budget,
    ModelSpec,
    StudySpec,
    TaskSpec,
    WidthSearch,
    load_spec,
)
from tests.sweep.common import make_spec, spec_dict

TOML = """
name = "unit"
seed = 7
lengths = [4, 8]
seeds = 2
threshold = 0.9

[[tasks]]
name = "index_lookup"
params = { alphabet = 4 }

[[models]]
family = "lstm"

[[models]]
family = "tf"
options = { heads = 2 }

[budget]
steps = 10
batch_size = 8
lr = 0.001

[width]
min = 1
max = 64
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def error_of(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_toml_and_python_forms_are_equal(tmp_path: Path) -> None:
    from_toml = load_spec(write(tmp_path, TOML))
    in_python = StudySpec(
        name="unit",
        seed=7,
        lengths=[4, 8],
        seeds=[0, 1],
        threshold=0.9,
        tasks=[TaskSpec(name="index_lookup", params={"alphabet": 4})],
        models=[ModelSpec(family="lstm"), ModelSpec(family="tf", options={"heads": 2})],
        budget=Budget(steps=10, batch_size=8, lr=0.001),
        width=WidthSearch(min=1, max=64),
    )
    assert from_toml == in_python == make_spec()
    assert from_toml.spec_hash() == in_python.spec_hash()


def test_to_toml_round_trips(tmp_path: Path) -> None:
    spec = make_spec(
        description='quotes " and \\ survive',
        models=[{"family": "tf", "options": {"heads": 2, "norm": True}, "width": {"max": 32}}],
        budget={"steps": 5, "batch_size": 4, "lr": 0.01, "scale": "sqrt", "options": {"x": 1.5}},
    )
    assert load_spec(write(tmp_path, spec.to_toml())) == spec


def test_seeds_count_means_replicates_0_to_n_minus_1() -> None:
    assert make_spec(seeds=3).seeds == [0, 1, 2]
    assert make_spec(seeds=[5, 9]).seeds == [5, 9]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"colour": "red"}, "unknown key 'colour' (allowed: name, description, seed"),
        (
            {"models": [{"family": "lstm"}, {"family": "tf", "famly": "x"}]},
            "models[1]: unknown key 'famly' (allowed: family, options, width, label)",
        ),
        ({"budget": {"steps": 1, "batch_size": 1, "lr": 1.0, "lr_decay": 2}}, "budget: unknown"),
        ({"width": {"max": 8, "minimum": 1}}, "width: unknown key 'minimum'"),
        ({"executor": {"kind": "local", "cores": 3}}, "executor: unknown key 'cores'"),
    ],
)
def test_unknown_key_is_named(overrides: dict, expected: str) -> None:
    assert expected in error_of(StudySpec.from_dict, spec_dict(**overrides))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"models": [{"family": "lstm"}, {"family": 3}]}, "models[1].family: "),
        ({"lengths": [4, 0]}, "lengths[1]: Input should be greater than or equal to 1, got 0"),
        ({"lengths": [4, "8"]}, "lengths[1]: "),
        ({"lengths": [4, 4]}, "lengths: 4 appears twice"),
        ({"lengths": []}, "lengths: "),
        ({"seeds": 0}, "seeds: a count of seeds must be >= 1"),
        ({"seeds": [1, True]}, "seeds[1]: "),
        ({"threshold": 1.5}, "threshold: Input should be less than or equal to 1"),
        ({"threshold": "high"}, "threshold: "),
        ({"name": "a/b"}, "name: must be letters, digits"),
        ({"budget": {"steps": 0, "batch_size": 1, "lr": 1.0}}, "budget.steps: "),
        ({"budget": {"steps": 1, "batch_size": 1}}, "budget: required key 'lr' is missing"),
        (
            {"budget": {"steps": 1, "batch_size": 1, "lr": 1.0, "scale": "cubic"}},
            "budget.scale: Input should be 'constant', 'linear', 'sqrt' or 'log'",
        ),
        (
            {"budget": {"steps": 1, "batch_size": 1, "lr": 1.0, "options": {"lr": 2.0}}},
            "budget.options: 'lr' is set by the budget itself",
        ),
        ({"width": {"min": 9, "max": 8}}, "width: max (8) must be >= min (9)"),
        ({"width": {"min": 5, "max": 7, "resolution": 4}}, "width: no multiple of resolution 4"),
        (
            {"models": [{"family": "lstm", "options": {"depth": [1, 2]}}]},
            "models[0].options.depth: must be a number, a string or a boolean",
        ),
        (
            {"models": [{"family": "lstm", "options": {"width": 8}}]},
            "models[0].options: 'width' is what the search varies",
        ),
        ({"executor": {"kind": "slurm"}}, "executor.kind: "),
        ({"tasks": [{"name": "index_lookup"}, {"name": "sudoku"}]}, "tasks[1]: unknown task"),
        (
            {"tasks": [{"name": "index_lookup", "params": {"alphabet": 1}}]},
            "tasks[0]: task 'index_lookup': parameter 'alphabet' must be an integer >= 2",
        ),
        (
            {"tasks": [{"name": "index_lookup", "params": {"colour": 1}}]},
            "tasks[0]: task 'index_lookup': unknown parameter 'colour'",
        ),
        (
            {"tasks": [{"name": "index_lookup", "params": {"max_length": 6}}]},
            "lengths[1] = 8 does not suit tasks[0]",
        ),
        (
            {"models": [{"family": "lstm"}, {"family": "lstm"}]},
            "models: two entries are both labelled 'lstm'",
        ),
    ],
)
def test_bad_value_is_one_line_naming_the_key(overrides: dict, expected: str) -> None:
    assert expected in error_of(StudySpec.from_dict, spec_dict(**overrides))


def test_several_problems_are_counted_not_listed() -> None:
    message = error_of(StudySpec.from_dict, spec_dict(lengths=[0], threshold=2.0))
    assert message.endswith("(and 1 more problem)")


def test_python_constructor_raises_user_error_naming_the_key() -> None:
    message = error_of(ModelSpec, family="tf", optoins={})
    assert "unknown key 'optoins'" in message
    assert "width: required key 'max' is missing" in error_of(
        StudySpec, **{**spec_dict(), "width": {"min": 1}}
    )


def test_file_errors(tmp_path: Path) -> None:
    assert "does not exist" in error_of(load_spec, tmp_path / "nope.toml")
    assert "invalid TOML" in error_of(load_spec, write(tmp_path, "name = "))
    assert str(tmp_path / "study.toml") in error_of(load_spec, write(tmp_path, TOML + "x = 1\n"))


def test_same_task_twice_gets_distinct_labels() -> None:
    spec = make_spec(
        tasks=[
            {"name": "index_lookup", "params": {"alphabet": 2}},
            {"name": "index_lookup", "params": {"alphabet": 8}},
        ]
    )
    assert [lbl for _, lbl in spec.task_labels()] == [
        "index_lookup(alphabet=2)",
        "index_lookup(alphabet=8)",
    ]


def test_identity_ignores_executor_and_description() -> None:
    a = make_spec()
    b = make_spec(executor={"kind": "ray", "workers": 8}, description="moved to the cluster")
    assert a.spec_hash() == b.spec_hash()
    assert make_spec(seed=8).spec_hash() != a.spec_hash()


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ("constant", [100, 100, 100]),
        ("linear", [100, 200, 400]),
        ("sqrt", [100, 142, 200]),
        ("log", [100, 150, 200]),
    ],
)
def test_budget_scaling_rule(scale: str, expected: list[int]) -> None:
    budget = Budget(steps=100, batch_size=1, lr=1.0, scale=scale)
    assert [budget.steps_at(n, 4) for n in (4, 8, 16)] == expected
    capped = Budget(steps=100, batch_size=1, lr=1.0, scale=scale, steps_cap=150)
    assert [capped.steps_at(n, 4) for n in (4, 8, 16)] == [min(150, e) for e in expected]
    explicit = Budget(steps=100, batch_size=1, lr=1.0, scale=scale, reference_length=8)
    assert explicit.steps_at(8, 4) == 100
    assert math.isclose(Budget(steps=1, batch_size=1, lr=1, scale="linear").lr, 1.0)
