"""The shipped studies (sepbench/sweep/studies/*.toml): every one loads, validates against the
real task registry and model zoo, and plans; the default study is the main job's design."""

from __future__ import annotations

import pytest

from sepbench.models.cards import model_class
from sepbench.sweep import TrainingProbe, plan_study
from sepbench.sweep.spec import builtin_studies, load_builtin

STUDIES = builtin_studies()
PRESETS = {"index_lookup", "dyck", "string_equality", "associative_recall", "is_tree"}


def test_every_preset_is_shipped_with_its_quick_variant_for_the_default() -> None:
    assert set(STUDIES) >= PRESETS
    assert "index_lookup-quick" in STUDIES


@pytest.mark.parametrize("name", STUDIES)
def test_preset_loads_validates_and_plans(name: str) -> None:
    spec = load_builtin(name)
    assert spec.name == name and spec.description
    TrainingProbe().validate(spec)  # families, options at the smallest widths, budgets
    plans = plan_study(spec)
    assert len(plans) == len(spec.tasks) * len(spec.models) * len(spec.lengths) * len(spec.seeds)
    assert load_builtin(name).spec_hash() == spec.spec_hash()  # stable identity


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_fit_for_growth_laws(name: str) -> None:
    spec = load_builtin(name)
    assert len(spec.lengths) >= 3 and len(spec.seeds) >= 2
    assert max(spec.lengths) >= 2 * min(spec.lengths)


def test_default_study_is_the_main_job() -> None:
    """index_lookup, a 1-layer Transformer against GRU, LSTM and SSM, lengths spanning at
    least a factor of 8, at least two seeds, seeds trained as ensembles."""
    spec = load_builtin("index_lookup")
    assert [t.name for t in spec.tasks] == ["index_lookup"]
    classes = {m.family: model_class(m.family, m.options) for m in spec.models}
    assert classes == {"transformer": "transformer-1", "gru": "rnn", "lstm": "rnn", "ssm": "rnn"}
    assert max(spec.lengths) >= 8 * min(spec.lengths)
    assert len(spec.seeds) >= 2 and spec.trainer == "ensemble"
    quick = load_builtin("index_lookup-quick")
    assert [m.family for m in quick.models] == [m.family for m in spec.models]
    assert max(quick.lengths) >= 4 * min(quick.lengths) and len(quick.seeds) >= 2
