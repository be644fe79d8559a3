"""capacity.md's definitions on synthetic records: T_recall, forgetting and collapse, T_forget,
the capacity curve, paired restriction to rows, and the law comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepbench.errors import UserError
from sepbench.studies.capacity_analysis import (
    Cell,
    Recall,
    capacity_points,
    compare_laws,
    curves,
    fit_exponential,
    forgetting,
    min_points,
    t_forget,
    t_recall,
)

GRID = [16, 32, 64, 128, 256, 512]


# ---------------------------------------------------------------------------------- T_recall
def test_t_recall_examples() -> None:
    acc = dict(zip(GRID, [1.0, 0.97, 0.95, 0.6, 0.99, 1.0], strict=True))
    assert t_recall(acc, 0.95) == Recall(64)  # 256 passes again but 128 failed before it
    assert t_recall(acc, 0.5) == Recall(512, "above")  # every L passes: a lower bound
    assert t_recall(acc, 0.98) == Recall(16)
    assert t_recall({16: 0.2, 32: 1.0}, 0.95) == Recall(None, "below")
    assert t_recall({64: 0.95, 16: 0.96, 32: 0.4}, 0.95) == Recall(16)  # order of the keys
    assert Recall(None, "below").text() == "—" and Recall(512, "above").text() == "≥ 512"
    with pytest.raises(UserError):
        t_recall({}, 0.95)


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=9),
    st.floats(0.05, 1.0),
)
def test_t_recall_is_the_end_of_the_first_passing_run(accs: list[float], theta: float) -> None:
    lengths = [16 * 2**i for i in range(len(accs))]
    r = t_recall(dict(zip(lengths, accs, strict=True)), theta)
    passing = [a >= theta for a in accs]
    run = next((i for i, ok in enumerate(passing) if not ok), len(passing))  # first failure
    if run == 0:
        assert r == Recall(None, "below")
    else:
        assert r.value == lengths[run - 1]
        assert all(a >= theta for a in accs[:run])
        assert (r.censored == "above") == (run == len(accs))


# ---------------------------------------------------------------------------------- forgetting
def test_forgetting_and_collapse_length() -> None:
    healthy = {n: 1.0 for n in GRID}
    f = forgetting(healthy, 16, 0.95, span=32)
    assert f.forgets and f.score == 1.0 and f.span_end == 512 and f.collapse_length is None
    collapsing = {16: 1.0, 32: 1.0, 64: 0.7, 128: 0.3, 256: 0.1, 512: 0.0}
    f = forgetting(collapsing, 32, 0.95)
    assert not f.forgets and f.score == 0.0 and f.collapse_length == 64
    # only L <= span·T_train is judged: a failure beyond it does not count
    late = {**healthy, 512: 0.0}
    assert forgetting(late, 8, 0.95, span=32).forgets  # judged up to 256
    assert not forgetting(late, 16, 0.95, span=32).forgets  # judged up to 512
    # a model that does not recall where it was trained has nothing to collapse from
    never = {n: 0.1 for n in GRID}
    f = forgetting(never, 32, 0.95)
    assert not f.forgets and f.collapse_length is None
    with pytest.raises(UserError):
        forgetting({}, 16, 0.95)


def test_t_forget_is_the_smallest_length_whose_median_seed_forgets() -> None:
    scores = {16: [0.2, 1.0, 0.4], 32: [1.0, 0.9, 1.0], 64: [1.0, 1.0, 1.0]}
    assert t_forget(scores, 0.95) == 32  # median 1.0 at 32 (two of three forget)
    assert t_forget({16: [0.2, 1.0], 32: [0.9, 1.0]}, 0.95) == 32  # even: mean of the middle two
    assert t_forget({16: [0.5], 32: [0.9]}, 0.95) is None
    assert t_forget({16: [math.nan], 32: [1.0]}, 0.95) == 32


def test_capacity_points_take_the_best_training_length() -> None:
    trials = [
        (4, 0, Recall(None, "below")),
        (4, 0, Recall(32)),
        (4, 1, Recall(None, "below")),
        (16, 0, Recall(512, "above")),
        (16, 0, Recall(512)),
        (16, 0, Recall(64)),
    ]
    assert capacity_points(trials) == [
        (4, 0, Recall(32)),
        (4, 1, Recall(None, "below")),
        (16, 0, Recall(512, "above")),
    ]


# ---------------------------------------------------------------------------------- records
def _points() -> list[dict[str, object]]:
    rows = []
    for n in (16, 64):
        for d in (0.25, 0.75):
            rows.append(
                {"mitigation": "none", "probe": "grid", "length": n, "depth": d, "rows": 4,
                 "correct": 3, "hits": "1101" if d < 0.5 else "1110"}
            )  # fmt: skip
            rows.append(
                {"mitigation": "window", "probe": "grid", "length": n, "depth": d, "rows": 2,
                 "correct": 2, "hits": "11"}
            )  # fmt: skip
        rows.append(
            {"mitigation": "none", "probe": "recent", "length": n, "depth": 0.9, "rows": 4,
             "correct": 4 if n == 16 else 1, "hits": "1111" if n == 16 else "0001"}
        )  # fmt: skip
    return rows


def test_curves_average_depths_and_restrict_to_the_paired_rows() -> None:
    c = curves(_points())
    assert c.mitigations == ["none", "window"]
    assert c.averaged("none") == {16: 0.75, 64: 0.75}
    assert c.averaged("none", rows=2) == {16: 1.0, 64: 1.0}  # "11" of both depths
    assert c.averaged("none", rows=3) == {16: 5 / 6, 64: 5 / 6}  # "110", "111"
    assert c.recent_accuracy("none") == {16: 1.0, 64: 0.25}
    assert c.recent_accuracy("none", rows=3) == {16: 1.0, 64: 0.0}
    lengths, depths, acc = c.heatmap("none")
    assert lengths == [16, 64] and depths == [0.25, 0.75] and acc.shape == (2, 2)
    with pytest.raises(UserError):
        Cell(4, 3).first(2)  # no hits: cannot be restricted


# ---------------------------------------------------------------------------------- laws
S = np.array([4, 8, 16, 32, 64, 128, 256] * 2, dtype=float)


def test_exponential_fit_recovers_its_parameters() -> None:
    y = 50 * np.expm1(0.02 * S) + 10
    params, rss = fit_exponential(S, y)
    assert rss < 1e-6 * float(np.sum(y**2))
    assert params["r"] == pytest.approx(0.02, rel=1e-3)
    assert params["b"] == pytest.approx(50, rel=1e-2) and params["c"] == pytest.approx(10, abs=0.5)


@pytest.mark.parametrize(
    ("y", "best"),
    [
        (50 * np.expm1(0.02 * S) + 10, "exponential"),
        (7 * S + 30, "linear"),
        (20 * S**0.5, "power"),
        (np.full_like(S, 300.0), "constant"),
    ],
)
def test_compare_laws_prefers_the_generating_form(y: np.ndarray, best: str) -> None:
    noise = np.where(np.arange(len(S)) % 2 == 0, 1.0, -1.0) * 1e-3 * float(np.max(y))
    law = compare_laws(S, y + noise)
    assert law.best == best
    assert law.decision.startswith(f"{best} is preferred")
    assert set(law.fits) == {"constant", "linear", "power", "exponential"}
    assert law.criterion == "AICc" and law.delta(best) == 0.0


def test_compare_laws_says_when_it_cannot_decide() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(100, 500, size=len(S))  # no growth and much scatter
    law = compare_laws(S, y, quantum="a quantised grid")
    assert "undecided" in law.decision or law.best == "constant"
    assert "a quantised grid" in law.decision and "14 points at 7 state sizes" in law.decision
    flat_growth = compare_laws([4, 16, 64, 4, 16, 64], [100, 120, 90, 110, 95, 130])
    assert "cannot even tell growth from a constant" in flat_growth.decision or (
        flat_growth.best == "constant"
    )
    with pytest.raises(UserError):
        compare_laws([4, 4, 16], [10, 20, 30])  # two distinct state sizes


def test_min_points_lets_aicc_score_every_form() -> None:
    assert min_points(("constant", "linear", "power", "exponential")) == 6  # k = 4: n > 5
    assert min_points(("constant", "linear", "power")) == 5  # k = 3: n > 4
    assert min_points(("constant",)) == 4
    four = [(2.0, 3.0), (4.0, 5.0), (8.0, 9.0)]
    law = compare_laws([x for x, _ in four * 2], [y + i for i, (_, y) in enumerate(four * 2)])
    assert law.criterion == "AICc"  # six points: every form has an AICc
