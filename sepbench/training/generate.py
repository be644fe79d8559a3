"""Generation-based evaluation (trace tasks) and length generalisation.

Greedy decoding, batched: every row starts from its prompt (``Batch.prompt_lengths``: up to and
including the first ``[EOS]`` of a trace task) and the model writes one token per step —
``argmax`` of its logits at the last written position — until it writes a stop token (the task's
answers) or reaches the token limit. Rows of different prompt lengths advance together; only rows
that are generating at a step are fed to the model.

Retrieval (models with ``uses_retrieval = True``, the ``rag`` family): when the token just
written is the task's ``retrieval_trigger`` (``[ENDSEARCH]``), the next token is not predicted but
supplied by ``task.retrieval_result(tokens_so_far)`` — real search code over the written context,
never the label. Such tokens are not model predictions and have IGNORE targets in training.

Exact-trace accuracy compares the whole generated continuation with the reference continuation
(``inputs[b, prompt_length:length]``); answer accuracy compares the final token only.

Stopping. A task with yes/no answers (is_tree) stops a row at its answer token. A task whose
answer has a length fixed by its format (passkey: d digits; addition: N + 1 digits) stops a row
after as many tokens as its reference continuation has (``limits``): the model is told the
length, as the format does, and judged on the tokens.

**Success by generation** (:func:`score_generation`). For tasks whose answer is a generated
continuation (:attr:`sepbench.tasks.Task.answer_is_generated`) the trainer's confirmation
decides ``reached`` on exact match of the free-running continuation — trace and final answer
— and records the answer's accuracy beside it. Teacher forcing with every continuation token
supervised (or written by the retriever) gives the same verdict row by row: if every
supervised prediction is right on the reference prefix, greedy decoding reproduces the
reference by induction, and a first wrong prediction makes both fail. That holds only when
no continuation token is left unsupervised for a model that must write it — so a model
without a retriever is trained and judged on :meth:`~sepbench.tasks.Task.without_retriever`
(:func:`task_for`), where the retrieval results are targets, while a ``rag`` model gets them
from the retriever. Generation is what the confirmation runs all the same (it is the rule, and
step-wise decoding may round differently from a full forward pass on a near tie).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench.errors import UserError
from sepbench.tasks import IGNORE, Batch, Task
from sepbench.training.config import check_seed
from sepbench.training.metrics import eval_mode, evaluate_arrays, model_device, to_metrics
from sepbench.training.threads import model_threads, thread_scope

LENGTHS_STREAM = 4
"""SeedSequence spawn key of the length-generalisation streams (see config.STREAMS)."""


@dataclass
class Generated:
    """Greedy continuations: ``tokens`` [B, T] (prompt + generated, PAD after the end)."""

    tokens: np.ndarray
    ends: np.ndarray  # [B] one past the last written token
    finished: np.ndarray  # [B] bool: wrote a stop token before the limit
    retrieval_calls: int
    halted: np.ndarray  # [B] bool: stopped at a query the retriever could not parse


@dataclass
class GenerationMetrics:
    """Generation-based accuracies on ``examples`` rows."""

    answer_accuracy: float
    trace_accuracy: float
    finished: float
    retrieval_calls: int
    examples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def uses_retrieval(model: nn.Module) -> bool:
    return bool(getattr(model, "uses_retrieval", False))


def task_for(task: Task, model: nn.Module) -> Task:
    """The task as ``model`` meets it: itself for a model with a retriever, else the view in
    which the retrieval results are targets (:meth:`~sepbench.tasks.Task.without_retriever`)."""
    return task if uses_retrieval(model) else task.without_retriever()


def has_step(model: nn.Module) -> bool:
    """Whether ``model`` offers incremental decoding (``init_state`` and ``step``)."""
    return callable(getattr(model, "init_state", None)) and callable(getattr(model, "step", None))


def stop_ids(task: Task, batch: Batch | None = None) -> np.ndarray:
    """Token ids that end a generation: the task's answers (yes/no tasks); none for tasks
    whose answer length is fixed by the format (they stop at a length: ``limits``,
    :func:`row_limits`). ``batch`` is accepted for earlier callers and not used: stops no
    longer come from the reference rows (any token ending some row stopped every row)."""
    del batch
    if task.binary_answers is not None:
        return task.encode(task.binary_answers)
    return np.empty(0, dtype=np.int64)


def rows_batch(task: Task, inputs: np.ndarray, targets: np.ndarray) -> Batch:
    """The :class:`~sepbench.tasks.Batch` of padded ``inputs`` / ``targets`` arrays, with the
    rows' lengths (up to the last non-PAD token: rows are right-padded) and prompt lengths
    (the first supervised position + 1, the Batch contract) recovered from them."""
    width = inputs.shape[1]
    filled = inputs != task.pad_id
    lengths = np.where(filled.any(1), width - np.argmax(filled[:, ::-1], axis=1), 0)
    supervised = targets != IGNORE
    if not supervised.any(1).all():
        raise UserError(f"task '{task.name}': a row without a supervised position")
    prompts = np.argmax(supervised, axis=1) + 1
    return Batch(inputs, targets, lengths.astype(np.int64), prompts.astype(np.int64))


def greedy_generate(
    model: nn.Module,
    task: Task,
    prompts: np.ndarray,
    prompt_lengths: np.ndarray,
    max_tokens: int,
    stops: Iterable[int],
    retrieval: bool | None = None,
    incremental: bool | None = None,
    threads: int | None = None,
    limits: np.ndarray | None = None,
) -> Generated:
    """Greedy decoding of every row of ``prompts`` from its first ``prompt_lengths[b]`` tokens.

    ``retrieval`` (default: ``model.uses_retrieval``) lets the task's retriever write the token
    after each ``retrieval_trigger``. At most ``max_tokens`` tokens per row, prompt included;
    ``limits[b]`` (≤ ``max_tokens``) ends row b after that many tokens, finished (answers of a
    length fixed by the format).
    ``incremental`` (default: when the model has ``init_state``/``step``) decodes with the
    model's one-token ``step`` and its carried state — O(T) work per row for an RNN instead of
    re-reading the prefix at every step (which is what ``incremental=False`` does).
    ``threads``: CPU threads (default: :func:`~sepbench.training.threads.auto_threads`).
    """
    device = model_device(model)
    with thread_scope(model_threads(model, prompts.shape[0] * max_tokens, device, threads)):
        return _greedy(
            model, task, prompts, prompt_lengths, max_tokens, stops, retrieval, incremental, limits
        )


def _greedy(
    model: nn.Module,
    task: Task,
    prompts: np.ndarray,
    prompt_lengths: np.ndarray,
    max_tokens: int,
    stops: Iterable[int],
    retrieval: bool | None,
    incremental: bool | None,
    limits: np.ndarray | None = None,
) -> Generated:
    if retrieval is None:
        retrieval = uses_retrieval(model)
    trigger: int | None = None
    if retrieval:
        if task.retrieval_trigger is None:
            raise UserError(f"task '{task.name}' has no retriever; this model needs one")
        trigger = task.token_to_id[task.retrieval_trigger]
    rows = prompts.shape[0]
    plen = np.asarray(prompt_lengths, dtype=np.int64)
    if np.any(plen < 1) or np.any(plen > max_tokens):
        raise UserError("generation: prompt lengths must be in [1, max_tokens]")
    limit = np.full(rows, max_tokens, dtype=np.int64)
    if limits is not None:
        limit = np.minimum(np.asarray(limits, dtype=np.int64), max_tokens)
        if limit.shape != (rows,) or np.any(limit < plen):
            raise UserError("generation: one limit per row, each >= its prompt length")
    buf = np.full((rows, max_tokens), task.pad_id, dtype=np.int64)
    width = min(prompts.shape[1], max_tokens)
    keep = np.arange(width)[None, :] < plen[:, None]
    buf[:, :width] = np.where(keep, prompts[:, :width], task.pad_id)
    stop_set = np.asarray(sorted(set(int(s) for s in stops)), dtype=np.int64)
    finished = np.zeros(rows, dtype=bool)
    halted = np.zeros(rows, dtype=bool)  # stopped without an answer (malformed retrieval)
    ends = np.full(rows, max_tokens, dtype=np.int64)
    calls = 0
    device = model_device(model)
    if incremental is None:
        incremental = has_step(model)
    with eval_mode(model):
        stepper: Any = model  # init_state / step: the models' incremental-decoding contract
        state = stepper.init_state(rows) if incremental else None
        for t in range(1 if incremental else int(plen.min()), max_tokens):
            if incremental:
                # feed position t - 1 to every row: the state then holds inputs[:, :t]
                x_t = torch.from_numpy(np.ascontiguousarray(buf[:, t - 1])).to(device)
                step_logits, state = stepper.step(x_t, state)
            active = np.flatnonzero((plen <= t) & (t < limit) & ~finished & ~halted)
            if active.size == 0:
                if not np.any(plen > t):
                    break  # every row has finished
                continue  # rows with longer prompts start later
            nxt = np.empty(active.size, dtype=np.int64)
            need_model = np.ones(active.size, dtype=bool)
            if trigger is not None:
                fetch = buf[active, t - 1] == trigger
                for j in np.flatnonzero(fetch):
                    context = task.decode(buf[active[j], :t])
                    calls += 1
                    try:
                        nxt[j] = task.token_to_id[task.retrieval_result(context)]
                    except (ValueError, KeyError):  # a malformed query: the row stops
                        nxt[j] = task.pad_id
                        halted[active[j]] = True
                        ends[active[j]] = t
                need_model = ~fetch
            if need_model.any():
                idx = active[need_model]
                if incremental:
                    logits = step_logits[torch.from_numpy(idx).to(device)]
                else:
                    x = torch.from_numpy(np.ascontiguousarray(buf[idx, :t])).to(device)
                    logits = model(x)[:, -1]
                nxt[need_model] = logits.argmax(-1).cpu().numpy()
            buf[active, t] = nxt
            done = np.isin(nxt, stop_set)
            if limits is not None:  # a length fixed by the format: ending there is finishing
                done |= t + 1 >= limit[active]
            done &= ~halted[active]
            finished[active[done]] = True
            ends[active[done]] = t + 1
    # rows that never stopped end at the limit; PAD after every end
    return Generated(buf, ends, finished, calls, halted)


def generation_metrics(task: Task, batch: Batch, gen: Generated) -> GenerationMetrics:
    """Answer and exact-trace accuracy of ``gen`` against the reference rows of ``batch``."""
    answer_ok = 0
    trace_ok = 0
    for b in range(len(batch)):
        p, n, e = int(batch.prompt_lengths[b]), int(batch.lengths[b]), int(gen.ends[b])
        ref = batch.inputs[b, p:n]
        out = gen.tokens[b, p:e]
        if gen.finished[b] and out.size and ref.size and out[-1] == ref[-1]:
            answer_ok += 1
        if gen.finished[b] and np.array_equal(out, ref):
            trace_ok += 1
    rows = max(1, len(batch))
    return GenerationMetrics(
        answer_accuracy=answer_ok / rows,
        trace_accuracy=trace_ok / rows,
        finished=float(gen.finished.mean()) if len(batch) else 0.0,
        retrieval_calls=gen.retrieval_calls,
        examples=len(batch),
    )


def evaluate_generation(
    model: nn.Module,
    task: Task,
    length: int,
    batch_size: int = 256,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    batch: Batch | None = None,
    retrieval: bool | None = None,
    threads: int | None = None,
) -> GenerationMetrics:
    """Greedy-decode ``batch_size`` fresh examples (or ``batch``) and score them."""
    if batch is None:
        if seed is None and rng is None:
            seed = 0
        batch = task.sample(length, batch_size, seed=seed, rng=rng)
    check_generated(task)
    limit = max(task.max_tokens(length), batch.inputs.shape[1])
    gen = greedy_generate(
        model,
        task,
        batch.inputs,
        batch.prompt_lengths,
        limit,
        stop_ids(task),
        retrieval,
        threads=threads,
        limits=row_limits(task, batch),
    )
    return generation_metrics(task, batch, gen)


def check_generated(task: Task) -> None:
    """UserError unless ``task``'s answer is a generated continuation."""
    if not task.answer_is_generated:
        raise UserError(
            f"task '{task.name}' {dict(task.params)} has no trace or written answer to generate "
            "(its answer is one token, or one prediction per input position); use "
            "teacher-forced evaluation"
        )


