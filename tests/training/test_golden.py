"""Pinned outcomes of small training runs: the trainer's refactorings change no result.

``golden_fit.json`` was computed with the trainer as it stood before ``fit`` and
``fit_ensemble`` became one loop, ``train`` (commit 003b0a2: two loops, ``fit`` calling a
single model's forward, ``train_ensemble`` a batched one). Every case below must give the same
outcome today: the same stop, steps, accuracies (exact: they are ratios of counts), the same
evaluation history, and the same losses to 1e-6 relative. ``fit`` reproduces them bitwise on
the machine that pinned them (the tolerance only absorbs another CPU's kernels); an ensemble
member's training loss differs in float32's last bits, as the one loop divides the summed loss
in float64 (``fit``'s rule) where the old ensemble loop divided in float32. Regenerate the file
only for an intended change of results: ``python -m tests.training.test_golden``. (The
``scoring`` keys — "teacher forced" for index lookup — were added to the pinned records by
hand when results started recording how they were scored; no value changed. The RNN options
``forget_bias`` and ``recurrent_init`` were added to the recorded model options by hand when
they were introduced: at their defaults they draw nothing, and every outcome stayed as
pinned.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sepbench import models, tasks, training

GOLDEN = Path(__file__).with_name("golden_fit.json")
TASK = tasks.make("index_lookup", max_length=16)
LOSS_KEYS = frozenset({"loss", "train_loss"})


def _budget(**changes: Any) -> training.Budget:
    base = {"max_steps": 60, "warmup": 10, "eval_every": 20, "eval_batch": 64}
    return training.Budget(**{**base, "confirm_batch": 256, "lr": 1e-2, **changes})


FIT_CASES: dict[str, dict[str, Any]] = {
    "lstm": {"family": "lstm", "width": 8, "length": 8, "seed": 3},
    "gru": {"family": "gru", "width": 8, "length": 8, "seed": 3},
    "elman-noclip": {
        "family": "elman",
        "width": 8,
        "length": 8,
        "seed": 1,
        "budget": {"grad_clip": 0.0},
    },
    "ssm": {"family": "ssm", "width": 8, "length": 8, "seed": 0},
    "transformer-reaches": {
        "family": "transformer",
        "width": 16,
        "options": {"layers": 1},
        "length": 6,
        "seed": 0,
        "threshold": 0.95,
        "budget": {"max_steps": 400, "eval_every": 25},
    },
    "lstm-diverges": {
        "family": "lstm",
        "width": 8,
        "length": 8,
        "seed": 0,
        "budget": {"lr": 1e30, "grad_clip": 0.0, "warmup": 0},
    },
}

ENSEMBLE_CASES: dict[str, dict[str, Any]] = {
    "lstm": {"family": "lstm", "width": 8, "length": 8, "seeds": [0, 1, 2]},
    "transformer-stops-apart": {
        "family": "transformer",
        "width": 16,
        "options": {"layers": 1},
        "length": 6,
        "seeds": [0, 1],
        "threshold": 0.95,
        "budget": {"max_steps": 400, "eval_every": 25},
    },
    "gru-one": {"family": "gru", "width": 8, "length": 8, "seeds": [5]},
    "elman-diverges": {
        "family": "elman",
        "width": 8,
        "length": 8,
        "seeds": [0, 1],
        "budget": {"lr": 1e30, "grad_clip": 0.0, "warmup": 0},
    },
}


def _plain(result: training.TrialResult) -> dict[str, Any]:
    d = result.to_dict()
    d.pop("wall_time")
    return d


def run_fit(case: dict[str, Any]) -> dict[str, Any]:
    options = case.get("options", {})
    model = models.build(case["family"], len(TASK.vocab), case["width"], seed=7, **options)
    result = training.fit(
        model,
        TASK,
        case["length"],
        _budget(**case.get("budget", {})),
        seed=case["seed"],
        threshold=case.get("threshold", 0.99),
    )
    return _plain(result)


def run_ensemble(case: dict[str, Any]) -> list[dict[str, Any]]:
    options = case.get("options", {})
    seeds = case["seeds"]
    ensemble = models.build_ensemble(
        case["family"], len(TASK.vocab), case["width"], seeds, **options
    )
    outcome = training.train(
        ensemble,
        TASK,
        case["length"],
        _budget(**case.get("budget", {})),
        seeds,
        case.get("threshold", 0.99),
    )
    return [_plain(r) for r in outcome.results]


def _same(actual: Any, expected: Any, key: str = "") -> None:
    """Equal, losses to 1e-6 relative (NaN equals NaN); names the first difference."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), key
        for k in expected:
            _same(actual[k], expected[k], f"{key}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), key
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _same(a, e, f"{key}[{i}]")
    elif key.rsplit(".", 1)[-1] in LOSS_KEYS and isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), key
        else:
            assert actual == pytest.approx(expected, rel=1e-6), key
    else:
        assert actual == expected, key


def _golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", list(FIT_CASES))
def test_fit_outcome_is_pinned(name: str) -> None:
    _same(run_fit(FIT_CASES[name]), _golden()["fit"][name], name)


@pytest.mark.parametrize("name", list(ENSEMBLE_CASES))
def test_fit_ensemble_outcome_is_pinned(name: str) -> None:
    _same(run_ensemble(ENSEMBLE_CASES[name]), _golden()["ensemble"][name], name)


def test_the_pins_cover_every_way_a_trial_stops() -> None:
    stops = {r["stop"] for r in _golden()["fit"].values()}
    stops |= {m["stop"] for ms in _golden()["ensemble"].values() for m in ms}
    assert stops == {"reached", "budget", "diverged"}
    steps = [m["steps"] for m in _golden()["ensemble"]["transformer-stops-apart"]]
    assert len(set(steps)) == 2  # the members stop at different steps


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    pinned = {
        "fit": {name: run_fit(case) for name, case in FIT_CASES.items()},
        "ensemble": {name: run_ensemble(case) for name, case in ENSEMBLE_CASES.items()},
    }
    GOLDEN.write_text(json.dumps(pinned, indent=1, allow_nan=True) + "\n", encoding="utf-8")
