"""Issue 9, "constructive curves that are proofs, not samples": a width is accepted only where
the construction's proof applies (its structural hypotheses hold) and the network answers
every position's hard input; the sanity check charges the bits a construction needs.

The first two tests are the regression tests: the knobs the old search accepted (its
docs/constructions.md reported addr_dim 16 for index_lookup_1layer at N = 1024 and 16 for
nearest_neighbor_2layer at N = 512) built networks that answer queries at colliding positions
wrongly; they must be rejected, and the accepted knob must answer every position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from sepbench import constructions, tasks
from sepbench.constructions import base, curves
from sepbench.constructions import verify as V


@pytest.mark.parametrize(
    "name, n, old_knob, params",
    [
        ("index_lookup_1layer", 1024, 16, {"max_length": 1024}),
        ("nearest_neighbor_2layer", 512, 16, {}),
    ],
)
def test_the_old_accepted_knob_is_rejected_and_the_new_one_answers_every_position(
    name: str, n: int, old_knob: int, params: dict[str, Any]
) -> None:
    c = constructions.get(name)
    old = c.build(n, addr_dim=old_knob, **params)
    assert not old.hypotheses_hold  # colliding addresses: the margin fails
    row = V.check(old, contexts=1, hard_limit=0, samples=0)
    assert row.every > 0 and row.errors > 0 and row.verdict == "fail"  # and answers are wrong
    point = curves.smallest_knob(name, n, params=params)
    assert point.knob is not None and point.knob > old_knob
    assert point.probes[point.knob] is True and point.every >= n
    new = c.build(n, addr_dim=point.knob, **params)
    assert new.hypotheses_hold
    full = V.check(new, contexts=2, hard_limit=8, samples=8, seed=5)  # other strings too
    assert full.verdict == "pass" and full.every >= 2 * (n // 2)


@pytest.mark.parametrize(
    "name", ["index_lookup_1layer", "nearest_neighbor_2layer", "associative_recall_2layer",
             "string_equality_2layer", "disjointness_2layer"],
)  # fmt: skip
def test_accepted_networks_answer_every_position_and_the_search_is_reproducible(
    name: str,
) -> None:
    a = curves.smallest_knob(name, 24)
    b = curves.width_curve(name, [24]).points[0]  # what `sepbench verify --curves` runs
    assert a.knob is not None and (a.knob, a.width) == (b.knob, b.width)
    assert a.every >= 24 and a.hypotheses and "FAILS" not in a.hypotheses
    c = constructions.get(name)
    assert c.admissible is not None and a.knob == c.admissible(24, 1)


def test_every_position_contexts_have_independent_answers() -> None:
    rng = np.random.default_rng(0)
    for name, n in (("index_lookup", 50), ("nearest_neighbor", 64), ("associative_recall", 40)):
        task = tasks.make(name) if name != "associative_recall" else tasks.make(name, keys=n)
        ctx = V.EVERY_POSITION[name](task, n, rng)
        assert isinstance(ctx, V.Context) and ctx.finals.size == n  # every position queried
        for r in range(0, n, 7):
            tokens = task.decode(np.append(ctx.prefix, ctx.finals[r]))
            assert task.solve(tokens) == [task.vocab[int(ctx.answers[r])]]
    pairs = V.EVERY_POSITION["string_equality"](tasks.make("string_equality"), 9, rng)
    assert isinstance(pairs, V.Chunk) and pairs.inputs.shape[0] == 9


# --------------------------------------------------------------------- sanity can fail


class _Cheat(nn.Module):
    """Answers index lookup by reading the whole input, while claiming one number of state:
    what a broken recurrent construction would look like."""

    def __init__(self, task: tasks.Task) -> None:
        super().__init__()
        self.vocab = len(task.vocab)
        self.sym0, self.at1 = task.token_to_id["s0"], task.token_to_id["@1"]
        self.dummy = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def state_size(self, length: int) -> int:
        return 1

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        b, t = inputs.shape
        pos = (inputs[:, -1] - self.at1).clamp(0, t - 2)
        answer = inputs[torch.arange(b), pos]
        logits = torch.zeros(b, t, self.vocab, dtype=torch.float64) + self.dummy
        logits[torch.arange(b), -1, answer] = 1.0
        return logits


def _cheat(length: int, alphabet: int = 2) -> base.HandBuilt:
    task = tasks.make("index_lookup", alphabet=alphabet, max_length=length)
    return base.HandBuilt(module=_Cheat(task), width=1, result_id="B24-T3",
                          width_formula="1", task=task, length=length)  # fmt: skip


def test_sanity_charges_the_measured_bits_and_fails_a_cheating_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        base._REGISTRY,
        "cheat",
        base.Construction("cheat", _cheat, "index_lookup", "B24-T3", "constant", "cheats"),
    )
    n = 32
    q = curves.precision_point(_cheat(n), dtypes=())
    assert q.needed_bits is not None and q.needed_bits <= 5  # one-hot logits: 1 fraction bit
    rows = curves.sanity("cheat", [(n, None)], bits={n: q.needed_bits})
    assert rows and not all(r.ok for r in rows)  # 1 number x 3 bits < N log2 k = 32 bits
    assert {r.bound_id for r in rows if not r.ok} >= {"B24-T3"}
    # the old charge, 64 bits (the float64 it ran in), could not catch it
    old = curves.sanity("cheat", [(n, None)], bits={n: 64})
    assert all(r.ok for r in old)
