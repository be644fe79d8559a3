"""Cost of the tree-recursive families beside the sequence models (rvnn.md "Cost"; issue 14).

One run measures, for every model below at n ∈ {50, 100, 200, 300, 500, 700, 1000} tokens of a
``listops`` row (batch 1, width 64, training mode, one intra-op thread): the bytes saved for
backward by one training step (unique storages, parameters excluded) and the seconds of one
training step (forward, backward, AdamW; the fastest of two) — :mod:`sepbench.models.cost`. A
model whose power-law extrapolation passes 4 GiB (or 300 s a step) stops being measured; its
larger lengths are extrapolated and drawn hollow.

Run the whole measurement (about 20 min on one core), writing ``docs/results/rvnn_cost.json``,
``docs/results/rvnn_memory.png`` and printing the docs' table::

    .venv/bin/python benchmarks/bench_rvnn.py [--out docs/results] [--lengths 50,100,...]

Redraw the figure from the JSON only: ``--figure-only``. ``pytest benchmarks/bench_rvnn.py``
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
from sepbench.models.cost import Batch, CostPoint, measure_curve
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


def run(lengths: tuple[int, ...], out: Path | None, log: Any = print) -> list[CostPoint]:
    torch.set_num_threads(1)
    task = tasks.make("listops")
    points: list[CostPoint] = []
    for label, family, options in MODELS:
        points += measure_curve(
            label,
            family,
            options,
            WIDTH,
            len(task.vocab),
            lengths,
            listops_batch(task),
            log=log,
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        data = {"width": WIDTH, "threads": 1, "points": [p.to_dict() for p in points]}
        (out / "rvnn_cost.json").write_text(json.dumps(data, indent=1) + "\n")
        draw(data["points"], out)
    return points


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
            _, a = power_fit([p["n"] for p in meas], [p[what] for p in meas])
            rows.append(f"| {label} | " + " | ".join(cells) + f" | {a:.2f} |")
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
    parser.add_argument("--figure-only", action="store_true")
    args = parser.parse_args(argv)
    if args.figure_only:
        data = json.loads((args.out / "rvnn_cost.json").read_text())
        draw(data["points"], args.out)
    else:
        lengths = tuple(int(x) for x in args.lengths.split(","))
        data = {"points": [p.to_dict() for p in run(lengths, args.out)]}
    print(table(data["points"]))
    return 0


def test_cost_smoke(tmp_path: Path) -> None:
    """Small lengths: every model measured, memory grows with n, the figure is written."""
    points = run((20, 40), tmp_path, log=lambda _: None)
    assert all(p.measured and p.saved_bytes > 0 and p.seconds > 0 for p in points)
    for label, _, _ in MODELS:
        mem = [p.saved_bytes for p in points if p.label == label]
        assert mem[1] > mem[0], label
    assert (tmp_path / "rvnn_memory.png").stat().st_size > 0
    assert np.isfinite([p.seconds for p in points]).all()


if __name__ == "__main__":
    sys.exit(main())
