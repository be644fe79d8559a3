"""The capacity probe on real (tiny) models: the contexts, greedy exact match, the recent-key
rows, mitigations and traces, determinism."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from sepbench import models, tasks
from sepbench.studies.capacity_probe import (
    CapacityProbe,
    exact_match,
    filler_rows,
    grid_rows,
    kept_steps,
    recent_positions,
    recent_rows,
    variants,
)
from sepbench.studies.grid import plan_grid
from sepbench.training import greedy_generate
from tests.studies.common import make_cap

PARAMS = {"digits": 2, "filler": 4, "filler_mode": "pattern"}


# ---------------------------------------------------------------------------------- contexts
@given(
    st.integers(1, 4),  # digits
    st.integers(0, 300),  # context beyond the minimum
    st.integers(2, 128),  # T_train
    st.integers(1, 16),  # rows
)
def test_recent_keys_end_within_half_a_training_length_of_the_query(
    digits: int, extra: int, train_length: int, rows: int
) -> None:
    length = 2 * digits + 3 + extra
    starts = recent_positions(length, digits, train_length, rows)
    span = length - 2 * digits - 2
    query = length - digits - 1
    assert len(starts) == rows and all(0 <= p <= span for p in starts)
    for p in starts:
        block_end = p + digits
        assert query - block_end <= max(1, train_length // 2)  # within the last T_train/2 tokens
    assert list(starts) == sorted(starts, reverse=True)
    allowed = min(max(1, train_length // 2), span + 1)
    if rows <= allowed:
        assert len(set(starts.tolist())) == rows  # spread, no repeats


def test_recent_rows_put_the_key_where_asked() -> None:
    inputs, depth = recent_rows(PARAMS, 200, 32, 8, seed=5)
    task = tasks.make("passkey", **PARAMS)
    key_id, query_id = task.token_to_id["[KEY]"], task.token_to_id["[Q]"]
    starts = recent_positions(200, 2, 32, 8)
    for row, p in zip(inputs, starts, strict=True):
        assert int(np.flatnonzero(row == key_id)[0]) == p
        assert int(np.flatnonzero(row == query_id)[0]) == 200 - 3
    assert 0.9 < depth <= 1.0
    again, _ = recent_rows(PARAMS, 200, 32, 8, seed=5)
    assert np.array_equal(inputs, again)


def test_grid_rows_are_common_random_numbers() -> None:
    a = grid_rows(PARAMS, 64, 0.25, 6, seed=1)
    assert np.array_equal(a, grid_rows(PARAMS, 64, 0.25, 6, seed=1))  # any trial, same rows
    assert not np.array_equal(a, grid_rows(PARAMS, 64, 0.75, 6, seed=1))
    assert not np.array_equal(a, grid_rows(PARAMS, 64, 0.25, 6, seed=2))
    task = tasks.make("passkey", **PARAMS)
    key_id = task.token_to_id["[KEY]"]
    pos = [int(np.flatnonzero(r == key_id)[0]) for r in a]
    assert pos == [int(np.floor(0.25 * (64 - 6) + 0.5))] * 6


def test_filler_rows_hold_no_key_and_follow_the_mode() -> None:
    task = tasks.make("passkey", **PARAMS)
    rows = filler_rows(task, 50, 3, np.random.default_rng(0))
    fillers = task.encode([f"f{i}" for i in range(4)])
    assert rows.shape == (3, 50) and np.array_equal(rows[0], fillers[np.arange(50) % 4])
    rnd = tasks.make("passkey", **{**PARAMS, "filler_mode": "random"})
    r = filler_rows(rnd, 200, 2, np.random.default_rng(0))
    assert set(np.unique(r)) == set(rnd.encode([f"f{i}" for i in range(4)]).tolist())
    assert not np.array_equal(r[0], r[1])


# ---------------------------------------------------------------------------------- exact match
class PasskeyOracle(nn.Module):
    """A causal 'model' that reads the key after [KEY] and writes it after [Q] — except that
    it writes a wrong second digit when the first is odd. Greedy decoding then fails exactly
    on those rows, and so must the teacher-forced exact match."""

    def __init__(self, task: tasks.Task) -> None:
        super().__init__()
        self.vocab = len(task.vocab)
        self.key = task.token_to_id["[KEY]"]
        self.query = task.token_to_id["[Q]"]
        self.digit0 = task.token_to_id["0"]
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, length = x.shape
        logits = torch.zeros(rows, length, self.vocab)
        for b in range(rows):
            row = x[b].tolist()
            if self.key not in row or self.query not in row:
                continue
            k, q = row.index(self.key), row.index(self.query)
            for t in range(q, length):
                i = t - q  # the i-th answer digit is predicted at position t
                if k + 1 + i >= q:
                    break
                digit = row[k + 1 + i] - self.digit0
                if i == 1 and (row[k + 1] - self.digit0) % 2 == 1:
                    digit = (digit + 1) % 10
                logits[b, t, self.digit0 + digit] = 1.0
        return logits * self.scale


def _greedy(model: nn.Module, task: tasks.Task, inputs: np.ndarray, digits: int) -> np.ndarray:
    length = inputs.shape[1]
    gen = greedy_generate(
        model,
        task,
        inputs,
        np.full(len(inputs), length - digits),
        length,
        stops=[],
        incremental=False,
    )
    return np.all(gen.tokens[:, length - digits :] == inputs[:, length - digits :], axis=1)


def test_exact_match_is_greedy_decoding_on_an_oracle() -> None:
    task = tasks.make("passkey", **PARAMS)
    inputs = task.sample(40, 64, seed=3).inputs
    oracle = PasskeyOracle(task)
    ours = exact_match(oracle, inputs, 2)
    assert np.array_equal(ours, _greedy(oracle, task, inputs, 2))
    first = inputs[:, 40 - 2] - task.token_to_id["0"]
    assert np.array_equal(ours, first % 2 == 0)  # right exactly where the oracle is right
    assert ours.any() and not ours.all()


@pytest.mark.parametrize(("family", "options"), [("ssm", {"state_dim": 2}), ("lstm", {})])
def test_exact_match_is_greedy_decoding_on_real_models(family: str, options: dict) -> None:
    task = tasks.make("passkey", digits=1, filler=4)
    hits = 0
    for seed in range(4):
        model = models.build(family, len(task.vocab), 8, seed=seed, options=options)
        for length in (16, 100):
            inputs = task.sample(length, 128, seed=seed).inputs
            ours = exact_match(model, inputs, 1)
            assert np.array_equal(ours, _greedy(model, task, inputs, 1))
            hits += int(ours.sum())
    assert 0 < hits < 4 * 2 * 128  # both outcomes occur


# ---------------------------------------------------------------------------------- the probe
def _trial(family: str, width: int, t_train: int = 16):  # type: ignore[no-untyped-def]
    spec = make_cap()
    return next(
        p.trial
        for p in plan_grid(spec)
        if p.trial.search.family == family
        and p.trial.width == width
        and p.config.length == t_train
        and p.config.replicate == 0
    ), spec


def test_probe_scores_every_point_with_mitigations_and_traces() -> None:
    trial, spec = _trial("ssm", 8)
    outcome = CapacityProbe()(trial)
    ev = spec.evaluation
    d = outcome.details
    points = d["points"]
    per_variant = len(ev.lengths) * (len(ev.depths) + 1)
    assert len(points) == 4 * per_variant
    names = ["none", "forget_more", "state_norm", "window"]
    assert sorted({p["mitigation"] for p in points}) == sorted(names)
    for p in points:
        rows = ev.rows if p["mitigation"] == "none" else ev.mitigation_rows
        assert p["rows"] == rows == len(p["hits"]) and p["correct"] == p["hits"].count("1")
        assert p["probe"] in ("grid", "recent") and p["length"] in ev.lengths
    assert set(d["traces"]) == set(names)
    trace = d["traces"]["none"]
    assert trace["stride"] == 16 and trace["steps"][-1] == max(ev.lengths)
    assert trace["steps"][0] == 16 and trace["reference_step"] == 16
    norms = np.asarray(trace["norms"])
    assert norms.shape == (1, len(trace["steps"]), 8)  # layers × kept steps × channels
    assert d["inference"]["window"] == {"window": 16}
    assert d["inference"]["forget_more"]["write_scale"] == 0.7
    assert np.isclose(d["inference"]["forget_more"]["decay_scale"], np.exp(-1 / (4 * 16)))
    assert len(d["inference"]["state_norm"]["state_norm"][0]) == 8
    assert d["model_facts"]["state_size"] == 16
    assert d["examples_seen"] == outcome.steps * spec.budget.batch_size
    # deterministic: the same trial gives the same bytes
    again = CapacityProbe()(trial)
    assert json.dumps(again.details["points"]) == json.dumps(points)
    assert again.details["traces"] == d["traces"] and again.accuracy == outcome.accuracy


def test_probe_of_a_family_without_mitigations() -> None:
    trial, spec = _trial("lstm", 2)
    outcome = CapacityProbe()(trial)
    ev = spec.evaluation
    assert {p["mitigation"] for p in outcome.details["points"]} == {"none"}
    assert len(outcome.details["points"]) == len(ev.lengths) * (len(ev.depths) + 1)
    assert outcome.details["traces"] == {}


def test_variants_share_the_trained_weights() -> None:
    spec = make_cap()
    task = tasks.make("passkey", digits=1)
    model = models.build("ssm", len(task.vocab), 4, seed=0, options={"state_dim": 1})
    calibration = task.sample(16, 4, seed=0).inputs
    found = variants(model, spec.evaluation.mitigations, 16, calibration)
    assert [n for n, _, _ in found] == ["none", "forget_more", "state_norm", "window"]
    for _, twin, _ in found:
        assert twin.embed.weight is model.embed.weight
    lstm = models.build("lstm", len(task.vocab), 4, seed=0)
    assert [n for n, _, _ in variants(lstm, spec.evaluation.mitigations, 16, None)] == ["none"]


@given(st.integers(1, 64), st.integers(1, 2000), st.integers(1, 16))
def test_kept_steps_are_geometric_and_keep_both_ends(stride: int, count: int, per: int) -> None:
    steps = tuple(stride * (i + 1) for i in range(count))
    keep = kept_steps(steps, per)
    assert keep[0] == 0 and keep[-1] == count - 1 and keep == sorted(set(keep))
    ratio = 2 ** (1 / per)
    for a, b in itertools.pairwise(keep[:-1]):
        assert steps[b] >= steps[a] * ratio  # every inner kept step is a 1/per octave on
        assert b == a + 1 or steps[b - 1] < steps[a] * ratio  # and the first such
    assert len(keep) <= per * (np.log2(count) + 1) + 2
