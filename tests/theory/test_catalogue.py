"""The catalogue: every row of theory.md's table, and each bound's value and growth form."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from sepbench import tasks, theory
from sepbench.errors import UserError
from sepbench.theory import formulas
from sepbench.theory.catalogue import FORMS, MODEL_CLASSES
from sepbench.theory.verdicts import FORM_FAMILY

# theory.md's results table: id -> (tasks, model class the row names, direction)
TABLE = {
    "B24-T1": ({"index_lookup"}, "transformer-1", "upper"),
    "B24-T3": ({"index_lookup"}, "rnn", "lower"),
    "B24-P9": ({"associative_recall"}, "rnn", "lower"),
    "B24-T5": ({"dyck"}, "transformer-1", "lower"),
    "B24-E": ({"dyck"}, "rnn", "upper"),
    "B24-T11": ({"string_equality"}, "rnn", "lower"),
    "B24-T12": ({"string_equality", "disjointness"}, "transformer-1", "lower"),
    "B24-T6": ({"string_equality"}, "transformer-2", "upper"),
    "B24-T13": ({"disjointness"}, "transformer-2", "upper"),
    "B24-T7": ({"nearest_neighbor"}, "transformer-2", "upper"),
    "B24-T8": ({"nearest_neighbor", "mqar"}, "rnn", "lower"),
    "H20": ({"dyck_next"}, "rnn", "tight"),
    "Y21": ({"dyck_next"}, "transformer-2", "upper"),
    "W24-R": ({"index_lookup", "associative_recall"}, "rnn", "lower"),
    "W24-T": ({"is_tree"}, "rnn+cot", "lower"),
    "W24-C": ({"is_tree"}, "transformer+cot", "upper"),
    "W24-RAG": ({"is_tree"}, "rnn+retrieval", "upper"),
    "W24-H": ({"is_tree"}, "hybrid", "upper"),
    # not a row of theory.md's table: its construction "Associative recall, 2 layers"
    "IND": ({"associative_recall"}, "transformer-2", "upper"),
}
IDS = list(TABLE)


def test_every_row_of_the_table_is_a_result_in_table_order() -> None:
    assert theory.ids() == IDS
    assert [r.id for r in theory.results()] == IDS


@pytest.mark.parametrize("rid", IDS)
def test_row_contents(rid: str) -> None:
    r = theory.get(rid)
    row_tasks, model, direction = TABLE[rid]
    assert row_tasks <= set(r.tasks)
    assert model in r.model_classes
    assert r.direction == direction
    assert r.paper in theory.PAPERS and r.source.startswith(r.paper)
    assert rid == "IND" or rid.split("-")[0] == r.paper  # the id names the paper
    assert r.form in FORMS and r.form in FORM_FAMILY
    assert r.model_class in MODEL_CLASSES and set(r.covers) <= set(MODEL_CLASSES)
    assert set(r.tasks) <= set(tasks.names())
    assert r.statement and r.formula and r.assumptions
    if direction == "lower":
        assert r.argument and r.exact
    if direction == "upper":
        assert r.argument is None
    if direction == "tight":
        assert r.argument and r.constructions and r.lower_fn is not None and r.lower_formula
    else:
        assert not r.lower_formula and r.lower_fn is None


def test_get_unknown_id_lists_the_known_ones() -> None:
    with pytest.raises(UserError) as err:
        theory.get("B24-T99")
    assert "B24-T99" in str(err.value)
    assert all(rid in str(err.value) for rid in IDS)
    assert isinstance(err.value, ValueError)


def test_for_task() -> None:
    assert {r.id for r in theory.for_task("index_lookup")} == {
        "B24-T1",
        "B24-T3",
        "W24-R",
        "W24-H",
    }
    assert [r.id for r in theory.for_task("index_lookup", "rnn")] == ["B24-T3", "W24-R"]
    assert [r.id for r in theory.for_task("index_lookup", "rnn+cot")] == ["W24-R"]
    assert [r.id for r in theory.for_task("dyck", "transformer-1")] == ["B24-T5"]
    assert theory.for_task("dyck", "hybrid") == []
    with pytest.raises(UserError, match="tasks with results"):
        theory.for_task("parity")
    with pytest.raises(UserError, match="known classes"):
        theory.for_task("dyck", "lstm")


# Tasks that measure learned dynamics or extrapolation, not a representation theorem of the
# catalogue (capacity.md on passkey: "no theory.md lower bound applies to one key").
WITHOUT_A_RESULT = {
    "passkey",
    "addition",
    "prefix_sums",
    "listops",
    # dense-supervision equality (issue 10): no catalogue result yet — the RNN state bound of
    # B24 Thm 11's argument applies, Thm 12's one-layer Transformer bound does not
    "string_equality_lm",
}


def test_every_task_has_a_result() -> None:
    covered = set(theory.tasks_covered())
    assert covered <= set(tasks.names())
    assert set(tasks.names()) - covered == WITHOUT_A_RESULT


# ------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------


def test_address_dim_is_the_union_bound() -> None:
    assert formulas.address_dim(16) == math.ceil(128 * math.log(32)) == 444
    assert formulas.address_dim(100, gamma=0.5) == math.ceil(32 * math.log(200))


def test_address_dim_vectors_are_nearly_orthogonal() -> None:
    # B24 Lemma 2 with theory.md's constant: random signs at this k stay below γ = 1/4.
    rng = np.random.default_rng(0)
    for n in (16, 64, 256):
        k = formulas.address_dim(n)
        t = rng.choice([-1.0, 1.0], size=(n, k)) / math.sqrt(k)
        gram = t @ t.T
        assert np.allclose(np.diag(gram), 1.0)
        assert np.max(np.abs(gram - np.eye(n))) < 0.25


def test_b24_t1_construction_width() -> None:
    # log2 k + 2·k_addr, k_addr = ceil(128·ln 2N)
    assert theory.min_width("B24-T1", 16) == 2 + 2 * 444
    assert theory.min_width("B24-T1", 16, alphabet=8) == 3 + 2 * 444
    assert theory.min_width("B24-T1", 16, alphabet=5) == 3 + 2 * 444  # ceil(log2 5)
    assert theory.min_width("B24-T1", 16, 4) == theory.min_width("B24-T1", 16, 64)


def test_b24_t1_grows_like_log_n() -> None:
    widths = [theory.min_width("B24-T1", 2**e) for e in range(4, 21)]
    steps = np.diff(widths)
    # each doubling adds 2·128·ln 2 ≈ 177.4 units (± 2 from the ceilings)
    assert np.all(np.abs(steps - 256 * math.log(2)) <= 2)


@pytest.mark.parametrize("rid", ["B24-T3", "B24-P9", "B24-T11", "B24-T8", "W24-R"])
def test_linear_rnn_bounds_double_with_n(rid: str) -> None:
    for n in (16, 100, 1000, 4096):
        assert theory.min_width(rid, 2 * n, 32) == pytest.approx(2 * theory.min_width(rid, n, 32))
        # the state-bit bound does not depend on the precision
        assert theory.min_state_bits(rid, n, 7) == pytest.approx(theory.min_state_bits(rid, n, 32))


def test_rnn_lower_bound_values() -> None:
    assert theory.min_width("B24-T3", 1024, 32) == 1024 * 2 / 32
    assert theory.min_width("B24-T3", 1024, 32, alphabet=2) == 1024 / 32
    assert theory.min_state_bits("B24-T3", 1000, alphabet=3) == pytest.approx(1000 * math.log2(3))
    assert theory.min_state_bits("B24-P9", 100, values=2) == pytest.approx(100)
    assert theory.min_state_bits("B24-T11", 64, alphabet=2) == pytest.approx(64)
    assert theory.min_state_bits("B24-T8", 64) == pytest.approx(32)
    assert theory.min_state_bits("W24-R", 64) == pytest.approx(64)
    assert theory.min_state_bits("W24-T", 64) == pytest.approx(61)
    assert theory.min_width("W24-T", 3, 8) == 0.0


def test_one_layer_transformer_bounds() -> None:
    # B24-T5: m·H >= (N − 1)/(3(p + log2 N))
    assert theory.min_width("B24-T5", 256, 16) == pytest.approx(255 / (3 * 24))
    assert theory.min_width("B24-T5", 256, 16, heads=4) == pytest.approx(255 / (3 * 24 * 4))
    # B24-T12: 3m(p + log2 N)H >= N
    assert theory.min_width("B24-T12", 1024, 22, heads=2) == pytest.approx(1024 / (3 * 32 * 2))
    ratio = theory.min_width("B24-T5", 2**20, 32) / theory.min_width("B24-T5", 2**19, 32)
    assert 1.9 < ratio < 2.0


def test_dyck_rnn_widths() -> None:
    assert theory.min_width("B24-E", 16) == 13  # 7 live states; 13 Elman units (see formula)
    assert theory.min_width("B24-E", 16, types=3, depth=2) == (3 + 9) + 9 + 3 + 1
    # H20: Elman 6D·log2 k − 2D, LSTM 3D·log2 k − D
    assert theory.min_width("H20", 64) == 6 * 2 * 1 - 2 * 2
    assert theory.min_width("H20", 64, cell="lstm") == 3 * 2 * 1 - 2
    assert theory.min_width("H20", 64, types=8, depth=5) == 6 * 5 * 3 - 2 * 5
    assert theory.min_width("H20", 64, types=8, depth=5, cell="lstm") == 3 * 5 * 3 - 5
    # D log k: doubling D doubles the construction; the lower bound is about D·log2 k bits
    assert theory.min_width("H20", 64, types=4, depth=6) == 2 * theory.min_width(
        "H20", 64, types=4, depth=3
    )
    low = theory.lower_bound("H20", 64, 1, types=4, depth=3)
    assert low is not None and 3 * 2 <= low < 3 * 2 + 1


@pytest.mark.parametrize("p", [1, 4, 16, 32])
@pytest.mark.parametrize(("k", "d"), [(2, 1), (2, 2), (4, 3), (16, 5)])
def test_h20_construction_respects_its_lower_bound(p: int, k: int, d: int) -> None:
    # theory.md "Sanity": no construction's width × precision may beat a lower bound
    for cell in ("elman", "lstm"):
        up = theory.min_width("H20", 100, p, types=k, depth=d, cell=cell)
        low = theory.lower_bound("H20", 100, p, types=k, depth=d)
        assert low is not None and up >= low


def test_other_upper_bounds() -> None:
    assert theory.min_width("B24-T6", 10) == 2 + 2 * formulas.address_dim(21) + 1
    assert theory.min_width("B24-T13", 10) == theory.min_width("B24-T6", 10, alphabet=2)
    assert theory.min_width("B24-T7", 100) == 8 + 1 + 2 * formulas.address_dim(201) + 2
    assert theory.get("B24-T7").resolve(4096)["bits"] == 13
    with pytest.raises(UserError, match="bits >= 13"):
        theory.min_width("B24-T7", 4096, bits=8)
    assert theory.min_width("W24-RAG", 4096, 12) == 3
    assert theory.min_width("W24-RAG", 4096, 4) == 2 * 3 + 1
    assert theory.min_width("Y21", 10, types=16) == 4
    assert theory.min_width("W24-C", 10) == 1
    assert theory.min_width("W24-H", 256) == theory.min_width("W24-H", 4) == 1  # form only


def _growth_class(rid: str) -> str:
    """Classify the growth of a result's bounded quantity over N = 2^6 .. 2^20 at p = 32."""
    r = theory.get(rid)
    ns = [2**e for e in range(6, 21)]
    q = np.array([r.width_bound(n, 32) for n in ns])
    if np.allclose(q, q[0], rtol=1e-12):
        return "constant"
    last_ratio = q[-1] / q[-2]
    if 1.9 < last_ratio < 2.1:
        return "linear"
    steps = np.diff(q)
    if np.all(steps > 0) and steps.max() <= 1.5 * steps.min() and last_ratio < 1.1:
        return "log"
    return "other"


