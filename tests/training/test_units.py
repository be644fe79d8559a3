"""The trainer's pieces, without training: seeds, schedule, metrics, data pipeline, generation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from sepbench import tasks
from sepbench.errors import UserError
from sepbench.tasks import IGNORE
from sepbench.training import Budget, TrialResult, data, greedy_generate, stream
from sepbench.training.config import STREAMS
from sepbench.training.generate import evaluate_generation, generation_metrics, stop_ids
from sepbench.training.metrics import counts, loss_members, loss_single, to_metrics


def test_streams_are_distinct_and_reproducible() -> None:
    draws = {name: stream(7, name).integers(0, 2**62, size=4).tolist() for name in STREAMS}
    assert len({tuple(v) for v in draws.values()}) == len(STREAMS)
    assert stream(7, "train").integers(0, 2**62, size=4).tolist() == draws["train"]
    # the documented rule: SeedSequence spawn keys, as SeedSequence(seed).spawn() hands out
    children = np.random.SeedSequence(7).spawn(2)
    assert np.random.default_rng(children[1]).integers(0, 2**62, size=4).tolist() == draws["eval"]
    assert stream(8, "train").integers(0, 2**62, size=4).tolist() != draws["train"]


def test_schedule_warms_up_then_decays() -> None:
    b = Budget(max_steps=1000, lr=1e-2, warmup=100, min_lr_ratio=0.1)
    assert b.lr_at(0) == pytest.approx(1e-4)
    assert b.lr_at(99) == pytest.approx(1e-2)
    assert b.lr_at(550) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert b.lr_at(1000) == pytest.approx(1e-3)
    lrs = [b.lr_at(s) for s in range(100, 1000)]
    assert all(x >= y for x, y in itertools.pairwise(lrs))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_steps", 0),
        ("batch_size", 2.5),
        ("lr", -1.0),
        ("lr", math.nan),
        ("beta2", 1.0),
        ("min_lr_ratio", 2.0),
        ("eval_every", True),
    ],
)
def test_bad_budget_is_a_user_error(field: str, value: object) -> None:
    with pytest.raises(UserError, match=field):
        Budget(**{field: value})  # type: ignore[arg-type]


def test_budget_and_result_round_trip_as_plain_data() -> None:
    b = Budget(max_steps=10)
    assert Budget.from_dict(b.to_dict()) == b
    with pytest.raises(UserError, match="unknown field 'steps'"):
        Budget.from_dict({"steps": 3})
    r = TrialResult(True, 3, 1.0, 1.0, 1.0, 0.1, 0.5, 0, "reached", {"budget": b.to_dict()})
    import json

    assert TrialResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_counts_on_hand_made_logits() -> None:
    # 3 rows, 4 positions, vocab 3. Row 0: both supervised right; row 1: first wrong, last right;
    # row 2: nothing supervised (excluded from the row counts).
    targets = torch.tensor(
        [[IGNORE, 1, IGNORE, 2], [0, IGNORE, IGNORE, 2], [IGNORE] * 4], dtype=torch.long
    )
    pred = torch.tensor([[0, 1, 0, 2], [1, 0, 0, 2], [0, 0, 0, 0]])
    logits = torch.nn.functional.one_hot(pred, 3).float() * 10
    m = to_metrics(counts(logits, targets).numpy())
    assert m.token_accuracy == pytest.approx(3 / 4)
    assert m.sequence_accuracy == pytest.approx(1 / 2)
    assert m.answer_accuracy == pytest.approx(2 / 2)
    assert m.examples == 2
    # leading member dimension: counts per member
    stacked = counts(torch.stack([logits, logits]), torch.stack([targets, targets]))
    assert stacked.shape == (2, 6)


def test_member_losses_equal_single_losses() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4, 7)
    targets = torch.randint(0, 7, (3, 5, 4))
    targets[torch.rand(3, 5, 4) < 0.6] = IGNORE
    prep = data.prepare(logits.new_zeros(1).numpy(), targets.numpy(), torch.device("cpu"), True)
    per = loss_members(logits, prep.sel, prep.sel_targets, prep.member, prep.counts)
    for e in range(3):
        single = data.prepare(np.zeros(1), targets[e].numpy(), torch.device("cpu"), ensemble=False)
        ref = loss_single(logits[e], single.sel, single.sel_targets)
        full = nn.functional.cross_entropy(
            logits[e].reshape(-1, 7), targets[e].reshape(-1), ignore_index=IGNORE
        )
        assert per[e].item() == pytest.approx(ref.item(), rel=1e-6)
        assert ref.item() == pytest.approx(full.item(), rel=1e-6)


def test_prefetch_gives_the_same_batches_in_order() -> None:
    task = tasks.make("index_lookup", max_length=32)

    def batches(prefetch: bool) -> list[np.ndarray]:
        make = data.train_stream(
            task, 16, 8, [stream(3, "train")], torch.device("cpu"), ensemble=False
        )
        with data.Prefetcher(make, enabled=prefetch) as src:
            return [src.next().inputs.numpy().copy() for _ in range(5)]

    for a, b in zip(batches(True), batches(False), strict=True):
        np.testing.assert_array_equal(a, b)


def test_chunked_sampler_slices_one_large_sample() -> None:
    task = tasks.make("is_tree", trace="cot", max_length=8)
    sampler = data.ChunkedSampler(task, 6, 16, stream(0, "train"))
    assert sampler.steps == data.chunk_steps(16, task.max_tokens(6)) > 1
    got = [sampler.next() for _ in range(sampler.steps + 1)]
    rng = stream(0, "train")
    first = task.sample(6, 16 * sampler.steps, rng=rng)
    second = task.sample(6, 16 * sampler.steps, rng=rng)
    for k, (inputs, targets) in enumerate(got):
        ref = first if k < sampler.steps else second
        rows = slice((k % sampler.steps) * 16, (k % sampler.steps + 1) * 16)
        width = int(ref.lengths[rows].max())
        assert inputs.shape == (16, width)  # trimmed to its own longest row
        np.testing.assert_array_equal(inputs, ref.inputs[rows, :width])
        np.testing.assert_array_equal(targets, ref.targets[rows, :width])
        assert (ref.targets[rows, width:] == IGNORE).all()


def test_prefetch_forwards_errors() -> None:
    def boom() -> int:
        raise RuntimeError("bad batch")

    with data.Prefetcher(boom) as src, pytest.raises(RuntimeError, match="bad batch"):
        src.next()


class Replay(nn.Module):
    """A 'model' that knows the reference rows: it predicts the next reference token of the
    row whose prefix it is given. Tests the decoding loop, not learning."""

    def __init__(self, rows: np.ndarray, vocab: int, skip: int | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.vocab = vocab
        self.skip = skip  # a token this model never predicts (the retriever must supply it)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*x.shape, self.vocab)
        arr = x.numpy()
        t = arr.shape[1]
        for b, row in enumerate(arr):
            nxt = 0
            if t < self.rows.shape[1]:
                match = np.flatnonzero((self.rows[:, :t] == row).all(1))
                nxt = int(self.rows[match[0], t]) if match.size else 0
            if self.skip is not None and t > 0 and row[-1] == self.skip:
                nxt = 0  # refuses to predict retrieval results
            out[b, -1, nxt] = 1.0
        return out


@pytest.mark.parametrize("trace", ["cot", "retrieval"])
def test_generation_reproduces_a_perfect_model(trace: str) -> None:
    task = tasks.make("is_tree", trace=trace, max_length=8)
    batch = task.sample(5, 6, seed=1)
    model = Replay(batch.inputs, len(task.vocab))
    m = evaluate_generation(model, task, 5, batch=batch, retrieval=False)
    assert m.trace_accuracy == 1.0 and m.answer_accuracy == 1.0 and m.finished == 1.0
    assert m.retrieval_calls == 0


def test_retriever_writes_the_results_the_model_does_not() -> None:
    task = tasks.make("is_tree", trace="retrieval", max_length=8)
    batch = task.sample(5, 6, seed=2)
    end = task.token_to_id["[ENDSEARCH]"]
    model = Replay(batch.inputs, len(task.vocab), skip=end)
    calls: list[list[str]] = []
    original = task.retrieval_result

    def spy(tokens: list[str]) -> str:
        calls.append(list(tokens))
        return original(tokens)

    task.retrieval_result = spy  # type: ignore[method-assign]
    m = evaluate_generation(model, task, 5, batch=batch, retrieval=True)
    expected = int(sum((batch.inputs[b, : batch.lengths[b]] == end).sum() for b in range(6)))
    assert m.retrieval_calls == len(calls) == expected
    assert m.trace_accuracy == 1.0
    # without the retriever this model cannot write the results
    assert evaluate_generation(model, task, 5, batch=batch, retrieval=False).trace_accuracy == 0


def test_generation_stops_and_scores_wrong_answers() -> None:
    task = tasks.make("is_tree", trace="cot", max_length=8)
    batch = task.sample(6, 4, seed=0)
    true_id = task.token_to_id["[TRUE]"]

    class AlwaysTrue(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(*x.shape, len(task.vocab))
            out[..., true_id] = 1.0
            return out

    limit = task.max_tokens(6)
    gen = greedy_generate(
        AlwaysTrue(), task, batch.inputs, batch.prompt_lengths, limit, stop_ids(task)
    )
    assert gen.finished.all()
    np.testing.assert_array_equal(gen.ends, batch.prompt_lengths + 1)
    m = generation_metrics(task, batch, gen)
    assert m.trace_accuracy == 0.0
    answers = batch.inputs[np.arange(4), batch.lengths - 1]
    assert m.answer_accuracy == pytest.approx(float(np.mean(answers == true_id)))


def test_generation_needs_a_trace() -> None:
    task = tasks.make("index_lookup", max_length=8)
    with pytest.raises(UserError, match="no trace"):
        evaluate_generation(nn.Linear(1, 1), task, 4, batch_size=2)


def test_evaluate_lengths_records_per_length() -> None:
    from sepbench import models
    from sepbench.training import evaluate_lengths

    task = tasks.make("is_tree", trace="cot", max_length=8)
    model = models.build("gru", len(task.vocab), 4, seed=0)
    records = evaluate_lengths(model, task, [4, 6], batch_size=16, seed=1, generation_batch=8)
    assert [r["length"] for r in records] == [4, 6]
    for r in records:
        assert r["examples"] == 16 and 0 <= r["sequence_accuracy"] <= 1
        assert r["generation"]["examples"] == 8
    again = evaluate_lengths(model, task, [4, 6], batch_size=16, seed=1, generation_batch=8)
    assert again == records
    with pytest.raises(UserError, match="max_length"):
        evaluate_lengths(model, task, [4, 9])


def test_incremental_and_prefix_decoding_agree() -> None:
    from sepbench import models

    task = tasks.make("is_tree", trace="cot", max_length=8)
    batch = task.sample(5, 8, seed=3)
    for family in ("lstm", "transformer"):
        model = models.build(family, len(task.vocab), 8, seed=0)
        runs = [
            greedy_generate(
                model,
                task,
                batch.inputs,
                batch.prompt_lengths,
                task.max_tokens(5),
                stop_ids(task),
                incremental=inc,
            )
            for inc in (True, False)
        ]
        np.testing.assert_array_equal(runs[0].tokens, runs[1].tokens)
        np.testing.assert_array_equal(runs[0].ends, runs[1].ends)


def test_member_clip_matches_clip_grad_norm_per_member() -> None:
    from sepbench.training.fit import member_clip_

    torch.manual_seed(0)
    stacked = [torch.nn.Parameter(torch.zeros(3, *shape)) for shape in [(4, 5), (5,), (2, 2, 2)]]
    for p in stacked:
        p.grad = torch.randn_like(p) * torch.tensor([0.01, 1.0, 10.0]).view(3, *[1] * (p.dim() - 1))
    alone = []
    for e in range(3):
        ps = [torch.nn.Parameter(torch.zeros(p.shape[1:])) for p in stacked]
        for q, p in zip(ps, stacked, strict=True):
            q.grad = p.grad[e].clone()
        torch.nn.utils.clip_grad_norm_(ps, 1.0)
        alone.append([q.grad for q in ps])
    member_clip_(stacked, 3, 1.0)
    for e in range(3):
        for p, ref in zip(stacked, alone[e], strict=True):
            torch.testing.assert_close(p.grad[e], ref)
