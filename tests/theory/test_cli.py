"""`sepbench theory` (list, show, bound), through a parser built from the module alone.

The group is tested through its own ``register`` so that these tests do not depend on it
being listed in ``sepbench.cli._GROUPS``; once it is, the last test runs the real entry point.
"""

from __future__ import annotations

import pytest

from sepbench import cli, theory
from sepbench.cli import theory as theory_cli
from sepbench.errors import UserError


def run(argv: list[str]) -> int:
    """Parse ``argv`` with a parser holding only the theory group and run the handler."""
    parser = cli._Parser(prog="sepbench")
    sub = parser.add_subparsers(dest="command", parser_class=cli._Parser)
    sub.required = True
    theory_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_list_prints_every_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["theory", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "task", "model", "direction", "form"]
    assert [line.split()[0] for line in out[1:]] == theory.ids()
    row = next(line for line in out if line.startswith("B24-T3 "))
    assert row.split() == ["B24-T3", "index_lookup", "rnn", "lower", "linear"]


def test_list_filters_by_task_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["theory", "list", "--task", "index_lookup", "--model", "rnn"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["B24-T3", "W24-R"]
    with pytest.raises(UserError, match="--task"):
        run(["theory", "list", "--model", "rnn"])


def test_show_prints_all_fields_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["theory", "show", "B24-T3"]) == 0
    out = capsys.readouterr().out
    for text in (
        "B24 Theorem 3",
        "index_lookup",
        "lower",
        "m ≥ N·log2(k)/p",
        "argument",
        "alphabet = 4",
        "arXiv 2406.09347",
    ):
        assert text in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[-3:]}
    assert set(rows) == {"16", "256", "4096"}
    # N = 256, p = 16: width 256·2/16 = 32, state bits 512
    assert rows["256"][1:4] == ["16", "32", "512"]


def test_show_tight_result_has_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["theory", "show", "H20"]) == 0
    out = capsys.readouterr().out
    assert "tight" in out and "constructions" in out and "dyck_next_lstm" in out
    assert "lower width" in out


def test_bound(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["theory", "bound", "B24-T3", "--length", "1024", "--precision", "32"]
    assert run([*argv, "--param", "alphabet=2"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["width"].split()[0] == "32"
    assert lines["precision"].strip() == "32 bits"
    assert lines["parameters"].strip() == "alphabet=2"
    assert run(["theory", "bound", "B24-T1", "--length", "256"]) == 0
    out = capsys.readouterr().out
    assert "1600" in out and "(default)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["theory", "show", "B24-T99"], "known results"),
        (["theory", "bound", "B24-T99", "--length", "8"], "known results"),
        (["theory", "bound", "B24-T3", "--length", "8", "--param", "alphabet"], "KEY=VALUE"),
        (["theory", "bound", "B24-T3", "--length", "8", "--param", "foo=1"], "unknown param"),
        (["theory", "bound", "B24-T3", "--length", "1"], "length"),
        (["theory", "bound", "B24-T3", "--length", "8", "--precision", "0"], "precision"),
        (["theory", "list", "--task", "parity"], "tasks with results"),
    ],
)
def test_user_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        run(argv)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["theory", "bound", "B24-T3"])
    assert exit_info.value.code == 2
    assert "--length" in capsys.readouterr().err


@pytest.mark.skipif("theory" not in cli._GROUPS, reason="'theory' not yet in cli._GROUPS")
def test_registered_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["theory", "list"]) == 0
    assert "B24-T1" in capsys.readouterr().out
    assert cli.main(["theory", "show", "nope"]) == 2
    assert "unknown result 'nope'" in capsys.readouterr().err
