"""Do the anchors' LSTM initialisations help at laptop scale? (issue 10, Deliver 1.)

Trains 8 seeds of one small LSTM per initialisation — torch's default, ``forget_bias = 1``
(Delétang et al. 2023's Haiku LSTM), ``recurrent_init = "orthogonal"``, and both — as one
batched ensemble each, and prints per case how many members reached the threshold, their median
step, and the members' mean final sequence accuracy. The seeds, data and budget are the same
for every initialisation (common random numbers), so the columns differ only by the init.

Run: ``python benchmarks/measure_inits.py`` (about four minutes on a quiet 2-core machine).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from sepbench import models, tasks, training

INITS: dict[str, dict[str, Any]] = {
    "default": {},
    "forget_bias=1": {"forget_bias": 1.0},
    "orthogonal": {"recurrent_init": "orthogonal"},
    "both": {"forget_bias": 1.0, "recurrent_init": "orthogonal"},
}
CASES: list[dict[str, Any]] = [
    {
        "name": "index_lookup k=2, N=4, width 16",
        "task": ("index_lookup", {"alphabet": 2, "max_length": 32}),
        "length": 4,
        "width": 16,
        "budget": {"max_steps": 800, "batch_size": 128, "lr": 1e-2, "warmup": 50},
    },
    {
        "name": "dyck (2, 2), N=16, width 16",
        "task": ("dyck", {"types": 2, "depth": 2}),
        "length": 16,
        "width": 16,
        "budget": {"max_steps": 1500, "batch_size": 64, "lr": 3e-3, "warmup": 50},
    },
]
SEEDS = list(range(8))
THRESHOLD = 0.9


def run(case: dict[str, Any], options: dict[str, Any]) -> tuple[int, str, float, float]:
    name, params = case["task"]
    task = tasks.make(name, **params)
    budget = training.Budget(**case["budget"], eval_every=25, eval_batch=256, confirm_batch=1024)
    ens = models.build_ensemble("lstm", len(task.vocab), case["width"], SEEDS, **options)
    start = time.perf_counter()
    results = training.train(ens, task, case["length"], budget, SEEDS, THRESHOLD).results
    wall = time.perf_counter() - start
    steps = [r.steps for r in results if r.reached]
    median = f"{statistics.median(steps):.0f}" if steps else "—"
    accuracy = statistics.mean(r.sequence_accuracy for r in results)
    return len(steps), median, accuracy, wall


def main() -> None:
    torch.set_num_threads(1)
    for case in CASES:
        print(f"\n{case['name']}: {len(SEEDS)} seeds, threshold {THRESHOLD}, {case['budget']}")
        print(f"{'init':<16}{'reached':>8}{'median step':>13}{'mean acc':>10}{'wall s':>8}")
        for label, options in INITS.items():
            reached, median, accuracy, wall = run(case, options)
            print(f"{label:<16}{reached:>5}/{len(SEEDS)}{median:>13}{accuracy:>10.3f}{wall:>8.1f}")


if __name__ == "__main__":
    main()
