"""`sepbench train` and `sepbench eval` — train one model, evaluate a checkpoint at lengths.

    sepbench train --task index_lookup --length 32 --model transformer --layers 1 --width 16 \
        --seed 0 [--param k=v] [--option k=v] [--steps N] [--batch-size B] [--lr LR] \
        [--threshold 0.99] [--device cpu|cuda] [--save PATH] [--json]
    sepbench eval CHECKPOINT [--lengths 16,32,64] [--batch-size B] [--seed S] [--json]

`train` exits 0 whether or not the threshold was reached (the result says which); errors a
user can cause (unknown task/model/option, missing CUDA, unwritable --save) exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sepbench import models, tasks
from sepbench.cli.common import parse_int_list, parse_kv
from sepbench.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train one model on a task until it reaches the accuracy threshold",
        description="Train one model on fresh samples of a task; stop at the threshold.",
    )
    p.add_argument("--task", required=True, help="task name (see 'sepbench tasks list')")
    p.add_argument("--length", type=int, required=True, help="problem size N")
    p.add_argument("--model", required=True, metavar="FAMILY", help=", ".join(models.families()))
    p.add_argument("--width", type=int, required=True, help="hidden width")
    p.add_argument("--layers", type=int, help="number of layers (model option 'layers')")
    p.add_argument("--seed", type=int, default=0, help="trial seed: init and data (default 0)")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="task parameter (repeatable)"
    )
    p.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="model option (repeatable)"
    )
    p.add_argument("--steps", type=int, help="maximum optimiser steps (budget.max_steps)")
    p.add_argument("--batch-size", type=int, help="training batch size")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--warmup", type=int, help="linear warm-up steps")
    p.add_argument("--eval-every", type=int, help="steps between evaluations")
    p.add_argument("--threshold", type=float, default=0.99, help="sequence accuracy to stop at")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_train)

    e = sub.add_parser(
        "eval",
        help="evaluate a checkpoint at several lengths",
        description="Evaluate a trained checkpoint (teacher forced; greedy for trace tasks).",
    )
    e.add_argument("checkpoint", help="a file written by 'sepbench train --save'")
    e.add_argument("--lengths", help="comma-separated problem sizes (default: trained length)")
    e.add_argument("--batch-size", type=int, default=1024, help="examples per length")
    e.add_argument(
        "--generation-batch", type=int, default=256, help="examples decoded per length (traces)"
    )
    e.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    e.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    e.add_argument("--json", action="store_true", help="print the records as JSON")
    e.set_defaults(handler=cmd_eval)


# --------------------------------------------------------------------------- train
def _budget(args: argparse.Namespace) -> Any:
    from sepbench.training import Budget

    overrides = {
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup": args.warmup,
        "eval_every": args.eval_every,
    }
    return Budget(**{k: v for k, v in overrides.items() if v is not None})


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = dict(parse_kv(args.option, "--option"))
    if args.layers is not None:
        if "layers" in options:
            raise UserError("give the number of layers once: --layers or --option layers=")
        options["layers"] = args.layers
    return options


def _check_save(path: str | None) -> None:
    from pathlib import Path

    if path is None:
        return
    dest = Path(path)
    parent = dest.parent if str(dest.parent) else Path(".")
    if dest.is_dir():
        raise UserError(f"--save {path!r} is a directory")
    if not parent.is_dir():
        raise UserError(f"--save {path!r}: directory {str(parent)!r} does not exist")


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sepbench import models, training

    task = tasks.make(args.task, **parse_kv(args.param, "--param"))
    task.check_length(args.length)
    if args.width < 1:
        raise UserError(f"--width must be >= 1, got {args.width}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    budget = _budget(args)
    device = training.resolve_device(args.device)
    _check_save(args.save)
    options = _model_options(args)
    model = models.build(args.model, len(task.vocab), args.width, seed=args.seed, **options)

    bar = tqdm(
        total=budget.max_steps,
        desc=f"{args.model} w={args.width} {task.name} N={args.length}",
        unit="step",
        disable=True if args.quiet else None,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def progress(p: training.Progress) -> None:
        bar.update(p.step - bar.n)
        bar.set_postfix(
            loss=f"{p.train_loss:.3g}",
            seq_acc=f"{p.metrics.sequence_accuracy:.3f}",
            tok_acc=f"{p.metrics.token_accuracy:.3f}",
            refresh=False,
        )

    try:
        result = training.fit(
            model,
            task,
            args.length,
            budget,
            seed=args.seed,
            threshold=args.threshold,
            device=device,
            callback=progress,
        )
    finally:
        bar.close()
    if args.save:
        training.save_checkpoint(args.save, model, result)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        verdict = (
            f"reached {result.config['threshold']} at step {result.steps}"
            if result.reached
            else f"did not reach {result.config['threshold']} in {result.steps} steps"
            + (" (diverged)" if result.stop == "diverged" else "")
        )
        print(
            f"{args.model} width {args.width} on {task.name} N={args.length} seed {args.seed}: "
            f"{verdict}"
        )
        print(
            f"  held-out ({budget.confirm_batch} examples): sequence {result.sequence_accuracy:.4f}"
            f"  token {result.token_accuracy:.4f}  answer {result.answer_accuracy:.4f}"
            f"  loss {result.loss:.4g}  ({result.wall_time:.1f} s)"
        )
        if args.save:
            print(f"  checkpoint: {args.save}")
    return 0


# --------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from sepbench import training

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.generation_batch < 0:
        raise UserError(f"--generation-batch must be >= 0, got {args.generation_batch}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    device = training.resolve_device(args.device)
    ckpt = training.load_checkpoint(args.checkpoint, device=device)
    task = ckpt.task()
    if args.lengths is not None:
        lengths = parse_int_list(args.lengths, "--lengths")
    else:
        trained = ckpt.trial_config().get("length")
        if not isinstance(trained, int):
            raise UserError("checkpoint has no trained length; give --lengths")
        lengths = [trained]
    records = training.evaluate_lengths(
        ckpt.model,
        task,
        lengths,
        batch_size=args.batch_size,
        seed=args.seed,
        generation_batch=args.generation_batch,
    )
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    cfg = ckpt.config
    trained = ckpt.trial_config().get("length")
    print(
        f"{cfg['family']} width {cfg['width']} on {task.name} {dict(task.params)}"
        + (f" (trained at N={trained})" if trained is not None else "")
    )
    header = f"{'N':>6}  {'sequence':>8}  {'token':>8}  {'answer':>8}  {'loss':>9}"
    gen = any(r["generation"] is not None for r in records)
    if gen:
        header += f"  {'gen answer':>10}  {'exact trace':>11}"
    print(header)
    for r in records:
        line = (
            f"{r['length']:>6}  {r['sequence_accuracy']:>8.4f}  {r['token_accuracy']:>8.4f}"
            f"  {r['answer_accuracy']:>8.4f}  {r['loss']:>9.4g}"
        )
        g = r["generation"]
        if g is not None:
            line += f"  {g['answer_accuracy']:>10.4f}  {g['trace_accuracy']:>11.4f}"
        print(line)
    return 0
