"""The verification machinery: enumerations and hard inputs against the reference solvers,
broken constructions, dtypes, simulated precision."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions, tasks
from sepbench.constructions import verify as V
from sepbench.constructions.precision import (
    Rounding,
    round_fixed,
    round_mantissa,
    rounded_copy,
    run_rounded,
)
from sepbench.errors import UserError
from sepbench.tasks import IGNORE


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine OpenMP spinning makes small ops 100x
    slower with two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ENUM_CASES = [
    ("index_lookup", {"alphabet": 2}, 3),
    ("index_lookup", {"alphabet": 3}, 2),
    ("string_equality", {"alphabet": 2}, 3),
    ("string_equality", {"alphabet": 3}, 2),
    ("disjointness", {}, 3),
    ("dyck", {"types": 2, "depth": 2}, 4),
    ("dyck", {"types": 1, "depth": 1}, 6),
    ("dyck_next", {"types": 2, "depth": 2}, 6),
]


def _supervised(task: tasks.Task, chunk: V.Chunk, row: int) -> list[str]:
    tgt = chunk.targets[row]
    return [task.vocab[int(t)] for t in tgt[tgt != IGNORE]]


@pytest.mark.parametrize(("name", "params", "n"), ENUM_CASES)
def test_enumerations_match_the_reference_solver(name: str, params: dict, n: int) -> None:
    task = tasks.make(name, **params)
    count, make = V.ENUMERATORS[name](task, n)
    chunk = make(0, count)
    decoded = {tuple(task.decode(row)) for row in chunk.inputs}
    assert len(decoded) == chunk.inputs.shape[0]  # every input once
    for row in range(chunk.inputs.shape[0]):
        tokens = task.decode(chunk.inputs[row])
        assert task.solve(tokens) == _supervised(task, chunk, row)
    if name == "dyck_next":  # exactly the valid strings, found by brute force
        brackets = tasks.dyck.bracket_tokens(params["types"])
        valid = {
            s
            for s in itertools.product(brackets, repeat=n)
            if tasks.dyck.is_dyck(s, params["types"], params["depth"])
        }
        assert decoded == valid
    else:
        assert chunk.inputs.shape[0] == count


def test_enumeration_chunks_cover_the_range_in_order() -> None:
    task = tasks.make("index_lookup", alphabet=2)
    count, make = V.ENUMERATORS["index_lookup"](task, 4)
    whole = make(0, count).inputs
    parts = np.concatenate([make(a, min(count, a + 7)).inputs for a in range(0, count, 7)])
    assert count == 2**4 * 4 and np.array_equal(whole, parts)


@pytest.mark.parametrize(
    ("name", "params", "n"),
    [
        ("index_lookup", {"alphabet": 4}, 9),
        ("string_equality", {"alphabet": 3}, 7),
        ("disjointness", {}, 7),
        ("index_lookup", {"alphabet": 4, "max_length": 2048}, 2048),
        ("disjointness", {}, 1024),
        ("associative_recall", {"keys": 64}, 40),
        ("nearest_neighbor", {"bits": 6}, 30),
        ("nearest_neighbor", {"bits": 11}, 1024),
    ],
)
def test_hard_inputs_match_the_reference_solver(name: str, params: dict, n: int) -> None:
    task = tasks.make(name, **params)
    chunk = V.HARD_INPUTS[name](task, n, 16, np.random.default_rng(0))
    assert 1 <= chunk.inputs.shape[0] <= 16 and chunk.inputs.shape[1] == task.max_tokens(n)
    for row in range(chunk.inputs.shape[0]):
        assert task.solve(task.decode(chunk.inputs[row])) == _supervised(task, chunk, row)


def _admissible(name: str, n: int, **params: Any) -> int:
    """The smallest knob at which the build's hypotheses (the address margin) hold."""
    rule = constructions.get(name).admissible
    assert rule is not None
    dim = rule(n, 1, **params)
    assert dim is not None
    return int(dim)


def _small_lookup(n: int, dim: int | None = None, **params: Any) -> constructions.HandBuilt:
    k = _admissible("index_lookup_1layer", n) if dim is None else dim
    return constructions.get("index_lookup_1layer").build(n, addr_dim=k, **params)


def test_exhaustive_index_lookup_up_to_12() -> None:
    rows = [
        V.check(
            _small_lookup(n, alphabet=2),
            exhaustive_limit=1 << 17,
            contexts=2,
            exhaustive_work=math.inf,
        )
        for n in (1, 5, 12)
    ]
    assert [r.exhaustive for r in rows] == [2, 2**5 * 5, 2**12 * 12]
    assert all(r.verdict == "pass" and r.sampled == 0 and r.every == 0 for r in rows)


def test_long_lengths_use_every_position_hard_inputs_and_samples() -> None:
    hb = _small_lookup(2048, max_length=2048)
    row = V.check(hb, samples=4, hard_limit=4, name="index_lookup_1layer", contexts=1)
    assert row.verdict == "pass" and row.exhaustive == 0 and row.every == 2048
    assert row.hard == 4 and row.sampled == 4 and row.min_gap > 1


