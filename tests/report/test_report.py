"""The report's content: files, figures, the verdict table, censored points, conventions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sepbench import report
from sepbench.errors import UserError
from sepbench.report import collect
from sepbench.report.data import MODEL_DEFAULTS, model_class, state_per_width
from sepbench.sweep import Store, summarize

PAIRS = {"tf", "tf-lin", "lstm", "elman"}
EXPECTED = {
    "tf": "consistent",  # log growth against B24-T1's log construction
    "tf-lin": "inconsistent",  # linear growth: faster than B24-T1's form
    "lstm": "consistent",  # linear, far above the RNN lower bounds (learnability)
    "elman": "inconsistent",  # width 1 at N = 64: below B24-T3's bound of 4
}


def verdict_rows(md: str) -> list[list[str]]:
    """The rows of report.md's main verdict table, as cells."""
    section = md.split("## Verdicts", 1)[1].split("###", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| task | model |")
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[1:]]


def test_report_files_and_figures(main_report: Path) -> None:
    out = main_report.parent
    assert main_report.name == "report.md" and (out / report.MARKER).is_file()
    md = main_report.read_text()
    data = json.loads((out / "report.json").read_text())
    figures = data["figures"]
    # one separation plot, a width plot and a heatmap per pair, lengths for tf only
    assert sorted(k.split("/")[0] for k in figures) == sorted(
        ["separation"] + ["width"] * 4 + ["heatmap"] * 4 + ["lengths"]
    )
    assert "lengths/index_lookup/tf" in figures
    for paths in figures.values():
        assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["png", "svg"]
        for rel in paths:
            path = out / rel
            blob = path.read_bytes()
            assert len(blob) > 5000, rel
            if rel.endswith(".png"):
                assert blob.startswith(b"\x89PNG\r\n\x1a\n")
                assert f"]({rel})" in md  # embedded
            else:
                assert b"<svg" in blob[:2000]
                assert f"]({rel})" in md  # linked
    # legends and titles name what is drawn (SVG keeps text as text)
    sep = (out / "figures" / "separation__index_lookup.svg").read_text()
    for text in ("B24-T1 construction", "censored seed", "lower bound in lstm", "p = 32"):
        assert text in sep, text
    lstm = (out / "figures" / "width__index_lookup__lstm.svg").read_text()
    for text in ("fit linear", "(best)", "α 95% CI", "B24-T3 = W24-R lower bound", "÷2"):
        assert text in lstm, text
    # nothing but the report's own files in the directory, no temporary leftovers beside it
    assert {p.name for p in out.iterdir()} == {
        "report.md",
        "report.json",
        "figures",
        ".sepbench-report",
    }
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_verdict_table_has_one_row_per_pair_with_the_known_outcomes(main_report: Path) -> None:
    md = main_report.read_text()
    rows = verdict_rows(md)
    assert len(rows) == len(PAIRS)
    by_model = {r[1]: r for r in rows}
    assert set(by_model) == PAIRS
    for model, outcome in EXPECTED.items():
        assert by_model[model][6].strip("*") == outcome, by_model[model]
    assert by_model["tf"][3].startswith("log") and by_model["tf"][5].startswith("B24-T1")
    assert by_model["tf-lin"][3].startswith(("linear", "power"))
    assert "below the lower bound" in by_model["elman"][7] and "bug report" in by_model["elman"][7]
    assert "learnability" in by_model["lstm"][7]
    data = json.loads((main_report.parent / "report.json").read_text())
    assert {p["model"]: p["outcome"] for p in data["pairs"]} == EXPECTED
    tf = next(p for p in data["pairs"] if p["model"] == "tf")
    assert tf["best_law"] == "log" and tf["alpha"] < 0.5 and len(tf["alpha_ci"]) == 2
    # the study's numbers
    assert "trials: " in md and "wall time:" in md and "budget: 10 steps at N=4" in md
    assert "monotonicity violations: 0" in md
    assert "p = 32 bits" in md and "LSTM state = 2 × hidden" in md