@pytest.mark.parametrize("rid", IDS)
def test_form_matches_the_formula(rid: str) -> None:
    form = theory.get(rid).form
    expected = "constant" if form in ("D log k", "log k") else form
    assert _growth_class(rid) == expected


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------


def test_numpy_integers_are_accepted() -> None:
    assert theory.min_width("B24-T3", np.int64(256), np.int32(16)) == 32  # type: ignore[arg-type]


def test_default_precision() -> None:
    assert [theory.default_precision(n) for n in (16, 256, 4096)] == [12, 16, 20]
    assert theory.min_width("B24-T3", 256) == theory.min_width("B24-T3", 256, 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"foo": 1}, "unknown parameter"),
        ({"alphabet": 1}, "must be an integer >= 2"),
        ({"alphabet": "x"}, "must be an integer"),
        ({"alphabet": 2.5}, "must be an integer"),
        ({"alphabet": True}, "must be an integer"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        theory.min_width("B24-T3", 64, **kwargs)  # type: ignore[arg-type]


def test_parameter_strings_from_the_cli_are_parsed() -> None:
    assert theory.min_width("B24-T3", 64, 8, alphabet="4") == 16
    assert theory.min_width("B24-T1", 64, gamma="0.4") == theory.min_width("B24-T1", 64, gamma=0.4)
    with pytest.raises(UserError, match="one of elman, lstm"):
        theory.min_width("H20", 64, cell="gru")
    with pytest.raises(UserError, match=r"< 0\.5"):
        theory.min_width("B24-T1", 64, gamma=0.5)


@pytest.mark.parametrize("length", [1, 0, -4, 2.5, True])
def test_bad_lengths(length: object) -> None:
    with pytest.raises(UserError, match="length"):
        theory.min_width("B24-T3", length)  # type: ignore[arg-type]


@pytest.mark.parametrize("p", [0, -1, 2.0])
def test_bad_precision(p: object) -> None:
    with pytest.raises(UserError, match="precision"):
        theory.min_width("B24-T3", 64, p)  # type: ignore[arg-type]


def test_upper_bounds_have_no_lower_width() -> None:
    assert theory.lower_bound("B24-T1", 64) is None
    assert theory.get("B24-T1").lower_state_bits(64) is None
    assert theory.lower_bound("B24-T3", 64, 8) == theory.min_width("B24-T3", 64, 8)


def test_each_side_has_its_own_formula_text() -> None:
    h20 = theory.get("H20")
    assert h20.formula_of("upper") == h20.formula and "lower" not in h20.formula
    assert h20.formula_of("lower") == h20.lower_formula == "m ≥ log2(Σ_{d≤D} k^d)/p"
    t3 = theory.get("B24-T3")
    assert t3.formula_of("lower") == t3.formula_of("upper") == t3.formula


def test_b24_t8_on_mqar_takes_n_from_the_stored_pairs() -> None:
    r = theory.get("B24-T8")
    mqar = dict(tasks.make("mqar", pairs=5).params)
    assert [r.theorem_length("mqar", n, mqar) for n in (16, 64, 256)] == [10, 10, 10]
    nn = dict(tasks.make("nearest_neighbor").params)
    assert r.theorem_length("nearest_neighbor", 64, nn) == 64
    assert theory.get("B24-T3").theorem_length("mqar", 64, mqar) == 64  # no mapping: N itself


def test_the_induction_head_record_is_its_construction_width() -> None:
    from sepbench import constructions

    for n, keys in [(8, 8), (16, 40), (64, 64)]:
        built = constructions.get("associative_recall_2layer").build(n, keys=keys)
        assert theory.min_width("IND", n, keys=keys) == built.width
    # log growth in N once N dominates the key vocabulary
    widths = [theory.min_width("IND", 2**e, keys=2) for e in range(6, 16)]
    assert np.all(np.abs(np.diff(widths) - 3 * 128 * math.log(2)) <= 3)


def test_importing_theory_never_imports_torch() -> None:
    code = "import sys, sepbench.theory; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