def row_limits(task: Task, batch: Batch) -> np.ndarray | None:
    """Per-row token limits for tasks without stop tokens (the reference rows' lengths)."""
    return None if task.binary_answers is not None else batch.lengths


def score_generation(
    model: nn.Module, task: Task, inputs: np.ndarray, targets: np.ndarray
) -> GenerationMetrics:
    """Free-running exact match on held-out rows (padded ``inputs`` / ``targets`` of
    ``task``): greedy decoding from each prompt, the retriever in the loop for a model that
    uses one, scored against the reference continuation (:func:`generation_metrics`). What
    the trainer's confirmation runs for tasks whose answer is generated.

    Decoding stops at the batch's longest reference row: a continuation still running there
    is longer than its reference, so it is wrong (trace and, not having ended, answer)."""
    check_generated(task)
    batch = rows_batch(task, inputs, targets)
    gen = greedy_generate(
        model,
        task,
        batch.inputs,
        batch.prompt_lengths,
        batch.inputs.shape[1],
        stop_ids(task),
        limits=row_limits(task, batch),
    )
    return generation_metrics(task, batch, gen)


def evaluate_lengths(
    model: nn.Module,
    task: Task,
    lengths: Sequence[int],
    batch_size: int = 1024,
    seed: int = 0,
    generation_batch: int = 256,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Length generalisation: one trained model evaluated at each of ``lengths``.

    For each length, ``batch_size`` examples from ``SeedSequence(seed, spawn_key=(4, length))``
    — a stream disjoint from every training / evaluation stream of the trial seeds — are scored
    teacher forced (on :func:`task_for`'s view: a model without a retriever is scored on the
    retrieval results too); for tasks whose answer is generated the first ``generation_batch``
    of them are also decoded greedily. Returns one plain record per length:
    ``{"length", **Metrics, "generation": GenerationMetrics | None}``.
    """
    seed = check_seed(seed)
    if not lengths:
        raise UserError("evaluate_lengths: give at least one length")
    for n in lengths:
        task.check_length(int(n))
    task = task_for(task, model)
    out: list[dict[str, Any]] = []
    for n in lengths:
        n = int(n)
        ss = np.random.SeedSequence(seed, spawn_key=(LENGTHS_STREAM, n))
        batch = task.sample(n, batch_size, rng=np.random.Generator(np.random.PCG64(ss)))
        tokens = min(1024, batch_size) * batch.inputs.shape[1]
        with thread_scope(model_threads(model, tokens, model_device(model), threads)):
            metrics = to_metrics(evaluate_arrays(model, batch.inputs, batch.targets))
        record: dict[str, Any] = {"length": n, **metrics.to_dict(), "generation": None}
        if task.answer_is_generated and generation_batch > 0:
            k = min(generation_batch, len(batch))
            sub = Batch(
                batch.inputs[:k], batch.targets[:k], batch.lengths[:k], batch.prompt_lengths[:k]
            )
            gen = evaluate_generation(model, task, n, batch=sub, threads=threads)
            record["generation"] = gen.to_dict()
        out.append(record)
    return out