def test_censored_points_are_reported_not_dropped(main_report: Path, main_store: Path) -> None:
    md = main_report.read_text()
    assert "censored points: 2 seed(s)" in md
    assert "| 64 | >64 | [>64, >64] | 2/2 | 2 | 0 |" in md  # the lstm width table
    tail = md.split("## Monotonicity violations and censored points", 1)[1]
    assert tail.count("| index_lookup | lstm | 64 |") == 2
    data = collect(main_store, n_boot=50)
    lstm = next(p for p in data.pairs if p.model.label == "lstm")
    assert len(lstm.censored) == 2 and "censored" in lstm.fit_note
    assert lstm.fit is not None and max(lstm.fit.lengths) == 32  # fitted without them
    xs, _, cx, cw = lstm.seed_points()
    assert cx == [64, 64] and cw == [64.0, 64.0] and 64 not in xs


def test_heatmap_uses_every_stored_trial(main_store: Path) -> None:
    data = collect(main_store, n_boot=0)
    with Store.open(main_store) as store:
        records = store.records()
    assert sum(len(p.trials) for p in data.pairs) == len(records) == data.summary.trials
    assert data.trial_wall_s == pytest.approx(0.25 * len(records))


def test_lstm_lower_bound_is_converted_from_state_to_hidden_units(main_store: Path) -> None:
    data = collect(main_store, n_boot=0)
    pairs = {p.model.label: p for p in data.pairs}
    lstm, elman = pairs["lstm"], pairs["elman"]
    assert (lstm.state_factor, elman.state_factor, pairs["tf"].state_factor) == (2.0, 1.0, 1.0)
    (lb_lstm,) = [b for b in lstm.bounds if b.side == "lower"]
    (lb_elman,) = [b for b in elman.bounds if b.side == "lower"]
    # B24-T3 and W24-R coincide for alphabet 4 (k taken from the task): drawn once
    assert lb_lstm.result_id == "B24-T3 = W24-R"
    n64 = lb_elman.lengths.index(64)
    assert lb_elman.widths[n64] == pytest.approx(64 * 2 / 32)  # N·log2(4)/p
    assert lb_lstm.widths[n64] == pytest.approx(lb_elman.widths[n64] / 2)
    assert "÷2: LSTM state = 2 × hidden" in lb_lstm.label
    assert all("on the state (= 2 × width)" in v.reason for v in lstm.verdicts)
    (up,) = pairs["tf"].bounds
    assert up.side == "upper" and up.result_id == "B24-T1"


def test_precision_changes_the_lower_bounds(main_store: Path) -> None:
    low = collect(main_store, n_boot=0, precision_bits=8)
    elman = next(p for p in low.pairs if p.model.label == "elman")
    lb = next(b for b in elman.bounds if b.side == "lower")
    assert lb.widths[lb.lengths.index(64)] == pytest.approx(64 * 2 / 8)
    with pytest.raises(UserError, match="precision"):
        collect(main_store, precision_bits=0)


def test_length_generalisation_hook(main_store: Path) -> None:
    data = collect(main_store, n_boot=0)
    tf = next(p for p in data.pairs if p.model.label == "tf")
    trained = [n for n, _, _ in tf.length_eval]
    assert trained == [4, 8, 16, 32, 64]
    _, width, curve = tf.length_eval[0]
    assert width == 6 and curve[0] == (4, 1.0) and curve[-1] == (128, 4 / 128)
    assert all(not p.length_eval for p in data.pairs if p.model.label != "tf")


def test_summary_source_gives_the_same_verdicts(main_store: Path) -> None:
    with Store.open(main_store) as store:
        summary = summarize(store)
        from_store = collect(store, n_boot=100)
    from_summary = collect(summary, n_boot=100)
    assert [(p.key, p.outcome) for p in from_summary.pairs] == [
        (p.key, p.outcome) for p in from_store.pairs
    ]
    # a summary whose store is gone still reports, from labels (families guessed)
    summary.store_path = str(main_store.parent / "gone.sqlite")
    degraded = collect(summary, n_boot=0)
    assert degraded.records == [] and degraded.notes
    assert [p.model_class for p in degraded.pairs] == [None, None, "rnn", "rnn"]


