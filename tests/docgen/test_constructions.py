"""docs/constructions.md's generator: the per-construction figure and its embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sepbench import theory
from sepbench.docgen import constructions as docs
from sepbench.report import plots


def test_construction_figure_draws_widths_missing_points_fit_and_precision() -> None:
    lengths = [8, 16, 32, 64]
    fit = theory.fit_growth(lengths, [10, 12, 14, 16])
    fig = plots.construction_figure(
        "demo",
        [(8, 10), (16, 12), (32, 14), (64, 16), (128, None)],
        fit,
        [(8, 3, 4), (16, 3, 5), (32, None, 6)],
        None,
    )
    left, right = fig.axes
    by_label = {line.get_label(): line for line in left.get_lines()}
    width = by_label["smallest verifying width"]
    assert list(width.get_xdata()) == lengths and list(width.get_ydata()) == [10, 12, 14, 16]
    assert list(by_label["none verified"].get_xdata()) == [128]
    fitted = [line for label, line in by_label.items() if label.startswith("fit: w = ")]
    assert len(fitted) == 1 and "log2 N" in fitted[0].get_label()  # exactly log: best law
    assert np.allclose(fitted[0].get_ydata()[[0, -1]], [10, 16])
    series = {line.get_label(): list(line.get_ydata()) for line in right.get_lines()}
    assert series == {"fewest mantissa bits": [3, 3], "fewest fixed-point f": [4, 5, 6]}


def test_quick_docs_write_the_markdown_and_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "constructions.md"
    assert docs.main(["--quick", "--only", "dyck22_automaton", "--out", str(out)]) == 0
    text = out.read_text()
    png = tmp_path / "constructions" / "dyck22_automaton.png"
    assert "](constructions/dyck22_automaton.png)" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| `dyck22_automaton` | B24-E | dyck | constant |" in text


def test_unknown_construction_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        docs.main(["--only", "nope", "--out", str(tmp_path / "x.md")])
    assert info.value.code == 2
    assert "unknown construction(s) nope; known: " in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()
