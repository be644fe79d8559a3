"""Cost of the tree-recursive families beside the sequence models (rvnn.md "Cost"; issue 14).

One run measures, for every model below at n ∈ {50, 100, 200, 300, 500, 700, 1000} tokens of a
``listops`` row (batch 1, width 64, training mode, one intra-op thread): the bytes saved for
backward by one training step (unique storages, parameters excluded) and the seconds of one
training step (forward, backward, AdamW; the fastest of ``--repeats`` 3 after the measured
one) — :mod:`sepbench.models.cost`. A model whose power-law extrapolation passes 4 GiB (or
300 s a step) stops being measured; its larger lengths are extrapolated and drawn hollow.

Run the whole measurement (about 20 min on one core), writing ``docs/results/rvnn_cost.json``,
``docs/results/rvnn_memory.png`` and printing the docs' table::

    .venv/bin/python benchmarks/bench_rvnn.py [--out docs/results] [--lengths 50,100,...]

Redraw the figure from the JSON only: ``--figure-only``. Seconds per training step at a training
batch instead: ``--batch-step 64,100``. ``pytest benchmarks/bench_rvnn.py``
runs a small version (n ∈ {20, 40}) as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sepbench import tasks
from sepbench.models import build
from sepbench.models.cost import Batch, CostPoint, measure_curve, step_seconds
from sepbench.report.cost import cost_figure, power_fit
from sepbench.report.plots import save

WIDTH = 64
LENGTHS = (50, 100, 200, 300, 500, 700, 1000)
MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("grc", "grc", {}),
    ("bbt", "bbt", {}),
    ("beam_tree children B5", "beam_tree", {"beam": 5, "scorer": "children"}),
    ("beam_tree parent B5", "beam_tree", {"beam": 5, "scorer": "parent"}),
    ("rir k30 B7", "rir", {"chunk": 30, "beam": 7}),
    ("rir k10 B5", "rir", {"chunk": 10, "beam": 5}),
    ("lstm", "lstm", {}),
    ("transformer 1 layer", "transformer", {"layers": 1, "max_len": 1024}),
    ("ssm", "ssm", {}),
]
HEADLINE = ("beam_tree parent B5", "rir k30 B7")
"""RC23's headline compares the original Beam-Tree RvNN (BT23: parent scorer) with RIR."""


def listops_batch(task: tasks.Task) -> Any:
    def make(n: int) -> Batch:
        b = task.sample(n, 1, seed=n)
        return torch.from_numpy(b.inputs), torch.from_numpy(b.targets[:, -1])

    return make


def run(
    lengths: tuple[int, ...],
    out: Path | None,
    log: Any = print,
    repeats: int = 3,
    width: int = WIDTH,
    only: list[str] | None = None,
) -> list[CostPoint]:
    torch.set_num_threads(1)
    task = tasks.make("listops")
    points: list[CostPoint] = []
    for label, family, options in MODELS:
        if only and label not in only:
            continue
        points += measure_curve(
            label,
            family,
            options,
            width,
            len(task.vocab),
            lengths,
            listops_batch(task),
            repeats=repeats,
            log=log,
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "width": width,
            "threads": 1,
            "repeats": repeats,
            "points": [p.to_dict() for p in points],
        }
        (out / "rvnn_cost.json").write_text(json.dumps(data, indent=1) + "\n")
        draw(data["points"], out)
    return points


def batch_steps(batch: int, n: int, repeats: int = 2) -> dict[str, float]:
    """Seconds per training step of every tree model at ``batch`` rows of n tokens (what a
    training run at that length pays)."""
    torch.set_num_threads(1)
    task = tasks.make("listops")
    b = task.sample(n, batch, seed=0)
    data = (torch.from_numpy(b.inputs), torch.from_numpy(b.targets[:, -1]))
    out = {}
    for label, family, options in MODELS:
        model = build(family, len(task.vocab), WIDTH, seed=0, **options).train()
        out[label] = step_seconds(model, data, repeats)
    return out


def draw(points: list[dict[str, Any]], out: Path) -> None:
    save(cost_figure(points), out / "rvnn_memory", formats=("png",))


def table(points: list[dict[str, Any]]) -> str:
    """Markdown: MiB and seconds per model and n (extrapolated values in parentheses), the
    fitted exponents, and the headline memory ratio."""
    labels = list(dict.fromkeys(p["label"] for p in points))
    ns = sorted({p["n"] for p in points})
    head = "| model | " + " | ".join(f"n = {n}" for n in ns) + " | exponent |"
    rows = [head, "|" + "---|" * (len(ns) + 2)]
    for what, scale, fmt in (("saved_bytes", 1 / 2**20, "{:.3g}"), ("seconds", 1.0, "{:.2g}")):
        rows.append(f"| **{'MiB per example' if what == 'saved_bytes' else 's per step'}** |")
        for label in labels:
            mine = {p["n"]: p for p in points if p["label"] == label}
            cells = []
            for n in ns:
                p = mine.get(n)
                text = fmt.format(p[what] * scale) if p else "—"
                cells.append(text if p is None or p["measured"] else f"({text})")
            meas = [p for p in mine.values() if p["measured"]]
            fit = power_fit([p["n"] for p in meas], [p[what] for p in meas])
            exponent = f"{fit[1]:.2f}" if fit else "—"
            rows.append(f"| {label} | " + " | ".join(cells) + f" | {exponent} |")
    by = {(p["label"], p["n"]): p for p in points}
    ratios = []
    for n in ns:
        bt, rir = by.get((HEADLINE[0], n)), by.get((HEADLINE[1], n))
        if bt and rir:
            mark = "" if bt["measured"] else " (extrapolated)"
            ratios.append(f"n = {n}: {bt['saved_bytes'] / rir['saved_bytes']:.0f}×{mark}")
    return "\n".join(rows) + "\n\nBeam-Tree (parent) : RIR memory — " + "; ".join(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument(
        "--models", help="comma-separated labels of MODELS to measure (default all)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per point (min)")
    parser.add_argument("--figure-only", action="store_true")
    parser.add_argument(
        "--batch-step",
        metavar="B,N",
        help="only print seconds per training step at batch B and length N (e.g. 64,100)",
    )
    args = parser.parse_args(argv)
    if args.batch_step:
        batch, n = (int(v) for v in args.batch_step.split(","))
        for label, sec in batch_steps(batch, n, args.repeats).items():
            print(f"{label}: {sec:.3f} s per step (batch {batch}, n = {n})")
        return 0
    if args.figure_only:
        data = json.loads((args.out / "rvnn_cost.json").read_text())
        draw(data["points"], args.out)
    else:
        lengths = tuple(int(x) for x in args.lengths.split(","))
        only = args.models.split(",") if args.models else None
        found = run(lengths, args.out, repeats=args.repeats, width=args.width, only=only)
        data = {"points": [p.to_dict() for p in found]}
    print(table(data["points"]))
    return 0


def test_cost_smoke(tmp_path: Path) -> None:
    """Small lengths: every model measured, memory grows with n, the figure is written."""
    points = run((20, 40), tmp_path, log=lambda _: None, repeats=1)
    assert all(p.measured and p.saved_bytes > 0 and p.seconds > 0 for p in points)
    for label, _, _ in MODELS:
        mem = [p.saved_bytes for p in points if p.label == label]
        assert mem[1] > mem[0], label
    assert (tmp_path / "rvnn_memory.png").stat().st_size > 0
    assert np.isfinite([p.seconds for p in points]).all()


if __name__ == "__main__":
    sys.exit(main())
