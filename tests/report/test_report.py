"""The report's content: files, figures, the verdict table, censored points, conventions."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from sepbench import report
from sepbench.errors import UserError
from sepbench.report import ReportData
from sepbench.sweep import Store, StudySpec, run_study, summarize

PAIRS = {"tf", "tf-lin", "lstm", "elman"}
EXPECTED = {
    "tf": "consistent",  # log growth against B24-T1's log construction
    "tf-lin": "inconsistent",  # linear growth: faster than B24-T1's form
    "lstm": "consistent",  # linear, far above the RNN lower bounds (learnability)
    "elman": "inconsistent",  # width 1 at N = 64: below B24-T3's bound of 4
}


def collect(path: Path, constructions: object = None, **kwargs: object) -> ReportData:
    """report.collect of the store at ``path`` (collect takes an open store only)."""
    with Store.open(path) as store:
        return report.collect(store, constructions, **kwargs)  # type: ignore[arg-type]


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
    assert len(lstm.censored) == 2 and "censored seed(s) enter the fit" in lstm.fit_note
    # the censored seeds are in the fit as right-censored points (64, ∞), not dropped
    fit = lstm.fit
    assert fit is not None and fit.n_censored == 2 and max(fit.lengths) == 64
    at64 = [(lo, hi) for n, lo, hi in zip(fit.lengths, fit.lows, fit.highs, strict=True) if n == 64]
    assert at64 == [(64.0, math.inf), (64.0, math.inf)]
    # every other seed is the interval its (linear, step 1) grid answer gives: (w − 1, w]
    assert all(hi - lo == 1 for lo, hi in zip(fit.lows, fit.highs, strict=True) if hi < math.inf)
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


def test_collect_reads_an_open_store_only(main_store: Path) -> None:
    """No fallback chain: a summary or a path is refused with one line naming what is
    accepted (paths are resolved by `sepbench report`, then the store is opened)."""
    with Store.open(main_store) as store:
        summary = summarize(store)
        data = report.collect(store, n_boot=0)
    assert [p.model_class for p in data.pairs] == ["transformer-1", "transformer-1", "rnn", "rnn"]
    for wrong in (summary, main_store, str(main_store)):
        with pytest.raises(UserError, match="collect needs an open results store"):
            report.collect(wrong, n_boot=0)  # type: ignore[arg-type]


def test_facts_come_from_the_trials_or_else_the_family_cards(tmp_path: Path) -> None:
    """Stored model facts are what the report uses (here deliberately unlike the cards'); a
    store whose trials have none falls back to the cards and says so."""
    from sepbench.models.cards import ModelFacts
    from sepbench.sweep import ProbeOutcome, plan_study
    from tests.report.conftest import study

    spec = study("facts", [{"family": "lstm"}], [4, 8, 16], 1)
    plan = plan_study(spec)[0]
    for name, facts in [("stored", ModelFacts("rnn", 3 * 8, 17, 99, 8)), ("old", None)]:
        details = {ModelFacts.KEY: facts.to_dict()} if facts else {}
        with Store.for_study(tmp_path / f"{name}.sqlite", spec) as store:
            store.record(plan.trial(8), ProbeOutcome(True, 1.0, wall_s=1.0, details=details))
    stored, old = collect(tmp_path / "stored.sqlite"), collect(tmp_path / "old.sqlite")
    (pair,) = stored.pairs
    assert pair.facts.source == "stored" and pair.state_factor == 3.0
    assert pair.facts.parameters == {8: 99}
    assert any("stored state sizes give 3 numbers per unit of width" in n for n in stored.notes)
    (pair,) = old.pairs
    assert pair.facts.source == "cards" and pair.state_factor == 2.0  # LSTM: h and c
    assert pair.model_class == "rnn" and pair.state_note == "LSTM state = 2 × hidden (h and c)"
    assert any("come from the family cards" in n for n in old.notes)
    assert not any("family cards" in n for n in stored.notes)


def test_b24_t8_on_mqar_is_judged_at_n_2p(tmp_path: Path) -> None:
    """The catalogue's task-length mapping: on mqar B24-T8's N is 2P whatever the study's
    length, so its bound is one number at every study length. A trained study succeeds on
    average (threshold 0.9 on samples) and B24-T8 has no error-allowed form for mqar's
    sampler: its verdict is "not applicable", naming the N it would take."""
    from tests.report.conftest import LawProbe

    spec = StudySpec.from_dict(
        {
            "name": "mq",
            "seed": 0,
            "lengths": [16, 32, 64],
            "seeds": 1,
            "threshold": 0.9,
            "tasks": [{"name": "mqar", "params": {"pairs": 4, "vocab": 64}}],
            "models": [{"family": "gru"}],
            "budget": {"steps": 10, "batch_size": 8, "lr": 0.001},
            "width": {"min": 1, "max": 16},
        }
    )
    run_study(spec, tmp_path, executor="inline", probe=LawProbe({"gru": ("constant", 2.0)}),
              progress=False)  # fmt: skip
    data = collect(tmp_path / "mq.sqlite", n_boot=0, precision_bits=1)
    (pair,) = data.pairs
    (t8,) = [v for v in pair.verdicts if v.result_id == "B24-T8"]
    assert t8.outcome == "not applicable" and pair.outcome == "not applicable"
    assert "at N = 2P = 8, p = 1" in t8.hypothesis and t8.reason.startswith("checked B24-T8")
    assert "average accuracy ≥ 0.9" in t8.reason and "mqar" in t8.reason
    # N = 2P = 8 at p = 1: m >= 8 / (2·1) = 4, whatever the study's N
    assert t8.bound_at_max == pytest.approx(4.0)
    (curve,) = [b for b in pair.bounds if b.result_id.startswith("B24-T8")]
    assert set(curve.widths) == {4.0}


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


def test_the_induction_head_is_drawn_for_its_class() -> None:
    """The induction head (result id IND): the associative-recall preset's report used to end
    in 'unknown result' after its whole sweep had run; IND is now a catalogue record."""
    (curve,) = report.construction_curves({"associative_recall_2layer": [(4, 33), (8, 30)]})
    assert curve.result_id == "IND" and curve.model_classes == ("transformer-2",)
    (mine,) = report.construction_curves(
        {"mine": {"task": "associative_recall", "result_id": "IND", "points": [[4, 3]]}}
    )
    assert mine.model_classes == ("transformer-2",)
    with pytest.raises(UserError, match="unknown result 'IND2'"):
        report.construction_curves(
            {"mine": {"task": "associative_recall", "result_id": "IND2", "points": [[4, 3]]}}
        )


def test_rnn_bounds_that_cannot_bind_are_vacuous_never_consistent(tmp_path: Path) -> None:
    """GRU and LSTM at N = 4..16, alphabet 4, p = 32, threshold 0.9: B24-T3 and W24-R in their
    error-allowed form ask for N·1.37/32 < 1 number — below the grid's smallest width (1 unit;
    2 state numbers for the LSTM) at every N. Both pairs are "vacuous" in report.json, in the
    verdict table, in the pair sections and on the CLI's lines; nothing calls them consistent.
    The LSTM's widths pass the maximum at N = 16: its fit holds those censored seeds."""
    from tests.report.conftest import LawProbe, study

    spec = study("vac", [{"family": "gru"}, {"family": "lstm"}], [4, 8, 16], 2)
    spec = StudySpec.from_dict({**spec.model_dump(mode="json"), "width": {"min": 1, "max": 32}})
    probe = LawProbe({"gru": ("linear", 1.0), "lstm": ("linear", 4.0)})
    run_study(spec, tmp_path, executor="inline", probe=probe, progress=False)
    path = report.write_report(tmp_path / "vac.sqlite", tmp_path / "r", formats=("png",))
    data = json.loads((path.parent / "report.json").read_text())
    outcomes = {p["model"]: p["outcome"] for p in data["pairs"]}
    assert outcomes == {"gru": "vacuous", "lstm": "vacuous"}
    for pair in data["pairs"]:
        assert [v["outcome"] for v in pair["verdicts"]] == ["vacuous", "vacuous"]
        for v in pair["verdicts"]:
            assert "error-allowed form" in v["hypothesis"] and "ε = 0.1" in v["hypothesis"]
            rid = v["result_id"]
            assert v["reason"].startswith(
                (f"checked {rid}", f"on the state (= 2 × width): checked {rid}")
            )
            assert "no measurement could fall below it" in v["reason"]
        assert pair["reason"].startswith("B24-T3: ") and "says nothing here" in pair["reason"]
    md = path.read_text()
    rows = {r[1]: r for r in verdict_rows(md)}
    assert rows["gru"][6] == rows["lstm"][6] == "vacuous (cannot bind)"
    assert md.count("Outcome: **vacuous**.") == 2 and "Outcome: **consistent**" not in md
    # the LSTM's censored seeds (4·16 = 64 > 32) are in its fit, not dropped
    lstm = next(p for p in data["pairs"] if p["model"] == "lstm")
    assert lstm["censored"] == 2 and lstm["censored_in_fit"] == 2
    assert lstm["best_law"] is not None and "enter the fit as (max, ∞)" in lstm["fit_note"]
    # the same store at p = 1 bit per number: the bounds bind (N·1.37 > 1) and are checked —
    # the GRU's width N is below them (the fake probe beats the bound), the LSTM's 8N state not
    binding = collect(tmp_path / "vac.sqlite", n_boot=0, precision_bits=1)
    assert {p.model.label: p.outcome for p in binding.pairs} == {
        "gru": "inconsistent",
        "lstm": "consistent",
    }


def test_the_header_names_a_geometric_grid() -> None:
    """A geometric grid is described as one (its widths listed), not as '1..64 step 1'."""
    from sepbench.report.collect import _grid_text
    from sepbench.sweep.search import Grid

    assert _grid_text(Grid(1, 64, per_octave=2)) == (
        "1..64, geometric, 2 per octave (1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64)"
    )
    assert _grid_text(Grid(2, 64, resolution=2)) == "2..64 step 2"
