"""Family cards: the one owner of options, theory class and state numbers, checked against the
built models (which do import torch)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from sepbench import models, theory
from sepbench.errors import UserError
from sepbench.models import cards
from sepbench.models.cards import ModelFacts, model_class, state_per_width

# (family, options) across every option that changes the state: layers, cell, state_dim,
# base, heads, head_dim
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("elman", {}),
    ("elman", {"layers": 3, "nonlinearity": "relu"}),
    ("lstm", {}),
    ("lstm", {"layers": 2, "embedding": "onehot"}),
    ("gru", {"layers": 2}),
    ("rag", {}),
    ("rag", {"cell": "gru", "layers": 2}),
    ("rag", {"cell": "elman", "layers": 3}),
    ("ssm", {}),
    ("ssm", {"layers": 2, "state_dim": 4}),
    ("transformer", {}),
    ("transformer", {"layers": 3, "heads": 2}),
    ("transformer", {"layers": 2, "heads": 2, "head_dim": 3, "pos": "sinusoidal"}),
    ("hybrid", {}),
    ("hybrid", {"base": "ssm", "state_dim": 3, "layers": 2, "heads": 2}),
    ("hybrid", {"base": "gru", "layers": 2, "head_dim": 5}),
    ("looped", {}),
    ("looped", {"iterations": 3, "block_layers": 2, "heads": 2, "pos": "abacus", "digit_max": 6}),
    ("dtnet", {}),
    ("dtnet", {"iterations": 4, "recall": False, "embed_dim": 3}),
    ("grc", {}),
    ("bbt", {"readout": "every"}),
    ("beam_tree", {"beam": 2, "scorer": "parent"}),
    ("rir", {"chunk": 3, "pre_ssm": True}),
]
TREE_ENCODERS = ("bbt", "beam_tree", "rir")
STATELESS = ("transformer", "looped", "dtnet", *TREE_ENCODERS)
"""Families with no recurrent state per unit of width (caches, fixed windows, or the tree
encoders' length-dependent states)."""
DEPTH_FAMILIES = ("looped", "dtnet", *TREE_ENCODERS)
"""Recurrent-depth families and tree encoders: no result of the catalogue concerns them (no
theory class)."""


def test_there_is_one_card_per_buildable_family() -> None:
    assert cards.families() == models.families() == list(cards.CARDS)
    for family in cards.families():
        cls = models.get_class(family)
        card = cards.card(family)
        # the models read their declarations from the cards: one owner
        assert cls.options_spec is card.options and cls.summary == card.summary
        assert cls.uses_retrieval == card.uses_retrieval
        assert models.describe(family)["summary"] == card.summary


@pytest.mark.parametrize(("family", "options"), VARIANTS)
@pytest.mark.parametrize("width", [4, 6])
def test_each_card_states_the_models_state_size(
    family: str, options: dict[str, Any], width: int
) -> None:
    model = models.build(family, 7, width, seed=0, **options)
    card = cards.card(family)
    for length in (1, 5, 33):
        assert card.state_size(width, options, length) == model.state_size(length)
    s, text = card.state_per_width(options)
    if family not in STATELESS:  # the recurrent part: what the RNN theorems bound
        assert text and s > 0
        recurrent = model.state_size(0) if family == "hybrid" else model.state_size(5)
        assert s * width == recurrent
    else:
        assert s == 0.0


def test_model_classes() -> None:
    assert model_class("transformer", {}) == "transformer-1"
    assert model_class("transformer", {"layers": 2}) == "transformer-2"
    assert model_class("transformer", {"layers": 3}) == "transformer-2"
    assert model_class("transformer", {"layers": "2"}) == "transformer-2"  # a CLI string
    assert [model_class(f, {}) for f in ("elman", "lstm", "gru", "ssm")] == ["rnn"] * 4
    assert model_class("hybrid", {}) == "hybrid"
    assert model_class("rag", {}) == "rnn+retrieval"
    # no result of the catalogue concerns the recurrent-depth families
    assert all(model_class(f, {}) is None for f in DEPTH_FAMILIES)
    assert model_class("lstm", {}, "is_tree", {"trace": "cot"}) == "rnn+cot"
    assert model_class("transformer", {}, "is_tree", {"trace": "cot"}) == "transformer+cot"
    # the rag family uses its retriever only on retrieval traces: elsewhere it is the RNN
    # it wraps (W24-RAG is not claimed for it there)
    assert model_class("rag", {}, "is_tree", {"trace": "retrieval"}) == "rnn+retrieval"
    assert model_class("rag", {}, "is_tree", {"trace": "cot"}) == "rnn+cot"
    assert model_class("rag", {}, "is_tree", {"trace": "none"}) == "rnn"
    assert model_class("rag", {}, "index_lookup", {}) == "rnn"
    assert model_class("lstm", {}, "is_tree", {"trace": "retrieval"}) == "rnn"
    assert model_class("tf", {}) is None and model_class(None, {}) is None
    for family, options in VARIANTS:
        for task, params in [(None, None), ("is_tree", {"trace": "cot"})]:
            cls = model_class(family, options, task, params)
            assert cls in theory.MODEL_CLASSES or (cls is None and family in DEPTH_FAMILIES)


def test_state_per_width() -> None:
    assert state_per_width("lstm", {"layers": 2}) == (
        4.0,
        "LSTM state = 2 × hidden (h and c) × 2 layers",
    )
    assert state_per_width("gru", {}) == (1.0, "GRU state = hidden")
    assert state_per_width("ssm", {"state_dim": 4})[0] == 4.0
    assert state_per_width("rag", {}) == (2.0, "LSTM state = 2 × hidden (h and c)")  # cell lstm
    assert state_per_width("rag", {"cell": "gru"}) == (1.0, "RAG (gru) state = hidden")
    # a Transformer carries its key/value cache, no recurrent state
    assert state_per_width("transformer", {})[0] == 0.0
    assert state_per_width("tf", {}) is None
    # every family whose classes bound the state has a recurrent state to bound
    for family, options in VARIANTS:
        if model_class(family, options) in theory.STATE_CLASSES:
            assert state_per_width(family, options)[0] >= 1  # type: ignore[index]


def test_theorem_parameters_fixed_by_the_options() -> None:
    assert cards.card("transformer").theorem_params({"heads": 4}) == {"heads": 4}
    assert cards.card("hybrid").theorem_params({}) == {"heads": 1}
    assert cards.card("lstm").theorem_params({}) == {"cell": "lstm"}
    assert cards.card("rag").theorem_params({"cell": "lstm"}) == {"cell": "lstm"}
    assert cards.card("gru").theorem_params({}) == {"cell": "elman"}  # H20's Elman construction


def test_model_facts_round_trip_and_reject_malformed_records() -> None:
    model = models.build("lstm", 5, 8, seed=0, layers=2)
    facts = ModelFacts.of(model, "index_lookup", {"alphabet": 4}, 17)
    assert facts == ModelFacts("rnn", 2 * 2 * 8, 17, model.num_parameters(), 8, 32 * 32, None)
    assert ModelFacts.from_details({ModelFacts.KEY: facts.to_dict()}) == facts
    for bad in ({}, {ModelFacts.KEY: 3}, {ModelFacts.KEY: {**facts.to_dict(), "width": -1}},
                {ModelFacts.KEY: {**facts.to_dict(), "parameters": True}},
                {ModelFacts.KEY: {**facts.to_dict(), "state_bits": 0}},
                {ModelFacts.KEY: {**facts.to_dict(), "number_bits": "4"}}, None):  # fmt: skip
        assert ModelFacts.from_details(bad) is None


def test_model_facts_record_the_bits_carried_and_p() -> None:
    """A bounded model records m·p and its p; a record from before trials stored them (no
    ``state_bits`` key) reads as unknown (None), not as a float model."""
    lstm = models.build("lstm", 5, 8, seed=0, state_bits=2)
    facts = ModelFacts.of(lstm, "index_lookup", {"alphabet": 2}, 17)
    assert (facts.state_size, facts.state_bits, facts.number_bits) == (16, 32, 2)
    assert facts.state_bits == lstm.state_bits(17)
    tf = models.build("transformer", 5, 8, seed=0, precision_bits=7)
    tf_facts = ModelFacts.of(tf, "index_lookup", {"alphabet": 2}, 17)
    assert (tf_facts.state_bits, tf_facts.number_bits) == (7 * tf.state_size(17), 7)
    old = {k: v for k, v in facts.to_dict().items() if k not in ("state_bits", "number_bits")}
    assert ModelFacts.from_details({ModelFacts.KEY: old}) == ModelFacts("rnn", 16, 17,
        lstm.num_parameters(), 8)  # fmt: skip


def test_number_bits_is_the_largest_p_of_the_carried_numbers_or_none_for_a_float() -> None:
    from sepbench.models.cards import number_bits

    assert number_bits("gru", {}) is None and number_bits("gru", {"state_bits": 3}) == 3
    assert number_bits("transformer", {"precision_bits": 9}) == 9
    assert number_bits("ssm", {"state_bits": 1}) == 1
    # a hybrid carries a recurrent state and a cache: a float among them unless both are set
    assert number_bits("hybrid", {"state_bits": 2}) is None
    assert number_bits("hybrid", {"precision_bits": 8}) is None
    assert number_bits("hybrid", {"state_bits": 2, "precision_bits": 8}) == 8
    assert number_bits("nonesuch", {"state_bits": 2}) is None


def test_cards_and_the_reports_reading_modules_never_import_torch() -> None:
    code = (
        "import sys\n"
        "import sepbench.models, sepbench.models.cards\n"
        "import sepbench.report, sepbench.report.collect, sepbench.report.verdicts\n"
        "import sepbench.report.bounds, sepbench.report.facts, sepbench.report.fits\n"
        "assert sepbench.models.card('lstm').state_size(8, {}, 3) == 16\n"
        "assert sepbench.models.describe('transformer')['options']['heads']['default'] == '1'\n"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cross_option_rules_live_in_the_card() -> None:
    card = cards.card("transformer")
    with pytest.raises(UserError, match="even head_dim"):
        card.validate(6, {"pos": "rope", "heads": 2})  # head_dim 3
    assert card.validate(8, {"pos": "rope", "heads": 2})["head_dim"] == 4
    # width-free facts do not depend on the width's derived head_dim
    assert model_class("transformer", {"pos": "rope"}) == "transformer-1"
    with pytest.raises(UserError, match="even head_dim"):
        cards.card("hybrid").state_size(6, {"pos": "rope", "heads": 2}, 4)
