"""Success by generation for tasks whose answer is a generated continuation, and retrieval
results as targets for every model without a retriever (issue 9, Deliver 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sepbench import models, tasks, training
from sepbench.errors import UserError
from sepbench.tasks import IGNORE
from sepbench.training.fit import confirm_metrics
from sepbench.training.generate import rows_batch, score_generation, task_for
from sepbench.training.metrics import evaluate_arrays, to_metrics


class Replay(nn.Module):
    """Predicts the next reference token of the row whose prefix it is given (any prefix of
    ``rows``); ``skip``: a token after which it predicts token 0 instead (it cannot write a
    retrieval result); ``uses_retrieval`` as the ``rag`` family sets it."""

    def __init__(self, rows: np.ndarray, vocab: int, skip: int | None = None, rag: bool = False):
        super().__init__()
        self.rows, self.vocab, self.skip, self.uses_retrieval = rows, vocab, skip, rag
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*x.shape, self.vocab)
        arr = x.numpy()
        for b, row in enumerate(arr):
            for t in range(arr.shape[1]):
                match = np.flatnonzero((self.rows[:, : t + 1] == row[: t + 1]).all(1))
                nxt = 0
                if match.size and t + 1 < self.rows.shape[1]:
                    nxt = int(self.rows[match[0], t + 1])
                if self.skip is not None and row[t] == self.skip:
                    nxt = 0
                out[b, t, nxt] = 1.0
        return out


def test_the_view_without_a_retriever_supervises_the_results() -> None:
    task = tasks.make("is_tree", trace="retrieval", max_length=8)
    view = task.without_retriever()
    assert view.results_supervised and not task.results_supervised
    assert view.without_retriever() is view and tasks.make("index_lookup").without_retriever()
    plain, seen = task.sample(6, 8, seed=4), view.sample(6, 8, seed=4)
    np.testing.assert_array_equal(plain.inputs, seen.inputs)
    end = task.token_to_id["[ENDSEARCH]"]
    for b in range(8):
        n = int(plain.lengths[b])
        at = np.flatnonzero(plain.inputs[b, : n - 1] == end)
        assert at.size > 0
        assert (plain.targets[b, at] == IGNORE).all()  # the retriever writes them for rag
        np.testing.assert_array_equal(seen.targets[b, at], plain.inputs[b, at + 1])
        others = np.setdiff1d(np.arange(plain.targets.shape[1]), at)
        np.testing.assert_array_equal(seen.targets[b, others], plain.targets[b, others])
        # the view's solver returns the whole continuation, its targets
        prompt = task.decode(plain.inputs[b, : plain.prompt_lengths[b]])
        assert view.solve(prompt) == view.supervised(seen, b)
        assert task.solve(prompt) == task.supervised(plain, b)
    rag = models.build("rag", len(task.vocab), 4, seed=0)
    lstm = models.build("lstm", len(task.vocab), 4, seed=0)
    assert task_for(task, rag) is task and task_for(task, lstm).results_supervised


def test_which_tasks_are_judged_by_generation() -> None:
    judged = {
        (name, trace)
        for name in tasks.names()
        for trace in (("none", "cot", "retrieval") if name == "is_tree" else (None,))
        if tasks.make(name, **({"trace": trace} if trace else {})).answer_is_generated
    }
    assert judged == {("is_tree", "cot"), ("is_tree", "retrieval"), ("passkey", None),
                      ("addition", None)}  # fmt: skip


def test_rows_batch_recovers_lengths_and_prompts() -> None:
    for task in (tasks.make("is_tree", trace="cot", max_length=8), tasks.make("addition")):
        batch = task.sample(6, 16, seed=2)
        again = rows_batch(task, batch.inputs, batch.targets)
        np.testing.assert_array_equal(again.lengths, batch.lengths)
        np.testing.assert_array_equal(again.prompt_lengths, batch.prompt_lengths)


def test_a_model_that_cannot_write_the_results_fails_by_generation() -> None:
    """Teacher forced on the task's own targets (results IGNORE) this model is perfect; by
    generation it writes token 0 where a result belongs, so without a retriever it fails,
    and with one (rag) it succeeds. On the view its teacher-forced accuracy is 0 too: the
    two scorings agree once every continuation token is supervised."""
    task = tasks.make("is_tree", trace="retrieval", max_length=8)
    batch = task.sample(5, 6, seed=2)
    end = task.token_to_id["[ENDSEARCH]"]
    lstm_like = Replay(batch.inputs, len(task.vocab), skip=end)
    rag_like = Replay(batch.inputs, len(task.vocab), skip=end, rag=True)
    teacher = to_metrics(evaluate_arrays(lstm_like, batch.inputs, batch.targets))
    assert teacher.sequence_accuracy == 1.0
    m = confirm_metrics(lstm_like, task, batch.inputs, batch.targets)
    assert m.scoring == "generation" and m.sequence_accuracy == 0.0
    view = task.without_retriever().sample(5, 6, seed=2)
    assert to_metrics(evaluate_arrays(lstm_like, view.inputs, view.targets)).sequence_accuracy == 0
    r = confirm_metrics(rag_like, task, batch.inputs, batch.targets)
    assert r.scoring == "generation" and r.sequence_accuracy == r.answer_accuracy == 1.0
    # a single-answer task keeps teacher forcing
    lookup = tasks.make("index_lookup", max_length=8)
    b = lookup.sample(8, 4, seed=0)
    model = models.build("gru", len(lookup.vocab), 4, seed=0)
    assert confirm_metrics(model, lookup, b.inputs, b.targets).scoring == "teacher forced"
    with pytest.raises(UserError, match="no trace or written answer"):
        score_generation(model, lookup, b.inputs, b.targets)


def test_fixed_length_answers_stop_at_their_length() -> None:
    """addition has no stop token: each row is decoded for exactly its reference's length."""
    task = tasks.make("addition")
    batch = task.sample(4, 6, seed=1)
    perfect = score_generation(Replay(batch.inputs, len(task.vocab)), task, batch.inputs,
                               batch.targets)  # fmt: skip
    assert perfect.trace_accuracy == perfect.answer_accuracy == perfect.finished == 1.0
    zero = score_generation(models.build("gru", len(task.vocab), 4, seed=0), task, batch.inputs,
                            batch.targets)  # fmt: skip
    assert zero.finished == 1.0 and zero.trace_accuracy < 1.0


