"""The capacity probe: train one model on passkey at T_train, then score it on the study's grid.

What one trial does (spec: :mod:`sepbench.studies.capacity`):

1. build ``models.build(family, vocab, width, seed=derive_seed(trial seed, "init"), options)``
   and train it with :func:`sepbench.training.fit` at T_train (the trial's ``length``);
2. draw the contexts (:func:`grid_rows`, :func:`recent_rows`: common to every model, seed and
   mitigation of the study) and score every row by :func:`exact_match`;
3. for an ``ssm``: the same rows under each mitigation (``with_inference``; ``state_norm``
   thresholds calibrated on the trained model by
   :func:`~sepbench.models.ssm_inference.calibrate_state_norm` on reference rows at T_train),
   and state traces (:meth:`SSMModel.state_trace` on filler-only rows of the longest grid
   length, :func:`filler_rows`) with :func:`~sepbench.models.collapse.detect_collapse`'s
   findings.

Point records (``details["points"]``), one per (mitigation, probe, L, depth)::

    {"mitigation": "none", "probe": "grid", "length": 256, "depth": 0.05,
     "rows": 8, "correct": 7, "accuracy": 0.875, "hits": "11111011"}

``probe`` is ``grid`` (the L × depth grid) or ``recent`` (depth is then the mean depth of the
recent rows); ``hits`` gives each row's outcome in row order, so a mitigation scored on the
first k rows is compared with the unmitigated model on exactly those k rows.

**Greedy exact match = teacher-forced exact match.** Greedy decoding writes
argmax p(· | prompt) and then conditions on what it wrote. If the teacher-forced argmax at
every one of the d answer positions equals the key, greedy decoding writes the key (by
induction the prefixes are the same, hence the logits); if some teacher-forced argmax differs,
greedy writes a wrong digit at the first such position (same prefix up to there). So one
causal forward pass over the full row scores greedy decoding exactly (up to floating-point
ties between logits; a test checks it against :func:`sepbench.training.greedy_generate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sepbench.studies.capacity import RECENT_FRACTION, Evaluation, Mitigation
from sepbench.studies.grid import POINTS_KEY, TrainingProbe
from sepbench.sweep.trial import ProbeOutcome, TrialSpec, derive_seed

if TYPE_CHECKING:
    import torch

    from sepbench.tasks import Task

CHUNK_TOKENS = 1 << 17
"""Most tokens one forward pass of the evaluation reads (rows are split to fit)."""
NORM_DIGITS = 4
"""Significant digits kept of the traced state norms (the figure needs no more)."""
TRACE_PER_OCTAVE = 8
"""Traced steps kept per doubling of t in a stored trace (:func:`kept_steps`)."""


# ---------------------------------------------------------------------------------- contexts
def _rng(*parts: Any) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))


def passkey_task(params: dict[str, Any], depth: float | str) -> Task:
    from sepbench import tasks

    return tasks.make("passkey", **{**params, "depth": depth})


def grid_rows(
    params: dict[str, Any], length: int, depth: float, rows: int, seed: int
) -> np.ndarray:
    """``rows`` passkey rows of ``length`` tokens with the key block at ``depth``; drawn from
    the stream (study seed, "capacity.grid", L, depth) — the same for every trial."""
    batch = passkey_task(params, depth).sample(
        length, rows, rng=_rng(seed, "capacity.grid", length, depth)
    )
    return batch.inputs


def recent_positions(length: int, digits: int, train_length: int, rows: int) -> np.ndarray:
    """Key-block starts p for the recent rows at context ``length``: the block (p … p + d)
    ends within the last h = ⌊T_train/2⌋ tokens before ``[Q]`` (at L − d − 1), i.e.
    p ≥ span + 1 − h with span = L − 2d − 2 the largest start; ``rows`` starts spread evenly
    over the h (or span + 1, if fewer) allowed ones, latest first."""
    span = length - 2 * digits - 2
    allowed = min(max(1, int(train_length * RECENT_FRACTION)), span + 1)
    offsets = np.floor((np.arange(rows) + 0.5) * allowed / max(rows, 1)).astype(np.int64)
    return span - offsets


def recent_rows(
    params: dict[str, Any], length: int, train_length: int, rows: int, seed: int
) -> tuple[np.ndarray, float]:
    """(rows, mean depth) of the recent probe at ``length`` for a model trained at
    ``train_length`` (:func:`recent_positions`); stream (study seed, "capacity.recent", L,
    T_train)."""
    digits = int(params["digits"])
    span = length - 2 * digits - 2
    starts = recent_positions(length, digits, train_length, rows)
    rng = _rng(seed, "capacity.recent", length, train_length)
    out = np.empty((rows, length), dtype=np.int64)
    depths = []
    for i, p in enumerate(starts):
        depth = float(p) / span if span > 0 else 0.0
        batch = passkey_task(params, depth).sample(length, 1, rng=rng)
        if int(batch.meta["key_pos"][0]) != int(p):  # the task's rounding must land on p
            raise AssertionError(f"recent row: key at {batch.meta['key_pos'][0]}, wanted {p}")
        out[i] = batch.inputs[0]
        depths.append(depth)
    return out, float(np.mean(depths)) if depths else 1.0


def filler_rows(task: Task, length: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` rows of filler only (no key, no query), in the task's filler mode: the trace
    probe, which isolates length from content (SM24's repeated-newlines prompt) — a key
    written past T_train would itself show as a new outlier channel."""
    k = int(task.params["filler"])
    ids = task.encode([f"f{i}" for i in range(k)])
    if task.params["filler_mode"] == "pattern":
        return np.tile(ids[np.arange(length) % k], (rows, 1))
    return ids[rng.integers(0, k, size=(rows, length))]


