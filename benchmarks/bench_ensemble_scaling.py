"""The cost of a K-member ensemble's training step against one model's step (issue 10, Deliver 2).

A probe of the training protocol trains K = seeds x restarts x learning rates members as one
batched ensemble (``models.build_ensemble`` + ``training.train(..., lrs=...)``); this measures
what one optimiser step of that ensemble costs against one model's step, for K = 1, 2, 4, 8,
16, per family and width, with one torch thread.

Both are timed *through the trainer* (``training.train``: the online data, the forward pass,
the masked per-member loss, backward, per-member clipping, AdamW with one rate per member), as
the **marginal step cost**: a run of ``short`` steps and one of ``long`` steps, evaluation
switched off (``eval_every`` above the run), best of ``rounds`` runs each, and
``(t_long - t_short) / (long - short)`` — so the model's construction, the stream's set-up and
the final confirmation cancel out. Time is the process's **CPU time** (``time.process_time``:
one torch thread, no prefetch thread on CPU, so it is the step's own work), not wall time: on
a shared machine a process gets a varying share of a core, which wall time would count and
CPU time does not (cache and memory-bandwidth contention still show). "One model" is a plain
model (``models.build``), which keeps its own kernels (oneDNN's fused ``nn.LSTM``); K = 1 is
also timed as an ensemble of one (the stacked path) to separate the stacking's own cost from
the members'.

The workload is the main job's (sepbench/sweep/studies/index_lookup.toml) at N = 32: binary
index lookup, batch 128, 33 tokens, lr grid [1e-2, 3e-3] alternating over the members.

Run (about 10 minutes on one quiet core; more on a shared machine)::

    python benchmarks/bench_ensemble_scaling.py --out docs/results/ensemble_scaling

(``pytest benchmarks/bench_ensemble_scaling.py -s`` runs a short version: K = 8, width 16.)
It prints the table and writes ``ensemble_scaling.json`` and ``ensemble_scaling.png`` (members
per second against K, one panel per family, one line per width) under ``--out``. Options:
``--families``, ``--widths``, ``--ks``, ``--length``, ``--batch``, ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from sepbench import models, tasks, training

FAMILIES = ["lstm", "gru", "transformer", "ssm"]
WIDTHS = [8, 16, 32]
KS = [1, 2, 4, 8, 16]
LRS = [1e-2, 3e-3]
OPTIONS: dict[str, dict[str, object]] = {"transformer": {"layers": 1, "heads": 1, "max_len": 65}}


def _budget(steps: int, batch: int) -> training.Budget:
    return training.Budget(
        max_steps=steps, batch_size=batch, lr=LRS[0], warmup=0, eval_every=10**6, confirm_batch=8
    )


def _run_seconds(
    family: str, width: int, k: int | None, task: tasks.Task, length: int, steps: int, batch: int
) -> float:
    """CPU seconds (this process, one torch thread) of one ``training.train`` of ``steps``
    steps; ``k=None``: one plain model."""
    vocab = len(task.vocab)
    options = OPTIONS.get(family, {})
    if k is None:
        model: torch.nn.Module = models.build(family, vocab, width, seed=0, options=options)
        seeds, lrs = [0], None
    else:
        seeds = list(range(k))
        model = models.build_ensemble(family, vocab, width, seeds, options=options)
        lrs = [LRS[i % len(LRS)] for i in range(k)]
    start = time.process_time()
    training.train(
        model, task, length, _budget(steps, batch), seeds, threshold=1.0, lrs=lrs, threads=1
    )
    return time.process_time() - start


def step_seconds(
    family: str,
    width: int,
    k: int | None,
    task: tasks.Task,
    length: int,
    batch: int,
    short: int,
    long: int,
    rounds: int,
) -> float:
    """Marginal seconds per optimiser step (module docstring), best of ``rounds`` each, after
    one warm-up run (the first run in a process also pays for torch's lazy initialisation)."""
    _run_seconds(family, width, k, task, length, short, batch)
    t_short = min(_run_seconds(family, width, k, task, length, short, batch) for _ in range(rounds))
    t_long = min(_run_seconds(family, width, k, task, length, long, batch) for _ in range(rounds))
    return max(t_long - t_short, 1e-9) / (long - short)


def measure(
    families: Sequence[str],
    widths: Sequence[int],
    ks: Sequence[int],
    length: int,
    batch: int,
    rounds: int,
) -> list[dict[str, object]]:
    torch.set_num_threads(1)
    task = tasks.make("index_lookup", alphabet=2, max_length=max(64, length))
    rows: list[dict[str, object]] = []
    for family in families:
        for width in widths:
            short, long = 5, 45
            single = step_seconds(family, width, None, task, length, batch, short, long, rounds)
            for k in ks:
                t = step_seconds(family, width, k, task, length, batch, short, long, rounds)
                row = {
                    "family": family,
                    "width": width,
                    "k": k,
                    "single_ms": round(single * 1e3, 3),
                    "ensemble_ms": round(t * 1e3, 3),
                    "cost_vs_single": round(t / single, 2),
                    "members_per_s": round(k / t, 1),
                    "single_members_per_s": round(1 / single, 1),
                }
                rows.append(row)
                print(
                    f"{family:<12} width {width:>3} K={k:>2}: one model {single * 1e3:7.2f} ms, "
                    f"ensemble {t * 1e3:7.2f} ms = {t / single:5.2f}x, {k / t:7.1f} members/s",
                    flush=True,
                )
    return rows


def _model_step(
    family: str, width: int, k: int | None, length: int, batch: int, compiled: bool
) -> tuple[object, object]:
    """One training step of a bare model (forward, mean cross-entropy, backward, AdamW; no
    data stream): ``(step, model)``; ``compiled``: the forward pass under ``torch.compile``."""
    import torch.nn.functional as F

    vocab = 2 + 1 + length + 1
    options = OPTIONS.get(family, {})
    if k is None:
        model: torch.nn.Module = models.build(family, vocab, width, seed=0, options=options)
        shape: tuple[int, ...] = (batch, length + 1)
    else:
        model = models.build_ensemble(family, vocab, width, list(range(k)), options=options)
        shape = (k, batch, length + 1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, vocab, shape, generator=g), torch.randint(0, vocab, shape, generator=g)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x).reshape(-1, vocab), y.reshape(-1)).backward()
        opt.step()

    return step, model