@pytest.mark.parametrize("n", [6, 1024])
def test_a_broken_construction_fails_with_its_counterexample(n: int) -> None:
    hb = _small_lookup(n, dim=32, alphabet=4)
    with torch.no_grad():
        model: Any = hb.module
        model.layers[0].attn.W_V.weight.zero_()
    row = V.check(hb, name="broken", samples=4, hard_limit=4)
    assert row.verdict == "fail" and row.errors > 0
    assert row.counterexample is not None and "expected" in row.counterexample
    first = row.counterexample.split()
    assert first[0].startswith("s") and any(t.startswith("@") for t in first)
    table = V.format_rows([row])
    assert "fail" in table and "first counterexample" in table


def test_stop_at_first_and_row_fields() -> None:
    hb = _small_lookup(8, dim=16)
    with torch.no_grad():
        model: Any = hb.module
        model.readout.weight.mul_(-1)
    row = V.check(hb, stop_at_first=True, samples=64, exhaustive_limit=0, hard_limit=0)
    assert row.verdict == "fail" and row.checked <= 64 and row.min_gap < 0
    d = row.to_dict()
    assert d["verdict"] == "fail" and d["checked"] == row.checked


def test_dtypes_and_user_errors() -> None:
    rows = V.verify(
        "index_lookup_1layer",
        [64],
        ["float32", "bfloat16", "float16"],
        params={"addr_dim": _admissible("index_lookup_1layer", 64)},
        samples=16,
        hard_limit=8,
    )
    assert [r.precision for r in rows] == ["float32", "bfloat16", "float16"]
    assert all(r.verdict == "pass" for r in rows)
    with pytest.raises(UserError, match="dtype"):
        V.verify("index_lookup_1layer", [4], "float8")
    with pytest.raises(UserError, match="unknown construction"):
        V.verify("no_such_construction", [4])


def test_generation_path_reports_failures() -> None:
    from sepbench import models

    task = tasks.make("is_tree", graph="binary", trace="cot", max_length=8)
    model = models.build("transformer", len(task.vocab), 8, layers=1, max_len=64, seed=0)
    hb = constructions.HandBuilt(
        module=model, width=8, result_id="none", width_formula="8", task=task, length=6,
        generate=True,
    )  # fmt: skip
    row = V.check(hb, samples=4, name="untrained")
    assert row.verdict == "fail" and row.errors == 4 and row.counterexample is not None


# ------------------------------------------------------------------------------- precision


@settings(max_examples=25)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=64), min_size=1, max_size=20))
def test_mantissa_rounding_matches_float16_and_bfloat16(xs: list[float]) -> None:
    x = torch.tensor(xs, dtype=torch.float64)
    x = x[(x.abs() > 1e-4) | (x == 0)]  # float16's normal range
    assert torch.equal(round_mantissa(x, 10), x.half().double())
    assert torch.equal(round_mantissa(x, 7), x.bfloat16().double())
    assert torch.equal(round_mantissa(x, 52), x)
    assert torch.equal(round_mantissa(round_mantissa(x, 5), 5), round_mantissa(x, 5))


def test_fixed_point_rounding() -> None:
    x = torch.tensor([0.3, -0.3, 100.0, float("-inf"), 1 / 3], dtype=torch.float64)
    out = round_fixed(x, 2)
    assert out.tolist() == [0.25, -0.25, 4.0, float("-inf"), 0.25]


def test_52_bits_equal_float64_and_tiny_precision_breaks() -> None:
    se = _admissible("string_equality_2layer", 64)
    hb = constructions.get("string_equality_2layer").build(64, addr_dim=se)
    batch = hb.task.sample(64, 8, seed=3)
    x = torch.from_numpy(batch.inputs)
    with torch.no_grad():
        ref = hb.module(x)
        exact = rounded_copy(hb.module, 52)
        with Rounding(52):
            out = exact(x)
    assert torch.allclose(out, ref, rtol=0, atol=1e-9)
    assert torch.equal(out.argmax(-1), ref.argmax(-1))
    assert torch.equal(run_rounded(hb.module, x, 40, fixed=True).argmax(-1), ref.argmax(-1))
    ok = V.check(hb, bits=52, samples=8, hard_limit=4)
    assert ok.verdict == "pass" and ok.precision == "p=52"
    # B24's fixed-point grid: 2 fraction bits cannot resolve the 1/(2(2N+1)) threshold
    bad = V.check(hb, bits=2, fixed=True, samples=8, hard_limit=4)
    assert bad.verdict == "fail" and bad.precision == "fixed=2" and bad.counterexample
    # floating point with no mantissa bits (numbers ±2^e) breaks nearest neighbour
    nn_dim = _admissible("nearest_neighbor_2layer", 32)
    nn = constructions.get("nearest_neighbor_2layer").build(32, addr_dim=nn_dim)
    assert V.check(nn, bits=0, samples=16).verdict == "fail"
    assert V.check(nn, bits=8, samples=16).verdict == "pass"


