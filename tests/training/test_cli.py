"""`sepbench train` / `sepbench eval`, through the module's own register() (the lead adds the
group to sepbench.cli._GROUPS; these tests do not depend on that)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from sepbench.cli import _Parser
from sepbench.cli import train as train_cli
from sepbench.errors import UserError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """What sepbench.cli.main does, with only this module's commands registered."""
    parser = _Parser(prog="sepbench")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    train_cli.register(sub)
    try:
        args = parser.parse_args(list(argv))
        try:
            code = int(args.handler(args))
        except UserError as exc:
            print(f"sepbench: error: {exc}", file=sys.stderr)
            code = 2
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TRAIN = [
    "train",
    *("--task", "index_lookup", "--length", "8", "--param", "max_length=16"),
    *("--model", "transformer", "--layers", "1", "--width", "16", "--seed", "0"),
    *("--steps", "600", "--lr", "0.01", "--quiet"),
]


def test_train_then_eval(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ckpt = tmp_path / "tf.ckpt"
    code, out, err = run(capsys, *TRAIN, "--save", str(ckpt))
    assert code == 0, err
    assert "reached 0.99 at step" in out and "checkpoint:" in out
    assert ckpt.is_file()

    code, out, err = run(capsys, "eval", str(ckpt), "--lengths", "4,8,12", "--batch-size", "256")
    assert code == 0, err
    lines = out.splitlines()
    assert "trained at N=8" in lines[0]
    rows = {int(line.split()[0]): float(line.split()[1]) for line in lines[2:]}
    assert list(rows) == [4, 8, 12] and rows[8] >= 0.98

    code, out, _ = run(capsys, "eval", str(ckpt), "--json", "--batch-size", "64")
    records = json.loads(out)
    assert [r["length"] for r in records] == [8] and records[0]["generation"] is None


def test_train_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a if a != "600" else "20" for a in TRAIN]
    code, out, _ = run(capsys, *argv, "--json", "--threshold", "0.5", "--batch-size", "16")
    assert code == 0
    result = json.loads(out)
    assert result["config"]["budget"]["max_steps"] == 20
    assert result["config"]["budget"]["batch_size"] == 16
    assert result["config"]["threshold"] == 0.5
    assert result["config"]["model"]["options"]["layers"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--option", "bogus=1"], "unknown option 'bogus'"),
        (["--option", "heads=two"], "option 'heads' must be"),
        (["--option", "layers=2"], "--layers or --option layers="),
        (["--param", "colour=red"], "unknown parameter 'colour'"),
        (["--steps", "0"], "max_steps"),
        (["--lr", "-1"], "lr"),
        (["--save", "/nonexistent/dir/m.ckpt"], "does not exist"),
    ],
)
def test_train_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, out, err = run(capsys, *TRAIN, *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_unknown_model_and_task(capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(TRAIN)
    argv[argv.index("transformer")] = "mlp"
    code, _, err = run(capsys, *argv)
    assert code == 2 and "unknown model family" in err
    argv = list(TRAIN)
    argv[argv.index("index_lookup")] = "sorting"
    code, _, err = run(capsys, *argv)
    assert code == 2 and "unknown task" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *TRAIN, "--device", "cuda")
    assert code == 2 and "no CUDA GPU is available" in err


def test_eval_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "eval", str(tmp_path / "missing.ckpt"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.ckpt"
    bad.write_text("garbage")
    code, _, err = run(capsys, "eval", str(bad))
    assert code == 2 and "corrupt" in err and err.count("\n") == 1