# ---------------------------------------------------------------------------------- scoring
def exact_match(model: Any, inputs: np.ndarray, digits: int) -> np.ndarray:
    """Per row: greedy decoding after ``[Q]`` writes exactly the key (module docstring: one
    teacher-forced pass decides it). ``inputs [rows, L]`` are whole passkey rows."""
    import torch

    rows, length = inputs.shape
    out = np.zeros(rows, dtype=bool)
    step = max(1, CHUNK_TOKENS // max(length, 1))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, rows, step):
                x = torch.from_numpy(np.ascontiguousarray(inputs[lo : lo + step]))
                logits = model(x.to(_device(model)))
                pred = logits[:, length - digits - 1 : length - 1].argmax(-1).cpu()
                out[lo : lo + step] = (pred == x[:, length - digits :]).all(-1).numpy()
    finally:
        model.train(was)
    return out


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _record(
    mitigation: str, probe: str, length: int, depth: float, ok: np.ndarray
) -> dict[str, Any]:
    return {
        "mitigation": mitigation,
        "probe": probe,
        "length": int(length),
        "depth": float(depth),
        "rows": int(ok.size),
        "correct": int(ok.sum()),
        "accuracy": float(ok.mean()) if ok.size else None,
        "hits": "".join("1" if v else "0" for v in ok),
    }


@dataclass(frozen=True)
class Contexts:
    """Every row one trial is scored on: ``grid[(L, depth)]`` and ``recent[L]``."""

    grid: dict[tuple[int, float], np.ndarray]
    recent: dict[int, tuple[np.ndarray, float]]


def draw_contexts(params: dict[str, Any], ev: Evaluation, train_length: int, seed: int) -> Contexts:
    grid = {(n, d): grid_rows(params, n, d, ev.rows, seed) for n in ev.lengths for d in ev.depths}
    recent = {}
    if ev.recent_rows:
        recent = {n: recent_rows(params, n, train_length, ev.recent_rows, seed) for n in ev.lengths}
    return Contexts(grid, recent)


def score(model: Any, name: str, ctx: Contexts, digits: int, rows: int) -> list[dict[str, Any]]:
    """The point records of one model variant on the first ``rows`` rows of every set."""
    out = []
    lengths = sorted({n for n, _ in ctx.grid})
    for n in lengths:
        keys = [k for k in ctx.grid if k[0] == n]
        stacked = np.concatenate([ctx.grid[k][:rows] for k in keys])
        ok = exact_match(model, stacked, digits)
        for i, (_, depth) in enumerate(keys):
            out.append(_record(name, "grid", n, depth, ok[i * rows : (i + 1) * rows]))
        if n in ctx.recent:
            inputs, depth = ctx.recent[n]
            out.append(_record(name, "recent", n, depth, exact_match(model, inputs[:rows], digits)))
    return out


# ---------------------------------------------------------------------------------- traces
def _round(values: np.ndarray) -> list[Any]:
    flat = [float(f"{v:.{NORM_DIGITS}g}") for v in np.asarray(values, dtype=float).ravel()]
    return np.asarray(flat).reshape(values.shape).tolist()


def kept_steps(steps: tuple[int, ...], per_octave: int = TRACE_PER_OCTAVE) -> list[int]:
    """Indices of the traced steps a record keeps: the first, the last, and after that a step
    only when it is at least 2^(1/per_octave) times the last kept one — a geometric subset,
    as dense as a log-scaled time axis can show (the detector reads every step)."""
    keep = [0]
    for i in range(1, len(steps)):
        if steps[i] >= steps[keep[-1]] * 2 ** (1 / per_octave) or i == len(steps) - 1:
            keep.append(i)
    return keep


def trace_record(model: Any, inputs: np.ndarray, stride: int, train_length: int) -> dict[str, Any]:
    """What the collapse detector finds in the state trace every ``stride`` tokens
    (capacity.md "Collapse diagnosis"), and the per-channel state norms (mean over the rows)
    at the :func:`kept_steps` of that trace."""
    import torch

    from sepbench.models.collapse import detect_collapse

    trace = model.state_trace(torch.from_numpy(inputs), stride=stride)
    found = detect_collapse(trace, train_length)
    keep = kept_steps(trace.steps)
    return {
        "stride": stride,
        "steps": [trace.steps[i] for i in keep],
        "rows": int(inputs.shape[0]),
        "norms": _round(trace.norms.mean(axis=1)[:, keep]),  # [layers, kept steps, channels]
        "onset": found.onset,
        "reference_step": found.reference_step,
        "outlier_channels": [list(c) for c in found.outlier_channels],
        "unforgetting_channels": [list(c) for c in found.unforgetting_channels],
        "max_norm": _round(found.max_norm[:, keep]),
        "median_norm": _round(found.median_norm[:, keep]),
    }


# ---------------------------------------------------------------------------------- the probe
def variants(
    model: Any, mitigations: list[Mitigation], train_length: int, calibration: np.ndarray | None
) -> list[tuple[str, Any, dict[str, Any]]]:
    """(name, model, inference options as data) — the trained model and each mitigation of
    it (SSM only: another family has no inference options and gets none)."""
    import torch

    from sepbench.models.ssm_inference import calibrate_state_norm

    out: list[tuple[str, Any, dict[str, Any]]] = [("none", model, {})]
    if model.family != "ssm":
        return out
    for m in mitigations:
        opts = m.inference_options(train_length)
        if m.kind == "state_norm":
            assert calibration is not None and m.norm_multiplier is not None
            ref = torch.from_numpy(calibration)
            opts["state_norm"] = calibrate_state_norm(model, ref, m.norm_multiplier)
        twin = model.with_inference(**opts)
        out.append((m.name, twin, twin.inference.as_dict()))
    return out


@dataclass(frozen=True)
class CapacityProbe(TrainingProbe):
    """Trains and scores one capacity trial (module docstring); picklable for the pools."""

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        from sepbench import models, tasks, training
        from sepbench.models.cards import ModelFacts
        from sepbench.sweep.executors import worker_threads
        from sepbench.training.threads import thread_scope

        config = self.grid_config(trial)
        ev = Evaluation.model_validate(config.evaluation)
        task = tasks.make(config.task, **config.task_params)
        t_train = config.length
        model = models.build(
            config.family,
            len(task.vocab),
            trial.width,
            seed=derive_seed(trial.seed, "init"),
            options=config.model_options,
        )
        threads = worker_threads()
        budget = config.budget.for_trainer()
        result = training.fit(
            model,
            task,
            t_train,
            budget,
            trial.seed,
            config.threshold,
            device=self.device,
            threads=threads,
        )
        start = time.perf_counter()
        digits = int(task.params["digits"])
        params = {k: v for k, v in task.params.items() if k != "depth"}
        seed = config.study_seed
        with thread_scope(threads if threads is not None else 1):
            ctx = draw_contexts(params, ev, t_train, seed)
            calibration = None
            if any(m.kind == "state_norm" for m in ev.mitigations):
                calibration = (
                    passkey_task(params, "uniform")
                    .sample(
                        t_train,
                        ev.calibration_rows,
                        rng=_rng(seed, "capacity.calibration", t_train),
                    )
                    .inputs
                )
            points: list[dict[str, Any]] = []
            traces: dict[str, Any] = {}
            inference: dict[str, Any] = {}
            trace_inputs = None
            if ev.trace_rows and hasattr(model, "state_trace"):
                longest = max(ev.lengths)
                trace_inputs = filler_rows(
                    task, longest, ev.trace_rows, _rng(seed, "capacity.trace", longest)
                )
            for name, variant, options in variants(model, ev.mitigations, t_train, calibration):
                rows = ev.rows if name == "none" else ev.mitigation_rows
                points += score(variant, name, ctx, digits, rows)
                inference[name] = options
                if trace_inputs is not None:
                    stride = min(ev.trace_stride, t_train)
                    traces[name] = trace_record(variant, trace_inputs, stride, t_train)
        details = result.to_dict()
        details[ModelFacts.KEY] = ModelFacts.of(
            model, task.name, task.params, task.max_tokens(t_train)
        ).to_dict()
        details.update(
            {
                POINTS_KEY: points,
                "traces": traces,
                "inference": inference,
                "examples_seen": int(result.steps) * budget.batch_size,
                "eval_wall_s": time.perf_counter() - start,
            }
        )
        return ProbeOutcome(
            reached=bool(result.reached),
            accuracy=float(result.sequence_accuracy),
            steps=int(result.steps),
            wall_s=float(result.wall_time) + details["eval_wall_s"],
            details=details,
        )
