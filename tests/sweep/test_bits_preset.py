"""The shipped precision study (index_lookup_bits): its design, and that its RNN lower bounds
can bind — judged through the real report at each pair's own p, its verdicts are consistent
or inconsistent, never vacuous, whatever widths training finds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sepbench import report
from sepbench.models.cards import model_class
from sepbench.sweep import Store, run_study
from sepbench.sweep.spec import load_builtin
from tests.report.conftest import LawProbe

NAME = "index_lookup_bits"


def test_the_preset_sets_rnns_at_few_bits_against_a_log_precision_transformer() -> None:
    spec = load_builtin(NAME)
    assert [(t.name, t.params.get("alphabet")) for t in spec.tasks] == [("index_lookup", 2)]
    assert min(spec.lengths) <= 4 and max(spec.lengths) >= 64
    assert spec.threshold == 0.95 and spec.rule == "best_of" and len(spec.budget.lrs) >= 2
    classes = {m.label: model_class(m.family, m.options) for m in spec.models}
    rnn_bits = {m.options["state_bits"] for m in spec.models if classes[m.label] == "rnn"}
    assert rnn_bits == {1, 2, 4}
    (tf,) = [m for m in spec.models if classes[m.label] == "transformer-1"]
    log_n = math.log2(max(spec.lengths))
    assert log_n < tf.options["precision_bits"] <= log_n + 8  # B24-T1's O(log N) precision


@pytest.mark.parametrize("law", [("linear", 0.05), ("linear", 2.0), ("constant", 64.0)])
def test_its_rnn_verdicts_are_never_vacuous(law: tuple[str, float], tmp_path: Path) -> None:
    """Fake widths below the bound, above it, and at the grid's maximum: the report's verdict
    on every RNN pair is consistent or inconsistent (the bound binds at the study's p)."""
    spec = load_builtin(NAME)
    probe = LawProbe({m.label: law for m in spec.models})
    run_study(spec, tmp_path, executor="inline", probe=probe, progress=False)
    with Store.open(tmp_path / f"{NAME}.sqlite") as store:
        data = report.collect(store, n_boot=0)
    rnns = [p for p in data.pairs if p.model_class == "rnn"]
    assert len(rnns) == 4 and all(p.bounded for p in rnns)
    for pair in rnns:
        assert pair.outcome in ("consistent", "inconsistent"), (pair.model.label, pair.reason)
        for v in pair.verdicts:
            assert v.outcome in ("consistent", "inconsistent"), (pair.model.label, v.reason)
            assert f"p = {pair.precision_bits} " in v.hypothesis
    if law == ("linear", 0.05):  # widths ~N/20: below N·(1 − h(0.05))/p for every p ≤ 4
        assert {p.outcome for p in rnns} == {"inconsistent"}
