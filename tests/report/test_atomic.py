"""Atomic report directories: an interrupted report leaves the previous one intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sepbench.errors import UserError
from sepbench.report import plots, write_report, writer


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


pytestmark = pytest.mark.usefixtures("fake_figures")


@pytest.fixture
def previous(main_report: Path, tmp_path: Path) -> Path:
    """A copy of the main study's report: the 'previous report' a new one must not damage."""
    dest = tmp_path / "out"
    shutil.copytree(main_report.parent, dest)
    return dest


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_mid_way_leaves_the_previous_report_intact(
    previous: Path, tiny_store: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    before = snapshot(previous)
    real_save = plots.save
    calls: list[Path] = []

    def save_then_fail(fig, stem, formats=plots.FORMATS):  # type: ignore[no-untyped-def]
        calls.append(stem)
        if len(calls) == 2:  # one figure is already written into the temporary directory
            raise failure
        return real_save(fig, stem, formats)

    monkeypatch.setattr(plots, "save", save_then_fail)
    with pytest.raises(type(failure)):
        write_report(tiny_store, previous, formats=("png",), n_boot=0)
    assert len(calls) == 2
    assert snapshot(previous) == before
    assert [p.name for p in previous.parent.iterdir()] == ["out"]  # no temporary leftovers


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_new_report_replaces_the_previous_one(
    previous: Path, tiny_store: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:
        monkeypatch.setattr(writer, "_exchange", lambda a, b: False)
    path = write_report(tiny_store, previous, formats=("png",), n_boot=0)
    assert path == previous / "report.md"
    assert path.read_text().startswith("# Width-scaling report: tiny")
    figures = sorted(p.name for p in (previous / "figures").iterdir())
    assert figures == [
        "heatmap__index_lookup__gru.png",
        "separation__index_lookup.png",
        "width__index_lookup__gru.png",
    ]
    assert [p.name for p in previous.parent.iterdir()] == ["out"]


def test_stale_temporary_directories_of_dead_processes_are_removed(
    tmp_path: Path, tiny_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / ".out.999999999.abc.tmp"
    stale.mkdir()
    (stale / "report.md").write_text("half")
    unrelated = tmp_path / ".other.999999999.abc.tmp"
    unrelated.mkdir()
    monkeypatch.setattr(plots, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError()))
    with pytest.raises(RuntimeError):
        write_report(tiny_store, tmp_path / "out", formats=("png",), n_boot=0)
    assert not stale.exists() and unrelated.exists() and not (tmp_path / "out").exists()


def test_refuses_to_replace_a_directory_that_is_not_a_report(
    tmp_path: Path, tiny_store: Path
) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(UserError, match="does not hold a sepbench report"):
        write_report(tiny_store, precious)
    assert (precious / "thesis.tex").read_text() == "do not delete"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        write_report(tiny_store, a_file)
    with pytest.raises(UserError, match="not a directory"):
        write_report(tiny_store, a_file / "sub" / "out")
    with pytest.raises(UserError, match="formats"):
        write_report(tiny_store, tmp_path / "x", formats=("gif",))
