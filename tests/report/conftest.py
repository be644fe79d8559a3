"""Studies with known answers for the report tests (a law-per-model probe; no training).

The main study (index_lookup, alphabet 4, N = 4..64, two seeds, widths 1..64):

* ``tf``     transformer, width = ceil(3·log2 N)      -> B24-T1 (log upper bound): consistent
* ``tf-lin`` transformer, width = N                    -> grows faster than log: inconsistent
* ``lstm``   LSTM, width = ceil(1.5·N), > 64 at N = 64 -> censored; above B24-T3/W24-R: consistent
* ``elman``  Elman, width = 1 at every N               -> below the RNN lower bound: inconsistent

The ``tf`` trials also carry length-generalisation records (the report's hook).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sepbench.report import write_report
from sepbench.sweep import ProbeOutcome, StudySpec, TrialSpec, run_study

LAWS: dict[str, Callable[[int], float]] = {
    "log": lambda n: math.log2(n),
    "linear": float,
    "constant": lambda n: 1.0,
}


@dataclass(frozen=True)
class LawProbe:
    """Success iff width >= ceil(coef · law(N)), with the law chosen per model label."""

    laws: dict[str, tuple[str, float]]
    length_eval: tuple[str, ...] = ()
    wall_s: float = 0.25
    extra: dict[str, Any] = field(default_factory=dict)

    def threshold(self, trial: TrialSpec) -> int:
        law, coef = self.laws[trial.search.model_label]
        return max(1, math.ceil(coef * LAWS[law](trial.search.length) - 1e-9))

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        need = self.threshold(trial)
        reached = trial.width >= need
        details: dict[str, Any] = {}
        if reached and trial.search.model_label in self.length_eval:
            details["length_eval"] = [
                {
                    "length": n,
                    "sequence_accuracy": 1.0
                    if n <= trial.search.length
                    else trial.search.length / n,
                }
                for n in (4, 8, 16, 32, 64, 128)
            ]
        return ProbeOutcome(
            reached=reached,
            accuracy=1.0 if reached else min(0.9, trial.width / need),
            steps=trial.search.budget.steps,
            wall_s=self.wall_s,
            details=details,
        )


MAIN_MODELS = [
    {"family": "transformer", "label": "tf"},
    # distinct options: a model spec that differs only by label is the same experiment (the
    # sweep shares its searches), and the law-per-label probe needs them apart
    {"family": "transformer", "label": "tf-lin", "options": {"pos": "sinusoidal"}},
    {"family": "lstm", "label": "lstm"},
    {"family": "elman", "label": "elman"},
]
MAIN_PROBE = LawProbe(
    {
        "tf": ("log", 3.0),
        "tf-lin": ("linear", 1.0),
        "lstm": ("linear", 1.5),
        "elman": ("constant", 1.0),
    },
    length_eval=("tf",),
)


def study(name: str, models: list[dict[str, Any]], lengths: list[int], seeds: int) -> StudySpec:
    return StudySpec.from_dict(
        {
            "name": name,
            "seed": 3,
            "lengths": lengths,
            "seeds": seeds,
            "threshold": 0.9,
            "tasks": [{"name": "index_lookup", "params": {"alphabet": 4}}],
            "models": models,
            "budget": {"steps": 10, "batch_size": 8, "lr": 0.001, "scale": "linear"},
            "width": {"min": 1, "max": 64},
        }
    )


@pytest.fixture(scope="session")
def main_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("main")
    spec = study("known", MAIN_MODELS, [4, 8, 16, 32, 64], 2)
    run_study(spec, out, executor="inline", probe=MAIN_PROBE, progress=False)
    return out / "known.sqlite"


@pytest.fixture(scope="session")
def main_report(main_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full report (PNG and SVG) of the main study; returns report.md."""
    return write_report(main_store, tmp_path_factory.mktemp("report") / "out", n_boot=200)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model, three lengths, one seed: for the tests that write several reports."""
    out = tmp_path_factory.mktemp("tiny")
    spec = study("tiny", [{"family": "gru"}], [4, 8, 16], 1)
    run_study(spec, out, executor="inline", probe=LawProbe({"gru": ("linear", 1.0)}),
              progress=False)  # fmt: skip
    return out / "tiny.sqlite"


@pytest.fixture
def fake_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip rendering (tests about paths and atomicity; the main report renders for real)."""
    from sepbench.report import plots

    def save(fig: Any, stem: Path, formats: Any = plots.FORMATS) -> list[Path]:
        paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
        for path in paths:
            path.write_bytes(b"not rendered")
        return paths

    monkeypatch.setattr(plots, "save", save)
