"""The rag family: teacher-forced training on IsTree retrieval traces, then greedy generation
with the task's retriever in the loop (a spy counts its calls) — W24-RAG."""

from __future__ import annotations

import re

import numpy as np

from sepbench import models, tasks, training
from sepbench.training.generate import generation_metrics, greedy_generate, stop_ids

# one character per token class; the trace grammar of tasks.md (is_tree, trace=retrieval)
CLASSES = {
    "[STARTSEARCH]": "S",
    "[ENDSEARCH]": "E",
    "~": "~",
    "-": "-",
    "[FAILED]": "F",
    "[EOS]": "$",
    "[TRUE]": "A",
    "[FALSE]": "A",
}
STEP = r"n|Sn(?:~|-|-n)E[nF]|n~n"  # a step head, a lookup with its result, or a fact
TRACE = re.compile(rf"(?:{STEP})*\$A")
N = 4  # nodes


def well_formed(tokens: list[str]) -> bool:
    return None is not TRACE.fullmatch(
        "".join(CLASSES.get(t, "n" if t.isdigit() else "?") for t in tokens)
    )


def test_rag_generation_calls_the_retriever_and_writes_well_formed_traces() -> None:
    task = tasks.make("is_tree", trace="retrieval", max_length=8)
    model = models.build("rag", len(task.vocab), 32, seed=0)
    assert model.uses_retrieval
    budget = training.Budget(max_steps=400, batch_size=32, lr=1e-2)
    training.fit(model, task, N, budget, seed=0)

    calls: list[list[str]] = []
    real = task.retrieval_result

    def spy(tokens: list[str]) -> str:
        calls.append(list(tokens))
        return real(tokens)

    task.retrieval_result = spy  # type: ignore[method-assign]
    batch = task.sample(N, 64, seed=11)
    gen = greedy_generate(
        model, task, batch.inputs, batch.prompt_lengths, task.max_tokens(N), stop_ids(task)
    )
    end = task.token_to_id["[ENDSEARCH]"]
    written = [gen.tokens[b, batch.prompt_lengths[b] : gen.ends[b]] for b in range(64)]
    # the loop asked the retriever once per [ENDSEARCH] the model wrote before its last token
    # (none in prompts), and once more for each row it stopped at an unparsable query
    triggers = sum(int((w[:-1] == end).sum()) for w in written) + int(gen.halted.sum())
    assert len(calls) == gen.retrieval_calls == triggers > 0
    # ... with the context so far, and wrote its answer right after the trigger
    for context in calls:
        assert context[-1] == "[ENDSEARCH]" and "[STARTSEARCH]" in context
    for b, w in enumerate(written):
        for pos in np.flatnonzero(w[:-1] == end):
            prefix = task.decode(gen.tokens[b, : batch.prompt_lengths[b] + pos + 1])
            assert task.vocab[w[pos + 1]] == real(prefix)
    formed = [well_formed(task.decode(w)) for w in written]
    print(f"well-formed {np.mean(formed):.3f}, {generation_metrics(task, batch, gen)}")
    assert np.mean(formed) >= 0.75, np.mean(formed)
    m = generation_metrics(task, batch, gen)
    assert m.answer_accuracy >= 0.6 and m.trace_accuracy > 0.2, m
