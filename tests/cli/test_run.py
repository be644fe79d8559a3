"""`sepbench run`: the main job end to end at a tiny scale (a fake probe in place of training,
a fake constructive-width search), resume, --quick, --list and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sepbench.cli as cli
from sepbench import mainjob
from sepbench.sweep import Store, constructive
from tests.sweep.common import make_spec


@pytest.fixture(autouse=True)
def run_group(monkeypatch: pytest.MonkeyPatch, fake_training: None) -> None:
    """Register the group (until the lead adds it to _GROUPS); no training (``fake_training``)."""
    if "run" not in cli._GROUPS:
        monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, "run"))


def run(*args: str) -> int:
    return cli.main(["run", *args, "--executor", "inline", "--no-progress"])


def _undated(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("- generated "))


def test_run_writes_store_constructions_and_report(
    study: Path,
    tmp_path: Path,
    fake_constructions: list[tuple[str, list[int]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "runs"
    assert run("--study", str(study), "--out", str(out)) == 0
    text = capsys.readouterr().out
    folder = out / "tiny"
    assert (folder / "tiny.sqlite").is_file()
    report = folder / "tiny-report" / "report.md"  # where `sepbench report` writes it too
    assert report.is_file() and list((folder / "tiny-report" / "figures").glob("*.png"))
    names = constructive.constructions_for("index_lookup")
    assert names[0] == "index_lookup_1layer"  # the ones with a width knob come first
    assert fake_constructions == [(name, [2, 4, 8]) for name in names]
    cached = json.loads((folder / "constructions.json").read_text())
    assert [e["name"] for e in cached.values()] == names
    data = json.loads((folder / "tiny-report" / "report.json").read_text())
    assert [(p["task"], p["model"]) for p in data["pairs"]] == [("index_lookup", "lstm")]
    assert "index_lookup / lstm: " in text and f"report: {report}" in text
    assert "sweep: " in text and "constructions: index_lookup_1layer (B24-T1)" in text
    with Store.open(folder / "tiny.sqlite") as store:
        trials = store.count()

    # `sepbench report` re-renders the same report, constructions included (from the cache)
    first = report.read_text()
    assert "Construction `index_lookup_prefix_rnn` (B24-T3)" in first  # the LSTM's class
    assert cli.main(["report", str(folder)]) == 0
    capsys.readouterr()
    assert _undated(report.read_text()) == _undated(first)

    # a second run resumes: nothing new to train, the constructive widths come from the cache
    assert run("--study", str(study), "--out", str(out)) == 0
    again = capsys.readouterr().out
    assert f"sweep: {trials} trials (0 new)" in again
    assert len(fake_constructions) == len(names)


def test_no_constructions_says_so(study: Path, tmp_path: Path, capsys: Any) -> None:
    assert run("--study", str(study), "--out", str(tmp_path), "--no-constructions") == 0
    assert "constructions: skipped (--no-constructions)" in capsys.readouterr().out


def test_task_without_construction_is_skipped_with_a_line(tmp_path: Path, capsys: Any) -> None:
    from sepbench.sweep import constructive

    task = "mqar"
    assert not constructive.constructions_for(task), f"{task} has a construction now: pick another"
    path = tmp_path / "mq.toml"
    spec = make_spec(
        name="mq",
        lengths=[16, 32, 64],
        tasks=[{"name": task, "params": {"pairs": 4, "vocab": 64}}],
        models=[{"family": "lstm"}],
    )
    path.write_text(spec.to_toml())
    assert run("--study", str(path), "--out", str(tmp_path)) == 0
    assert f"constructions: none registered for task {task}; skipped" in capsys.readouterr().out


def test_unknown_study_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--study", "no_such_study") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("sepbench: error: unknown study 'no_such_study'; shipped studies: ")
    assert "index_lookup" in err


def test_bad_workers_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--workers", "-1") == 2
    assert capsys.readouterr().err.strip().startswith("sepbench: error: --workers must be")


def test_list_names_the_shipped_studies(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(":")[0].split()[0] for line in lines]
    assert names == mainjob.shipped()
    assert any(line.startswith("index_lookup (default): ") for line in lines)
    assert not any(name.endswith("-quick") for name in names)


def test_default_study_is_index_lookup() -> None:
    args = cli.build_parser().parse_args(["run"])
    assert args.study == mainjob.DEFAULT_STUDY == "index_lookup"
    assert args.out == "runs" and not args.quick