def test_constructions_are_attached_to_the_matching_class(main_store: Path) -> None:
    curves = {
        "lookup": {"task": "index_lookup", "result_id": "B24-T1", "points": [[16, 90], [4, 70]]},
        "elsewhere": report.ConstructionCurve("elsewhere", "dyck", "B24-E", ((4, 7.0),)),
    }
    data = collect(main_store, curves, n_boot=0)
    pairs = {p.model.label: p for p in data.pairs}
    assert [c.name for c in pairs["tf"].constructions] == ["lookup"]
    assert pairs["tf"].constructions[0].points == ((4, 70.0), (16, 90.0))
    assert pairs["lstm"].constructions == [] and len(data.constructions) == 2
    with pytest.raises(UserError, match="points must be"):
        collect(main_store, {"x": {"task": "index_lookup", "result_id": "B24-T1", "points": 3}})
    with pytest.raises(UserError, match="unknown result"):
        collect(main_store, {"x": {"task": "index_lookup", "result_id": "B99", "points": []}})


def test_model_classes_and_state_sizes() -> None:
    assert model_class("transformer", {}) == "transformer-1"
    assert model_class("transformer", {"layers": 2}) == "transformer-2"
    assert model_class("transformer", {"layers": 3}) == "transformer-2"
    assert [model_class(f, {}) for f in ("elman", "lstm", "gru", "ssm")] == ["rnn"] * 4
    assert model_class("hybrid", {}) == "hybrid"
    assert model_class("rag", {}) == "rnn+retrieval"
    assert model_class("lstm", {}, "is_tree", {"trace": "cot"}) == "rnn+cot"
    assert model_class("transformer", {}, "is_tree", {"trace": "cot"}) == "transformer+cot"
    assert model_class("tf", {}) is None
    assert state_per_width("lstm", {"layers": 2})[0] == 4.0
    assert state_per_width("gru", {})[0] == 1.0
    assert state_per_width("ssm", {"state_dim": 4})[0] == 4.0
    assert state_per_width("rag", {})[0] == 2.0  # default cell: lstm
    assert state_per_width("rag", {"cell": "gru"})[0] == 1.0
    assert state_per_width("transformer", {})[0] == 1.0


def test_model_defaults_match_the_models_package() -> None:
    models = pytest.importorskip("sepbench.models")
    for family, defaults in MODEL_DEFAULTS.items():
        described = models.describe(family)["options"]
        for option, value in defaults.items():
            assert described[option]["default"] == repr(value), (family, option)


def test_report_of_an_unfinished_study(tmp_path: Path) -> None:
    """A study still running (or killed): unfinished searches are said so, nothing crashes."""
    from sepbench.sweep import ProbeOutcome, plan_study
    from tests.report.conftest import study

    spec = study("early", [{"family": "gru"}], [4, 8, 16], 1)
    plans = plan_study(spec)
    with Store.for_study(tmp_path / "early.sqlite", spec) as store:
        store.record(plans[0].trial(32), ProbeOutcome(reached=True, accuracy=1.0, wall_s=1.0))
        store.record(plans[0].trial(16), ProbeOutcome(reached=False, accuracy=0.5, wall_s=1.0))
    path = report.write_report(tmp_path / "early.sqlite", tmp_path / "r", formats=("png",))
    md = path.read_text()
    assert "The study is unfinished" in md
    assert "3 unfinished" in md and "trials: 2 stored" in md
    (row,) = verdict_rows(md)
    assert row[6] == "undecided" and "no growth fit" in row[7]
    assert (tmp_path / "r" / "figures" / "width__index_lookup__gru.png").stat().st_size > 5000


def test_construction_names_are_looked_up_in_the_registry() -> None:
    from sepbench import constructions

    name, entry = next(iter(constructions.registry().items()))
    (curve,) = report.construction_curves({name: [(8, 12), (4, 10)]})
    assert (curve.task, curve.result_id, curve.points) == (
        entry.task,
        entry.result_id,
        ((4, 10.0), (8, 12.0)),
    )
    with pytest.raises(UserError, match="'no-such' is not registered"):
        report.construction_curves({"no-such": [(4, 1)]})


def test_a_registered_construction_outside_the_catalogue_is_drawn_for_its_class() -> None:
    """The induction head (result id IND, no catalogue record): the associative-recall preset's
    report used to end in 'unknown result' after its whole sweep had run."""
    (curve,) = report.construction_curves({"associative_recall_2layer": [(4, 33), (8, 30)]})
    assert curve.result_id == "IND" and curve.model_classes == ("transformer-2",)
    with pytest.raises(UserError, match="unknown result 'IND'"):  # not registered under IND
        report.construction_curves(
            {"mine": {"task": "associative_recall", "result_id": "IND", "points": [[4, 3]]}}
        )
