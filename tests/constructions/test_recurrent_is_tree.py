"""W24-RAG: the IsTree retrieval controller (is_tree_retrieval) — teacher forced against the
task's targets, and greedy generation with the retriever in the loop against the reference
trace (written independently by tasks.is_tree.retrieval_trace / networkx)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import constructions
from sepbench.constructions import check_batch
from sepbench.constructions.is_tree_rag import controller, rag_width
from sepbench.tasks.is_tree import continuation
from sepbench.training.generate import evaluate_generation, greedy_generate, stop_ids


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("n", [4, 5, 9, 17, 128])
def test_width_is_logarithmic(n: int) -> None:
    want = 33 * math.ceil(math.log2(n)) + 43
    assert rag_width(n) == want
    hb = constructions.get("is_tree_retrieval").build(n, max_length=128)
    assert hb.width == hb.module.width == want
    assert hb.generate and hb.result_id == "W24-RAG"
    assert getattr(hb.module, "uses_retrieval", False)
    model: Any = hb.module
    assert model.state_size(10 * n) == want  # the state does not grow with the trace


@pytest.mark.parametrize(
    ("graph", "n"),
    [("binary", 4), ("random", 4), ("binary", 5), ("random", 12), ("binary", 31), ("random", 128)],
)
def test_teacher_forced(graph: str, n: int) -> None:
    hb = constructions.get("is_tree_retrieval").build(n, graph=graph)
    batch = hb.task.sample(length=n, batch_size=32 if n < 100 else 4, seed=n)
    res = check_batch(hb, batch.inputs, batch.targets)
    assert res.errors == 0 and res.min_gap >= 1 - 1e-6, res


@pytest.mark.parametrize("graph", ["binary", "random"])
@pytest.mark.parametrize("n", [4, 9, 16])
def test_generation_with_the_retriever_reproduces_trace_and_answer(graph: str, n: int) -> None:
    hb = constructions.get("is_tree_retrieval").build(n, graph=graph)
    batch = hb.task.sample(length=n, batch_size=12, seed=100 + n)
    limit = hb.task.max_tokens(n)
    gen = greedy_generate(
        hb.module, hb.task, batch.inputs, batch.prompt_lengths, limit, stop_ids(hb.task, batch)
    )
    assert gen.retrieval_calls > 0 and gen.finished.all()
    for row in range(len(batch)):
        p, e = int(batch.prompt_lengths[row]), int(gen.ends[row])
        toks = hb.task.decode(batch.inputs[row])
        # the independent reference: the Algorithm-2 controller + networkx's answer
        want = continuation(toks[:p], "retrieval")
        assert hb.task.decode(gen.tokens[row, p:e]) == want


@settings(max_examples=4)
@given(
    graph=st.sampled_from(["binary", "random"]),
    n=st.integers(4, 20),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_generation(graph: str, n: int, seed: int) -> None:
    hb = constructions.get("is_tree_retrieval").build(n, graph=graph)
    m = evaluate_generation(hb.module, hb.task, n, batch_size=3, seed=seed)
    assert m.trace_accuracy == 1.0 and m.answer_accuracy == 1.0, m


def test_both_answers_occur_and_the_counter_matters() -> None:
    hb = constructions.get("is_tree_retrieval").build(12, graph="random")
    batch = hb.task.sample(length=12, batch_size=32, seed=7)
    answers = {hb.task.vocab[t] for t in batch.targets[np.arange(32), batch.lengths - 2]}
    assert answers == {"[TRUE]", "[FALSE]"}
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
    # cut the counter's lowest bit off its own memory: [TRUE]/[FALSE] go wrong
    cnt0 = controller(hb.task, 12).index["cnt0"]
    with torch.no_grad():
        hb.module.get_parameter("rnn.weight_hh_l0")[cnt0, cnt0] = 0.0
    assert check_batch(hb, batch.inputs, batch.targets).errors > 0


def test_float16_is_still_exact() -> None:
    # the default gain (100) keeps every pre-activation inside float16's range
    hb = constructions.get("is_tree_retrieval").build(8)
    batch = hb.task.sample(length=8, batch_size=8, seed=2)
    hb.module.to(torch.float16)
    assert check_batch(hb, batch.inputs, batch.targets).errors == 0
