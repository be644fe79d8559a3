"""Bounded precision in the report: each pair judged at its own p, and the state-bits axis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sepbench import report
from sepbench.report import ReportData
from sepbench.sweep import ProbeOutcome, Store, StudySpec, plan_study, run_study
from tests.report.conftest import LawProbe

LENGTHS = [8, 16, 32, 64]
MODELS = [
    {"family": "gru", "label": "gru-p1", "options": {"state_bits": 1}},
    {"family": "gru", "label": "gru-float"},
    {"family": "lstm", "label": "lstm-p2", "options": {"state_bits": 2}},
    {"family": "transformer", "label": "tf-p8", "options": {"layers": 1, "precision_bits": 8}},
]
PROBE = LawProbe(
    {
        "gru-p1": ("linear", 0.5),  # width N/2 at 1 bit: N/2 bits, below B24-T3's ~0.71·N
        "gru-float": ("linear", 0.5),  # the same widths as floats: far above N/32
        "lstm-p2": ("linear", 0.25),  # N/4 units × (h, c) × 2 bits = N bits: above
        "tf-p8": ("log", 2.0),
    }
)
FANO = 1 - (-(0.05 * math.log2(0.05) + 0.95 * math.log2(0.95)))  # 1 − h(ε) at ε = 0.05


def spec(name: str, models: list[dict[str, object]]) -> StudySpec:
    return StudySpec.from_dict(
        {
            "name": name,
            "seed": 0,
            "lengths": LENGTHS,
            "seeds": 1,
            "threshold": 0.95,
            "tasks": [{"name": "index_lookup", "params": {"alphabet": 2, "max_length": 64}}],
            "models": models,
            "budget": {"steps": 10, "batch_size": 8, "lr": 0.001},
            "width": {"min": 1, "max": 64},
        }
    )


@pytest.fixture(scope="module")
def bits_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bits")
    run_study(spec("bits", MODELS), out, executor="inline", probe=PROBE, progress=False)
    return out / "bits.sqlite"


def collect(path: Path, **kwargs: object) -> ReportData:
    with Store.open(path) as store:
        return report.collect(store, n_boot=0, **kwargs)  # type: ignore[arg-type]


def test_each_bounded_pair_is_judged_at_its_own_p(bits_store: Path) -> None:
    """gru-p1 and gru-float have the same widths; at its own p = 1 the first is below the
    bound (inconsistent), at the floats' p = 32 the second is far above it. A report that
    used one global p for every pair would call both the same."""
    data = collect(bits_store)
    pairs = {p.model.label: p for p in data.pairs}
    assert {k: p.precision_bits for k, p in pairs.items()} == {
        "gru-p1": 1,
        "gru-float": 32,
        "lstm-p2": 2,
        "tf-p8": 8,
    }
    assert {k: p.bounded for k, p in pairs.items()} == {
        "gru-p1": True,
        "gru-float": False,
        "lstm-p2": True,
        "tf-p8": True,
    }
    assert pairs["gru-p1"].outcome == "inconsistent"
    assert pairs["gru-float"].outcome == "consistent"
    assert pairs["lstm-p2"].outcome == "consistent"
    rnns = [k for k in pairs if k != "tf-p8"]
    t3 = {k: next(v for v in pairs[k].verdicts if v.result_id == "B24-T3") for k in rnns}
    assert t3["gru-p1"].bound_at_max == pytest.approx(FANO * 64)
    assert t3["gru-float"].bound_at_max == pytest.approx(FANO * 64 / 32)
    assert t3["lstm-p2"].bound_at_max == pytest.approx(FANO * 64 / 2 / 2)  # ÷ p, ÷ (h, c)
    assert "p = 1 " in t3["gru-p1"].hypothesis and "p = 2 " in t3["lstm-p2"].hypothesis
    # the report's precision_bits is the default for floats only
    low = collect(bits_store, precision_bits=1)
    assert {p.model.label: p.precision_bits for p in low.pairs}["gru-float"] == 1
    assert {p.model.label: p.precision_bits for p in low.pairs}["lstm-p2"] == 2
    assert {p.model.label: p.outcome for p in low.pairs}["gru-float"] == "inconsistent"
    assert {p.model.label: p.outcome for p in low.pairs}["lstm-p2"] == "consistent"


def test_the_state_bits_axis_holds_bits_and_the_bound_in_bits(bits_store: Path) -> None:
    (axis,) = collect(bits_store).bits_axes
    rnns = {s.model: s for s in axis.rnns}
    assert list(rnns) == ["gru-p1", "gru-float", "lstm-p2"]
    assert {k: s.per_width for k, s in rnns.items()} == {
        "gru-p1": 1.0,
        "gru-float": 32.0,
        "lstm-p2": 4.0,
    }
    assert [(n, v) for n, v, _ in rnns["gru-p1"].medians] == [(n, n / 2) for n in LENGTHS]
    assert [(n, v) for n, v, _ in rnns["gru-float"].medians] == [(n, 16 * n) for n in LENGTHS]
    assert [(n, v) for n, v, _ in rnns["lstm-p2"].medians] == [(n, float(n)) for n in LENGTHS]
    assert rnns["gru-p1"].points == tuple((n, n / 2) for n in LENGTHS)
    assert rnns["gru-float"].precision_text == "float32"
    # B24-T3 and W24-R coincide in bits at every p: one line, m·p ≥ N, naming each p
    (bound,) = axis.bounds
    assert set(bound.result_id.split(" = ")) == {"B24-T3", "W24-R"}
    assert bound.precision_bits == (1, 2, 32)
    for n in LENGTHS:
        assert bound.at(n) == pytest.approx(n)
        assert bound.at(n, error_allowed=True) == pytest.approx(FANO * n)
    assert bound.error == pytest.approx(0.05)
    (tf,) = axis.attention
    assert (tf.model, tf.precision_bits, tf.per_width) == ("tf-p8", 8, 1.0)
    # the table: the medians in bits beside the bound, exact and error-allowed
    row64 = next(r for r in axis.table() if r[0] == 64)
    assert row64[1] == ["32", "1024", "64"] and row64[2] == "64"
    assert row64[3] == f"{FANO * 64:.3g}"


def test_the_report_draws_and_writes_the_axis(bits_store: Path, tmp_path: Path) -> None:
    md_path = report.write_report(bits_store, tmp_path / "rep", n_boot=0, formats=["png"])
    md = md_path.read_text()
    data = json.loads((md_path.parent / "report.json").read_text())
    assert data["figures"]["bits/index_lookup"] == ["figures/bits__index_lookup.png"]
    assert (md_path.parent / "figures" / "bits__index_lookup.png").stat().st_size > 5000
    assert "### index_lookup — the state-bits axis" in md
    assert "](figures/bits__index_lookup.png)" in md
    assert "**Bounded precision.**" in md and "gru-p1: p = 1" in md
    (axis,) = data["bits_axes"]
    assert [s["model"] for s in axis["rnns"]] == ["gru-p1", "gru-float", "lstm-p2"]
    pairs = {p["model"]: p for p in data["pairs"]}
    assert pairs["gru-p1"]["precision_bits"] == 1 and "precision_bits" not in pairs["gru-float"]


def test_an_unbounded_study_has_no_bits_axis(main_store: Path, tmp_path: Path) -> None:
    data = collect(main_store)
    assert data.bits_axes == [] and not any(p.bounded for p in data.pairs)
    assert {p.precision_bits for p in data.pairs} == {32}
    md_path = report.write_report(main_store, tmp_path / "rep", n_boot=0, formats=["png"])
    js = json.loads((md_path.parent / "report.json").read_text())
    assert "bits_axes" not in js and not any("bits" in k for k in js["figures"])
    assert "state-bits axis" not in md_path.read_text()


def test_p_is_read_from_the_trials_facts_where_they_record_it(tmp_path: Path) -> None:
    """A trial's recorded p is what the pair is judged at (here deliberately unlike the
    card's, which the report notes); a record from before trials stored their bits falls
    back to the cards' p (the model options)."""
    from sepbench.models.cards import ModelFacts

    study = spec("facts", [MODELS[0]])
    plan = plan_study(study)[0]
    cases = {
        "stored": ModelFacts("rnn", 8, 66, 99, 8, state_bits=16, number_bits=2),
        "old": ModelFacts("rnn", 8, 66, 99, 8),
    }
    for name, facts in cases.items():
        details = {ModelFacts.KEY: facts.to_dict()}
        with Store.for_study(tmp_path / f"{name}.sqlite", study) as store:
            store.record(plan.trial(8), ProbeOutcome(True, 1.0, wall_s=1.0, details=details))
    stored, old = collect(tmp_path / "stored.sqlite"), collect(tmp_path / "old.sqlite")
    (pair,) = stored.pairs
    assert pair.facts.number_bits == 2 and pair.precision_bits == 2
    assert pair.facts.state_bits == {8: 16}
    assert any("stored trials record p = 2 bits per number" in n for n in stored.notes)
    (pair,) = old.pairs
    assert pair.facts.number_bits == 1 and pair.precision_bits == 1 and not old.notes