# ------------------------------------------------------------------------------------ CLI


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `sepbench verify ...` through its own parser (independent of the CLI's group list)."""
    from sepbench.cli import _Parser
    from sepbench.cli import verify as cli_verify

    parser = _Parser(prog="sepbench")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    cli_verify.register(sub)
    try:
        args = parser.parse_args(["verify", *argv])
        code = args.handler(args)
    except UserError as exc:
        print(f"sepbench: error: {exc}", file=sys.stderr)
        code = 2
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_passes_prints_a_table_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(
        ["index_lookup_1layer", "--lengths", "4,512",
         f"--param=addr_dim={_admissible('index_lookup_1layer', 512)}",
         "--param", "max_length=512", "--samples", "4", "--dtype", "float64,float32"],
        capsys,
    )  # fmt: skip
    assert code == 0 and "all passed" in out
    assert out.count("pass") >= 4 and "512" in out and "float32" in out
    code, out, _ = _cli(["--list"], capsys)
    assert code == 0 and "string_equality_2layer" in out and "knob: addr_dim" in out


def test_cli_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    # a failing check: one mantissa bit is not enough for nearest neighbour
    code, out, _ = _cli(
        ["nearest_neighbor_2layer", "--lengths", "32", "--bits", "0", "--samples", "16"],
        capsys,
    )  # fmt: skip
    assert code == 1 and "first counterexample" in out and "failing" in out
    for argv in (
        ["no_such_thing"],
        ["index_lookup_1layer", "--dtype", "float8"],
        ["--param", "addr_dim=3"],
        ["index_lookup_1layer", "--lengths", "0"],
        ["index_lookup_1layer", "--fixed"],
        ["index_lookup_1layer", "--param", "colour=red", "--lengths", "4"],
    ):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and "error" in err, argv


# --------------------------------------------------------------------------------- curves


def test_width_search_accepts_the_smallest_admissible_knob_that_passes() -> None:
    from sepbench.constructions import curves

    point = curves.smallest_knob("index_lookup_1layer", 64)
    assert point.knob is not None and point.probes == {point.knob: True}
    assert point.knob == _admissible("index_lookup_1layer", 64)  # the proof holds: first passes
    assert point.width == 2 + 2 * point.knob and point.every == curves.CURVE_CONTEXTS * 64
    below = constructions.get("index_lookup_1layer").build(64, addr_dim=point.knob - 1)
    assert not below.hypotheses_hold
    fixed = [n for n, c in constructions.registry().items() if c.width_knob is None]
    if fixed:
        with pytest.raises(UserError, match="no width knob"):
            curves.smallest_knob(fixed[0], 8)


def test_width_curve_fit_and_verdict() -> None:
    from sepbench.constructions import curves

    wc = curves.width_curve("index_lookup_1layer", [8, 32, 128, 512])
    assert [p.length for p in wc.points] == [8, 32, 128, 512]
    assert all(p.knob is not None for p in wc.points)
    assert wc.fit is not None and wc.verdict is not None and wc.verdict.result_id == "B24-T1"
    assert wc.law.startswith("w =")


def test_precision_point_and_sanity() -> None:
    from sepbench.constructions import curves

    se = _admissible("string_equality_2layer", 32)
    hb = constructions.get("string_equality_2layer").build(32, addr_dim=se)
    q = curves.precision_point(hb, dtypes=("float32",))
    assert q.mantissa_bits is not None and q.mantissa_bits <= 8
    assert q.fixed_bits is not None and 3 <= q.fixed_bits <= 16 and q.dtypes == {"float32": True}
    assert q.needed_bits == 2 * q.fixed_bits + 1
    # a two-layer Transformer is bound by no lower bound of the catalogue on its task
    assert curves.sanity("string_equality_2layer", [(16, 12)], bits={16: 9}) == []
    with pytest.raises(UserError, match="no measured bits"):  # no generous default
        curves.sanity("string_equality_2layer", [(16, 12)], bits={})
    rnn = [
        name
        for name, c in constructions.registry().items()
        if curves.model_class(c) == "rnn" and c.task == "index_lookup"
    ]
    assert rnn, "the prefix RNN (B24-T3's tightness witness) must be registered"
    rows = curves.sanity(rnn[0], [(16, None)], bits={16: 64})
    assert rows and all(r.ok for r in rows) and {r.bound_id for r in rows} >= {"B24-T3"}
    tight = curves.sanity(rnn[0], [(16, None)], bits={16: 1})  # 1 bit a number: m >= N·log2 k
    assert all(r.lower_numbers > 0 for r in tight)


def test_rounding_keeps_views_writable() -> None:
    """Recurrences write step results through views (``unbind`` + ``out=``): the rounding
    mode must hand those views back, not rounded copies."""
    x = torch.linspace(0.1, 1.3, 12, dtype=torch.float64).view(3, 4)
    buf = torch.zeros(3, 4, dtype=torch.float64)
    with Rounding(3):
        steps = buf.unbind(0)
        for t in range(3):
            torch.mul(x[t], 1.0, out=steps[t])
        y = buf * 3.0
    assert torch.equal(buf, x) and torch.equal(y, round_mantissa(x * 3.0, 3))