def compile_check(
    family: str,
    widths: Sequence[int],
    ks: Sequence[int | None],
    length: int,
    batch: int,
    steps: int = 30,
) -> list[dict[str, object]]:
    """CPU ms per bare training step, eager against ``torch.compile`` (inductor, CPU), and the
    compile time (the first compiled calls)."""
    torch.set_num_threads(1)
    rows = []
    for width in widths:
        for k in ks:
            out: dict[str, object] = {"family": family, "width": width, "k": k or "plain"}
            for compiled in (False, True):
                step, _ = _model_step(family, width, k, length, batch, compiled)
                start = time.process_time()
                step()
                step()
                first = time.process_time() - start
                best = float("inf")
                for _ in range(3):
                    start = time.process_time()
                    for _ in range(steps):
                        step()
                    best = min(best, (time.process_time() - start) / steps)
                key = "compiled" if compiled else "eager"
                out[f"{key}_ms"] = round(best * 1e3, 3)
                if compiled:
                    out["compile_s"] = round(first, 1)
            print(out, flush=True)
            rows.append(out)
    return rows


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(str(r["family"]) for r in rows))
    fig, axes = plt.subplots(1, len(families), figsize=(3.2 * len(families), 3.2), sharey=True)
    axes = [axes] if len(families) == 1 else list(axes)
    for ax, family in zip(axes, families, strict=True):
        mine = [r for r in rows if r["family"] == family]
        for width in dict.fromkeys(int(str(r["width"])) for r in mine):
            line = [r for r in mine if r["width"] == width]
            (drawn,) = ax.plot(
                [r["k"] for r in line], [r["members_per_s"] for r in line], "o-", label=f"w={width}"
            )
            ax.axhline(float(str(line[0]["single_members_per_s"])), ls=":", color=drawn.get_color())
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(family)
        ax.set_xlabel("K (members)")
    axes[0].set_ylabel("members trained per second\n(dotted: one plain model)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def test_ensemble_cost(benchmark: object) -> None:
    """The suite's short version (``pytest benchmarks/bench_ensemble_scaling.py -s``): K = 8
    against one model, width 16, every family; ``extra_info`` per family."""
    rows = measure(FAMILIES, [16], [8], length=32, batch=128, rounds=1)
    info = getattr(benchmark, "extra_info", {})
    for row in rows:
        info[f"{row['family']}_cost_vs_single"] = row["cost_vs_single"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=FAMILIES)
    parser.add_argument("--widths", nargs="+", type=int, default=WIDTHS)
    parser.add_argument("--ks", nargs="+", type=int, default=KS)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="instead: bare steps eager vs torch.compile for the first family (K = plain, 8)",
    )
    args = parser.parse_args(argv)
    if args.compile:
        rows = compile_check(args.families[0], args.widths, [None, 8], args.length, args.batch)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"compile_{args.families[0]}.json"
            path.write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    rows = measure(args.families, args.widths, args.ks, args.length, args.batch, args.rounds)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {
            "workload": f"index_lookup alphabet 2, N = {args.length}, batch {args.batch}",
            "lrs": LRS,
            "threads": 1,
            "torch": torch.__version__,
            "rows": rows,
        }
        (args.out / "ensemble_scaling.json").write_text(json.dumps(meta, indent=1) + "\n")
        plot(rows, args.out / "ensemble_scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
