"""`sepbench report`: paths, defaults, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from sepbench import cli
from sepbench.cli.report import resolve_store
from sepbench.errors import UserError
from sepbench.report import write_report

pytestmark = pytest.mark.usefixtures("fake_figures")


@pytest.fixture(autouse=True)
def report_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the group for these tests (the lead adds it to cli._GROUPS)."""
    if "report" not in cli._GROUPS:
        monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, "report"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_report_of_a_study_directory_with_the_default_out(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(tiny_store, study / "tiny.sqlite")
    code, out, err = run(["report", str(study), "--formats", "png"], capsys)
    assert code == 0, err
    # the GRU at N ≤ 16 under the RNN lower bounds (p = 32, ε = 0.1): they ask for less than
    # one unit, the grid's smallest width, so they cannot bind — vacuous, never "consistent"
    assert out.splitlines() == [
        "index_lookup / gru: linear; vacuous (B24-T3 vacuous; W24-R vacuous)",
        f"report: {study / 'tiny-report' / 'report.md'}",
    ]
    data = json.loads((study / "tiny-report" / "report.json").read_text())
    assert data["precision_bits"] == 32 and data["pairs"][0]["outcome"] == "vacuous"


def test_options_precision_and_constructions(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cons = tmp_path / "cons.json"
    cons.write_text(json.dumps({"c": {"task": "dyck", "result_id": "B24-E", "points": [[4, 7]]}}))
    out_dir = tmp_path / "r"
    argv = ["report", str(tiny_store), "--out", str(out_dir), "--formats", "png"]
    code, _, err = run([*argv, "--precision", "16", "--constructions", str(cons)], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "report.json").read_text())["precision_bits"] == 16


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: d / "missing", [], "does not exist"),
        (lambda d: d, [], "holds no results store"),
        (lambda d: (d / "a.txt").write_text("hello") and d / "a.txt", [], "not a sepbench"),
        (lambda d: d / "x", ["--constructions", "/nonexistent.json"], None),
        (lambda d: d / "x", ["--precision", "0"], None),
    ],
    ids=["missing", "empty-dir", "not-sqlite", "constructions-file", "precision"],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path,
    tiny_store: Path,
    capsys: pytest.CaptureFixture[str],
    make,  # type: ignore[no-untyped-def]
    extra: list[str],
    message: str | None,
) -> None:
    source = make(tmp_path) if message else tiny_store
    code, out, err = run(["report", str(source), "--out", str(tmp_path / "o"), *extra], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("sepbench: error: ")
    if message:
        assert message in err
    assert not (tmp_path / "o").exists()


def test_resolve_store_errors(tmp_path: Path, tiny_store: Path) -> None:
    for name in ("a.sqlite", "b.sqlite"):
        shutil.copy(tiny_store, tmp_path / name)
    with pytest.raises(UserError, match=r"holds 2 stores \(a.sqlite, b.sqlite\); name one"):
        resolve_store(tmp_path)
    assert resolve_store(tmp_path / "a.sqlite") == tmp_path / "a.sqlite"
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(UserError, match="not a sepbench results store"):
        write_report(other, tmp_path / "out")
