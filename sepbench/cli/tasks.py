"""`sepbench tasks list | show | sample | export` — the task generators from the shell."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from sepbench import tasks
from sepbench.cli.common import atomic_write, parse_kv
from sepbench.errors import UserError

EXPORT_CHUNK = 4096


def register(sub: Any) -> None:
    p = sub.add_parser("tasks", help="list, show, sample and export the synthetic tasks")
    tsub = p.add_subparsers(dest="tasks_command", metavar="ACTION", parser_class=type(p))
    tsub.required = True

    lst = tsub.add_parser("list", help="the registered tasks")
    lst.set_defaults(handler=cmd_list)

    show = tsub.add_parser("show", help="a task's parameters, source and an example")
    show.add_argument("name")
    _add_params(show)
    show.set_defaults(handler=cmd_show)

    sample = tsub.add_parser("sample", help="print readable examples")
    sample.add_argument("name")
    sample.add_argument("--length", type=int, required=True, help="problem size N")
    sample.add_argument("-n", "--count", type=int, default=4, help="examples (default 4)")
    sample.add_argument("--seed", type=int, default=0)
    _add_params(sample)
    sample.set_defaults(handler=cmd_sample)

    export = tsub.add_parser("export", help="write examples as JSON Lines")
    export.add_argument("name")
    export.add_argument("--length", type=int, required=True, help="problem size N")
    export.add_argument("--count", type=int, required=True, help="number of examples")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("-o", "--output", required=True, help="destination .jsonl file")
    _add_params(export)
    export.set_defaults(handler=cmd_export)


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="task parameter (repeatable), e.g. --param depth=3",
    )


def _make(args: argparse.Namespace) -> tasks.Task:
    return tasks.make(args.name, **parse_kv(args.param, "--param"))


def cmd_list(args: argparse.Namespace) -> int:
    width = max(map(len, tasks.names()))
    for name in tasks.names():
        cls = tasks.get_class(name)
        print(f"{name:<{width}}  {cls.summary}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    task = _make(args)
    info = task.describe()
    print(f"{info['name']}: {info['summary']}")
    print(f"  source:  {info['source']}")
    print(f"  length:  N = {info['length']}")
    print(f"  vocab:   {info['vocab_size']} tokens")
    if info["params"]:
        print("  params:")
        for pname, p in info["params"].items():
            print(
                f"    {pname} = {task.params[pname]!r}  ({p['allowed']}; default {p['default']!r})"
            )
            print(f"        {p['doc']}")
    lo, hi = task.test_lengths
    accepted = [n for n in range(lo, hi + 64) if _accepts(task, n)]
    if not accepted:
        raise UserError(f"task '{task.name}': no length in {lo}..{hi + 63} fits these parameters")
    # the first accepted length >= 8, else the largest (a small max_length caps it)
    length = next((n for n in accepted if n >= 8), accepted[-1])
    batch = task.sample(length, 1, seed=0)
    print(f"  example (N = {length}, seed 0):")
    print("    " + task.format_row(batch, 0).replace("\n", "\n    "))
    return 0


def _accepts(task: tasks.Task, length: int) -> bool:
    try:
        task.check_length(length)
    except ValueError:
        return False
    return True


def _check_count(count: int, flag: str) -> None:
    if count < 1:
        raise UserError(f"{flag} must be >= 1, got {count}")


def cmd_sample(args: argparse.Namespace) -> int:
    task = _make(args)
    _check_count(args.count, "--count")
    batch = task.sample(args.length, args.count, seed=args.seed)
    for row in range(len(batch)):
        print(task.format_row(batch, row))
    return 0


def export_rows(task: tasks.Task, length: int, count: int, seed: int) -> Iterator[dict[str, Any]]:
    """The JSON Lines records of tasks.md, generated in bounded-memory chunks.

    Chunks share one generator seeded by ``seed``, so the output depends only on
    (task, params, length, count, seed).
    """
    rng = np.random.default_rng(seed)
    index = 0
    while index < count:
        n = min(EXPORT_CHUNK, count - index)
        batch = task.sample(length, n, rng=rng)
        for row in range(n):
            yield {
                "task": task.name,
                "params": task.params,
                "length": length,
                "seed": seed,
                "index": index,
                "input": task.decode(batch.inputs[row]),
                "targets": [[t, tok] for t, tok in task.supervised_positions(batch, row)],
            }
            index += 1


def cmd_export(args: argparse.Namespace) -> int:
    task = _make(args)
    _check_count(args.count, "--count")
    task.check_length(args.length)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    with atomic_write(args.output) as out:
        for record in export_rows(task, args.length, args.count, args.seed):
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"wrote {args.count} examples of {task.name} (N = {args.length}) to {args.output}")
    return 0
