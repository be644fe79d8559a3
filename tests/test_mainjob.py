"""The main job as a function: study resolution (--quick), the three stages in order, both ends
of constructions.json, and the report's verdicts returned as data (no training: fake probe and
fake constructive widths)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sepbench import mainjob
from sepbench.errors import UserError
from sepbench.sweep import constructive


def test_quick_uses_the_shipped_quick_study_or_cuts_one_down(study: Path) -> None:
    spec, origin = mainjob.resolve_study("index_lookup", quick=True)
    assert spec.name == "index_lookup-quick" and "index_lookup-quick" in origin
    full, _ = mainjob.resolve_study(str(study), quick=False)
    cut, origin = mainjob.resolve_study(str(study), quick=True)
    assert cut.name == "tiny-quick" and "cut down" in origin
    assert cut.lengths == sorted(full.lengths)[:3] and cut.seeds == full.seeds[:2]
    assert cut.budget.steps == full.budget.steps // 2


class Recorder(mainjob.Listener):
    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def started(self, spec: Any, folder: Path) -> None:
        self.heard.append(("started", folder))

    def swept(self, summary: Any, seconds: float) -> None:
        self.heard.append(("swept", summary))

    def measured(self, curves: Any, seconds: float) -> None:
        self.heard.append(("measured", curves))

    def reported(self, report: Any, seconds: float) -> None:
        self.heard.append(("reported", report))


def test_the_job_returns_what_it_wrote(
    study: Path,
    tmp_path: Path,
    fake_training: None,
    fake_constructions: list[tuple[str, list[int]]],
) -> None:
    spec, _ = mainjob.resolve_study(str(study), quick=False)
    heard = Recorder()
    result = mainjob.run_main_job(spec, tmp_path, executor="inline", progress=False, listener=heard)
    folder = tmp_path / "tiny"
    assert [stage for stage, _ in heard.heard] == ["started", "swept", "measured", "reported"]
    assert heard.heard[1][1] is result.summary and heard.heard[3][1] is result.report
    assert result.folder == folder and set(result.seconds) == {"sweep", "constructions", "report"}

    # the constructive curves in memory are what constructions.json holds, and what the
    # reader for `sepbench report` gives back
    names = constructive.constructions_for("index_lookup")
    assert result.constructions is not None
    assert [c.name for c in result.constructions["index_lookup"]] == names
    assert fake_constructions == [(name, [2, 4, 8]) for name in names]
    cached = json.loads((folder / "constructions.json").read_text())
    assert [e["name"] for e in cached.values()] == names
    in_memory = constructive.report_curves(result.constructions["index_lookup"])
    assert constructive.cached_curves(spec, folder) == in_memory
    assert in_memory["index_lookup_1layer"]["points"] == [(2, 7), (4, 9), (8, 11)]

    # the verdicts returned are the ones report.json records
    assert result.report.path == folder / "tiny-report" / "report.md"
    written = json.loads((folder / "tiny-report" / "report.json").read_text())["pairs"]
    assert [(v.task, v.model, v.law, v.outcome) for v in result.report.verdicts] == [
        (p["task"], p["model"], p["law"], p["outcome"]) for p in written
    ]
    assert [v.alpha for v in result.report.verdicts] == [p["alpha"] for p in written]

    # a second run measures nothing again and trains nothing new
    again = mainjob.run_main_job(spec, tmp_path, executor="inline", progress=False)
    assert again.summary.new_trials == 0 and len(fake_constructions) == len(names)
    assert again.report.verdicts == result.report.verdicts


def test_bad_options_fail_before_anything_is_written(tmp_path: Path, study: Path) -> None:
    spec, _ = mainjob.resolve_study(str(study), quick=False)
    heard = Recorder()
    with pytest.raises(UserError, match="--workers must be >= 0"):
        mainjob.run_main_job(spec, tmp_path, workers=-1, listener=heard)
    with pytest.raises(UserError, match="--threads must be >= 1"):
        mainjob.run_main_job(spec, tmp_path, threads=0, listener=heard)
    assert heard.heard == [] and not (tmp_path / "tiny").exists()


def test_skipped_constructions_are_none_and_draw_nothing(
    study: Path, tmp_path: Path, fake_training: None
) -> None:
    spec, _ = mainjob.resolve_study(str(study), quick=False)
    result = mainjob.run_main_job(
        spec, tmp_path, executor="inline", progress=False, constructions=False
    )
    assert result.constructions is None
    assert not (tmp_path / "tiny" / "constructions.json").exists()
    assert "Construction `" not in result.report.path.read_text()
