"""`sepbench sweep` and `sepbench results show | export` (fake probe in place of training)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import sepbench.cli as cli
from sepbench.sweep import FakeProbe
from tests.sweep.common import make_spec


@pytest.fixture(autouse=True)
def sweep_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the group (until the lead adds it to _GROUPS) and fake the training probe."""
    if "sweep" not in cli._GROUPS:
        monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, "sweep"))
    monkeypatch.setattr(
        "sepbench.sweep.probes.TrainingProbe",
        lambda device=None: FakeProbe(law="linear", coef={"lstm": 2.0}),
    )


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(make_spec().to_toml())
    return path


def sweep(*args: str) -> int:
    return cli.main(["sweep", *args, "--executor", "inline", "--no-progress"])


def test_sweep_show_export(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert sweep(str(study), "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "index_lookup  lstm   4  8      [8, 8]" in text
    assert f"store: {out / 'unit.sqlite'} (" in text
    store = str(out / "unit.sqlite")

    assert cli.main(["results", "show", store, "--searches"]) == 0
    text = capsys.readouterr().out
    assert "8/8 searches finished" in text and "index_lookup / tf N=8 seed#1: 8 (done" in text

    assert cli.main(["results", "show", store, "--spec"]) == 0
    assert 'name = "unit"' in capsys.readouterr().out

    assert cli.main(["results", "export", store, "--csv", str(tmp_path / "t.csv")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) > 8
    assert cli.main(["results", "export", store, "--table", "widths"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("task,model,length,median") and len(lines) == 5

    # again: nothing new to run
    assert sweep(str(study), "--out", str(out)) == 0
    assert ", 0 new," in capsys.readouterr().out


def test_dry_run(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(str(study), "--dry-run") == 0
    text = capsys.readouterr().out
    assert "study unit: 8 searches -> runs/unit.sqlite" in text
    assert "index_lookup / tf N=8 seed#1  widths 1..64 step 1, 10 steps" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name = ", "invalid TOML"),
        (
            make_spec().to_toml().replace("[width]", "[width]\nstep = 2"),
            "width: unknown key 'step'",
        ),
    ],
)
def test_bad_spec_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert sweep(str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("sepbench: error: ") and expected in err
    assert err.count("\n") == 1


def test_bad_store_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "x.sqlite"
    bogus.write_text("not a database at all")
    for args in (["results", "show", str(bogus)], ["results", "export", str(bogus)]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "not an SQLite database" in err and err.count("\n") == 1
    assert cli.main(["results", "show", str(tmp_path / "none.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_workers(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(str(study), "--workers", "-1") == 2
    assert "--workers must be >= 0" in capsys.readouterr().err


def test_builtin_study_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep("smoke", "--dry-run") == 0
    assert "study smoke: 8 searches" in capsys.readouterr().out
    assert sweep("no-such-study") == 2
    err = capsys.readouterr().err
    assert "does not exist (built-in studies: " in err and "smoke" in err


def test_builtin_studies_are_valid_for_training() -> None:
    from sepbench.sweep import TrainingProbe
    from sepbench.sweep.spec import builtin_studies, load_builtin

    for name in builtin_studies():
        spec = load_builtin(name)
        assert spec.name == name
        TrainingProbe().validate(spec)
