"""`sepbench tasks ...`: output, exports, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sepbench import tasks
from sepbench.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == tasks.names()


@pytest.mark.parametrize("name", tasks.names())
def test_show_every_task(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run(capsys, "tasks", "show", name)
    assert code == 0
    assert out.startswith(name + ":") and "example (N = " in out


def test_show_with_a_small_max_length_shows_a_shorter_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["tasks", "show", "addition", "--param", "index_hints=true", "--param", "max_length=4"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "example (N = 4, seed 0)" in out


def test_sample_prints_the_solver_answer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "tasks",
        "sample",
        "index_lookup",
        "--length",
        "6",
        "-n",
        "5",
        "--param",
        "alphabet=3",
    )
    assert code == 0
    task = tasks.make("index_lookup", alphabet=3)
    lines = out.splitlines()
    assert len(lines) == 5
    for line in lines:
        inp, answer = line.split("  →  ")
        assert task.solve(inp.split()) == [answer]


def test_export_writes_the_jsonl_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.jsonl"
    argv = ["tasks", "export", "dyck", "--length", "8", "--count", "5000", "--seed", "3"]
    code, _, _ = run(capsys, *argv, "--param", "depth=3", "-o", str(out))
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5000
    task = tasks.make("dyck", depth=3)
    assert [r["index"] for r in records] == list(range(5000))
    for r in records[:200] + records[-200:]:
        assert r["task"] == "dyck" and r["params"] == {"types": 2, "depth": 3}
        assert r["length"] == 8 and r["seed"] == 3
        assert [tok for _, tok in r["targets"]] == task.solve(r["input"])
    # same arguments -> same bytes
    again = tmp_path / "e.jsonl"
    run(capsys, *argv, "--param", "depth=3", "-o", str(again))
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["tasks", "sample", "nope", "--length", "4"], "unknown task 'nope'; known tasks:"),
        (["tasks", "sample", "dyck", "--length", "4", "--param", "depht=2"], "allowed: types"),
        (["tasks", "sample", "dyck", "--length", "4", "--param", "depth=0"], "'depth' must be"),
        (["tasks", "sample", "dyck", "--length", "4", "--param", "depth"], "KEY=VALUE"),
        (["tasks", "sample", "dyck", "--length", "7"], "length"),
        (["tasks", "sample", "dyck", "--length", "x"], "invalid int value"),
        (["tasks", "sample", "dyck", "--length", "8", "-n", "0"], "--count must be >= 1"),
        (["tasks", "frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_export_errors_leave_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-dir" / "x.jsonl"
    code, _, err = run(
        capsys, "tasks", "export", "dyck", "--length", "8", "--count", "3", "-o", str(target)
    )
    assert code == 2 and "does not exist" in err
    # a bad parameter is reported before anything is written
    target = tmp_path / "y.jsonl"
    code, _, _ = run(
        capsys, "tasks", "export", "dyck", "--length", "7", "--count", "3", "-o", str(target)
    )
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sepbench", "tasks", "sample", "nope", "--length", "3"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("sepbench: error: unknown task")
