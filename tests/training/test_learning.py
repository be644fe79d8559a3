"""Training learns: each test trains a small model from scratch and checks held-out accuracy.

Fixed seeds and settings with a margin (the step at which each run reached its threshold on the
development machine is noted); every run is deterministic on CPU for its seed.
"""

from __future__ import annotations

from sepbench import models, tasks, training


def test_one_layer_transformer_learns_index_lookup() -> None:
    task = tasks.make("index_lookup", max_length=16)
    model = models.build("transformer", len(task.vocab), 16, layers=1, seed=0)
    budget = training.Budget(max_steps=1500, lr=1e-2)  # reached at step ~200
    result = training.fit(model, task, 16, budget, seed=0)
    assert result.reached, result.history[-3:]
    assert result.sequence_accuracy >= 0.99 and result.answer_accuracy >= 0.99
    assert result.steps < budget.max_steps
    # an independent held-out check of the trained model
    assert training.evaluate(model, task, 16, batch_size=1024, seed=123).sequence_accuracy >= 0.98


def test_lstm_learns_dyck() -> None:
    task = tasks.make("dyck", types=2, depth=2)
    model = models.build("lstm", len(task.vocab), 32, seed=0)
    result = training.fit(model, task, 16, training.Budget(max_steps=2000), seed=0)  # ~450
    assert result.reached, result.history[-3:]
    assert result.sequence_accuracy >= 0.99


def test_hybrid_recalls_where_the_plain_rnn_of_its_width_cannot() -> None:
    """W24-H: one attention layer on top of an LSTM solves associative recall at width 8;
    the LSTM alone (same width, same budget) stays far below the threshold — its 8 floats of
    state cannot hold 8 key/value pairs."""
    task = tasks.make("associative_recall", keys=16, values=16)
    budget = training.Budget(max_steps=1000, lr=1e-2)
    vocab = len(task.vocab)
    hybrid = training.fit(models.build("hybrid", vocab, 8, seed=0), task, 8, budget, seed=0)
    assert hybrid.reached, hybrid.history[-3:]  # reached at step ~350
    lstm = training.fit(models.build("lstm", vocab, 8, seed=0), task, 8, budget, seed=0)
    assert not lstm.reached
    assert lstm.sequence_accuracy < 0.5  # ~0.14: barely above guessing among 16 values
