"""The capacity report on a fake study with a known answer, and a tiny real study end to end
through the CLI (train, evaluate, store, resume, report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sepbench.cli import main
from sepbench.report.capacity_data import collect_capacity
from sepbench.report.capacity_report import write_capacity_report
from sepbench.studies.fakes import FakeCapacityProbe
from sepbench.studies.grid import run_grid
from sepbench.sweep.store import Store
from tests.studies.common import cap_dict, make_cap


def _fake_study(tmp_path: Path) -> Path:
    spec = make_cap(train_lengths=[16, 32, 64])
    probe = FakeCapacityProbe(recall_coef=1.0, recall_ref=16.0, forget_coef=1.0)
    return Path(run_grid(spec, probe, tmp_path, executor="inline", progress=False).store_path)


def test_collect_applies_the_definitions_to_the_known_laws(tmp_path: Path) -> None:
    store_path = _fake_study(tmp_path)
    with Store.open(store_path) as store:
        data = collect_capacity(store)
    grid = data.spec.evaluation.lengths
    assert len(data.trials) == data.planned == (3 + 2) * 3 * 2
    for t in data.trials:
        cap = t.state_size * t.train_length / 16  # the fake's law: L <= S·T/16 is recalled
        fits = [n for n in grid if n <= cap]
        expected = fits[-1] if fits else None
        assert t.recall[0.95].value == expected
        assert t.recall[0.95].censored == (
            "above" if fits == grid else "below" if not fits else None
        )
        assert t.forgetting is not None and t.forgetting.forgets == (t.train_length >= t.state_size)
    ssm = next(f for f in data.families if f.label == "ssm")
    # T_forget(S) = the smallest T_train >= S, or none above 64
    assert ssm.forget == {4: 16, 16: 16, 64: 64}
    lstm = next(f for f in data.families if f.label == "lstm")
    assert lstm.forget == {4: 16, 16: 16}
    # the capacity curve takes the best T_train: S·64/16 = 4S, as a grid value
    best = {s: r.value for s, rep, r in ssm.capacity[0.95] if rep == 0}
    assert best == {4: 16, 16: 64, 64: 256}
    # mitigations double the fake's capacity: every ssm trial below the grid's top gains
    rows = {m.name: m for m in data.mitigations}
    assert set(rows) == {"forget_more", "state_norm", "window"}
    window = rows["window"]
    assert window.trials == 3 * 3 * 2 and window.worse == 0 and window.better > 0
    assert window.long >= window.long_none and window.recall is not None
    assert window.recall_none is not None and window.recall > window.recall_none


def test_report_files_and_numbers(tmp_path: Path) -> None:
    store_path = _fake_study(tmp_path)
    path = write_capacity_report(store_path, tmp_path / "report", formats=("png",))
    folder = path.parent
    text = path.read_text()
    for heading in (
        "## The study",
        "## Capacity against state size",
        "## Forgetting and collapse: the minimal training length",
        "## Mitigations against none (same trained models, same contexts)",
        "## Accuracy heat maps (context × depth)",
        "## SM24 at its scale, and ours",
    ):
        assert heading in text
    assert "examples seen per trial (steps × batch)" in text
    data = json.loads((folder / "report.json").read_text())
    ssm = next(m for m in data["models"] if m["label"] == "ssm")
    assert ssm["t_forget"] == {"4": 16, "16": 16, "64": 64}
    assert {m["name"] for m in data["mitigations"]} == {"forget_more", "state_norm", "window"}
    for key, files in data["figures"].items():
        assert files and all((folder / f).is_file() for f in files), key
    assert "capacity/ssm" in data["figures"] and "heatmap/ssm/16" in data["figures"]
    with Store.open(store_path) as store:
        total = sum(len(r.outcome["details"]["points"]) for r in store.records())
    assert len((folder / "points.csv").read_text().splitlines()) == total + 1
    # a foreign directory is refused
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="does not hold a sepbench report"):
        write_capacity_report(store_path, tmp_path / "foreign", formats=("png",))


@pytest.mark.slow
def test_tiny_real_study_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cap_dict(
        name="tiny",
        train_lengths=[16],
        seeds=1,
        models=[
            {
                "family": "ssm",
                "sizes": [
                    {"width": 4, "state_dim": 1},
                    {"width": 8, "state_dim": 2},
                    {"width": 8, "state_dim": 4},
                ],
            },
            {"family": "lstm", "sizes": [4]},
        ],
        budget={"steps": 30, "batch_size": 16, "lr": 0.01, "options": {"eval_every": 10}},
    )
    data["evaluation"]["lengths"] = [16, 64, 256]
    spec = make_cap(**data)
    toml = tmp_path / "tiny.toml"
    toml.write_text(spec.to_toml())
    out = tmp_path / "runs"
    assert main(["run", "--study", str(toml), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "4 trials" in printed and "trials: 4 stored (4 new)" in printed
    assert "ssm T_recall(0.95): S=4:" in printed
    folder = out / "tiny"
    report = folder / "tiny-report" / "report.md"
    assert (folder / "tiny.sqlite").is_file() and report.is_file()
    assert (folder / "tiny-report" / "points.csv").is_file()
    assert (folder / "tiny-report" / "figures" / "collapse__ssm.png").is_file()
    # resumed: nothing new to train
    assert main(["run", "--study", str(toml), "--out", str(out), "--no-progress"]) == 0
    assert "trials: 4 stored (0 new)" in capsys.readouterr().out
    # the report command reads a capacity store too; the width tools say what it is
    again = ["report", str(folder), "--out", str(tmp_path / "again"), "--formats", "png"]
    assert main(again) == 0
    assert (tmp_path / "again" / "report.md").is_file()
    capsys.readouterr()
    assert main(["results", "show", str(folder / "tiny.sqlite")]) == 2
    assert "holds a 'capacity' study, not a width search" in capsys.readouterr().err
    points = tmp_path / "points.csv"
    assert main(["results", "export", str(folder / "tiny.sqlite"), "--table", "points",
                 "--csv", str(points)]) == 0  # fmt: skip
    lines = points.read_text().splitlines()
    assert lines[0].startswith("model,family,width") and len(lines) == 1 + (3 * 4 + 1) * 3 * (2 + 1)
    assert main(["results", "export", str(folder / "tiny.sqlite"), "--table", "searches"]) == 2
    assert "holds a 'capacity' study, not a width search" in capsys.readouterr().err
    assert main(["run", "--list"]) == 0
    assert "state_capacity:" in capsys.readouterr().out
