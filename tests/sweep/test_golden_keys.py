"""Trial keys, search keys and derived seeds are pinned: existing stores must keep resuming.

A store finds its finished trials by key (the sha256 of the trial's canonical configuration)
and the search derives its training seeds from the search key, so any change to how a trial
describes itself — a renamed field, a budget that changes form on its way, a default added to
the configuration — would orphan every stored trial. The digests below were computed with the
code before trials began referring to their search's configuration (commit 003b0a2, where
``TrialSpec`` still copied ``SearchPlan`` field by field); the shipped store of
``docs/results/index_lookup`` must also be reproduced trial by trial.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from sepbench.sweep import Budget, FakeProbe, Store, TrialBudget, plan_study
from sepbench.sweep.laws import LAWS
from sepbench.sweep.trial import canonical_json
from tests.sweep.common import make_spec

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "index_lookup"

SPECS: dict[str, dict[str, Any]] = {
    "single": {},
    "ensemble-scaled": {
        "trainer": "ensemble",
        "lengths": [4, 8, 16],
        "budget": {
            "steps": 100,
            "batch_size": 8,
            "lr": 0.001,
            "scale": "linear",
            "steps_cap": 300,
            "options": {"warmup": 5, "eval_every": 10},
        },
        "width": {"min": 2, "max": 64, "per_octave": 4, "start": "previous"},
    },
    "sqrt-reference": {
        "seed": 3,
        "lengths": [3, 7],
        "seeds": [4],
        "threshold": 0.5,
        "budget": {
            "steps": 33,
            "batch_size": 5,
            "lr": 0.25,
            "scale": "sqrt",
            "reference_length": 2,
        },
        "models": [{"family": "gru", "options": {"layers": 2}, "label": "deep"}],
    },
}

FIRST_TRIAL = (
    "9027e7df78b7f75fd710268eaf5581952d64d857a58520778d5efce121ee1daf",
    "2a8cf8df3639d8748bb3a42fb06834f5555a52a756a2e8a1e525b011036aeaa0",
    1966924397365401331,
)
FIRST_CONFIG = {
    "task": {"name": "index_lookup", "params": {"alphabet": 4, "max_length": 1024}},
    "model": {"family": "lstm", "options": {}},
    "length": 4,
    "replicate": 0,
    "threshold": 0.9,
    "budget": {"steps": 10, "batch_size": 8, "lr": 0.001, "options": {}},
    "study_seed": 7,
    "width": 1,
    "attempt": 0,
    "seed": 1966924397365401331,
}


def _fingerprint(name: str) -> str:
    """sha256 over every search of the spec: its search key, its seeds for attempts 0-2, and
    for three widths and two attempts the trial's key, batch key and canonical config."""
    plans = plan_study(make_spec(**SPECS[name]))
    parts: list[Any] = []
    for plan in plans:
        parts += [plan.search_key, plan.seed(0), plan.seed(1), plan.seed(2)]
        for width in plan.grid.widths()[:3]:
            for attempt in (0, 1):
                trial = plan.trial(width, attempt)
                parts += [trial.key, trial.search_key, trial.batch_key(), trial.seed]
                parts.append(canonical_json(trial.config()))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


PINNED = {
    "single": "7218434eaa2a574cef8717478403103dc6356702304817b7d909c571832cbc30",
    "ensemble-scaled": "1337016e17a7de69345b890f94349cd228ceddd0a9aa465ebf0560192e344d93",
    "sqrt-reference": "1ed12889d748d9ea9cc17d7498b87b7cfc73a2cd3dc3e5485eaf8519e26fb450",
}


@pytest.mark.parametrize("name", list(SPECS))
def test_keys_and_seeds_are_pinned(name: str) -> None:
    assert _fingerprint(name) == PINNED[name]


def test_first_trial_of_a_study_is_pinned() -> None:
    plan = plan_study(make_spec())[0]
    trial = plan.trial(1)
    assert (trial.key, trial.search_key, trial.seed) == FIRST_TRIAL
    assert trial.config() == FIRST_CONFIG


def test_the_shipped_store_is_reproduced_trial_by_trial() -> None:
    """Every trial of docs/results/index_lookup: its key, search key, seed and stored
    configuration come out of today's plan for the stored spec."""
    with Store.open(RESULTS / "index_lookup.sqlite") as store:
        spec = store.spec()
        records = store.records()
    plans = {p.search_key: p for p in plan_study(spec)}
    assert records
    for r in records:
        trial = plans[r.search_key].trial(r.width, r.attempt)
        assert (trial.key, trial.seed) == (r.key, r.seed)
        assert trial.config() == r.config


def test_a_trial_refers_to_its_search_and_survives_pickling() -> None:
    """The trial holds its search's configuration itself (no field-by-field copy), and a trial
    sent to a worker process (pickle) keeps its key, search key and seed."""
    plan = plan_study(make_spec(**SPECS["ensemble-scaled"]))[5]
    trial = plan.trial(8, 1)
    assert trial.search is plan.config and trial.search_key == plan.search_key
    back = pickle.loads(pickle.dumps(trial))
    assert (back.key, back.search_key, back.seed) == (trial.key, trial.search_key, trial.seed)
    assert back == trial and back.batch_key() == trial.batch_key()
    assert json.loads(json.dumps(asdict(trial)))["search"]["budget"] == asdict(trial.search.budget)


def test_one_table_of_growth_laws_scales_budgets_and_fake_probes() -> None:
    scales = typing.get_args(Budget.model_fields["scale"].annotation)
    assert set(scales) == set(LAWS)
    budget = Budget(steps=100, batch_size=4, lr=0.5, scale="sqrt", options={"warmup": 3})
    assert budget.steps_at(64, 16) == 200 and budget.steps_at(4, 16) == 50
    resolved = budget.at(64, 16)
    assert resolved == TrialBudget(200, 4, 0.5, {"warmup": 3})
    trainer = resolved.for_trainer()
    assert (trainer.max_steps, trainer.batch_size, trainer.lr, trainer.warmup) == (200, 4, 0.5, 3)
    assert FakeProbe(law="sqrt").threshold("lstm", 64) == 8
    assert FakeProbe(law="log").threshold("lstm", 1) == 1  # log2(max(N, 2))
