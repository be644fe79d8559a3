"""IsTree with the retrieval trace: the LSTM against the RAG model at equal width, budget, seeds.

    .venv/bin/python benchmarks/is_tree_rag_vs_lstm.py [--widths 8 16 32 64] [--nodes 4]

Both are the same LSTM network (the ``rag`` family wraps one). The protocol of issue 9: the
LSTM must write the retrieval results itself (they are its targets, ``Task.without_retriever``);
the RAG model's generation loop gets them from the task's retriever (unsupervised in its
training). A trial succeeds on exact match of the free-running greedy trace and answer on
``confirm_batch`` held-out rows (``TrialResult.sequence_accuracy``; the answer's accuracy by
generation beside it). Budget: the ``is_tree`` preset's at n = 4 (800 steps of 64, lr 3e-3).
Prints one line per (width, family, seed).
"""

from __future__ import annotations

import argparse
import time

from sepbench import models, tasks, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    task = tasks.make("is_tree", graph="binary", trace="retrieval", max_length=8)
    budget = training.Budget(
        max_steps=800, batch_size=64, lr=3e-3, warmup=50, eval_every=50, eval_batch=128,
        confirm_batch=512,
    )  # fmt: skip
    for width in args.widths:
        for family in ("lstm", "rag"):
            for seed in args.seeds:
                model = models.build(family, len(task.vocab), width, seed=seed)
                start = time.perf_counter()
                r = training.fit(model, task, args.nodes, budget, seed=seed, threshold=0.9)
                print(
                    f"width {width:3d} {family:4s} seed {seed}: reached {r.reached!s:5s} "
                    f"steps {r.steps:4d} trace exact {r.sequence_accuracy:.3f} answer "
                    f"{r.answer_accuracy:.3f} ({r.scoring}; retrieval results: "
                    f"{r.config['task']['retrieval_results']}) "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