def test_training_confirms_by_generation_and_records_both_scores() -> None:
    task = tasks.make("is_tree", trace="cot", max_length=8)
    budget = training.Budget(max_steps=20, batch_size=16, eval_every=10, confirm_batch=32)
    model = models.build("lstm", len(task.vocab), 8, seed=0)
    result = training.fit(model, task, 4, budget, seed=0, threshold=0.5)
    assert result.scoring == "generation"
    confirms = [h for h in result.history if h["kind"] == "confirm"]
    assert confirms and all(h["scoring"] == "generation" for h in confirms)
    assert all(h["scoring"] == "teacher forced" for h in result.history if h["kind"] == "eval")
    # the recorded accuracies are the generation scores on the confirmation rows
    rng = training.stream(0, "confirm")
    rows = task.sample(4, 32, rng=rng)
    again = score_generation(model, task, rows.inputs, rows.targets)
    assert result.sequence_accuracy == again.trace_accuracy
    assert result.answer_accuracy == again.answer_accuracy
    assert result.reached == (again.trace_accuracy >= 0.5)


def test_the_trial_records_who_writes_the_retrieval_results() -> None:
    task = tasks.make("is_tree", trace="retrieval", max_length=8)
    budget = training.Budget(max_steps=2, batch_size=4, eval_every=1, confirm_batch=4)
    seen = {}
    for family in ("lstm", "rag"):
        model = models.build(family, len(task.vocab), 4, seed=0)
        result = training.fit(model, task, 4, budget, seed=0)
        seen[family] = result.config["task"]["retrieval_results"]
    assert seen == {"lstm": "targets", "rag": "retriever"}
