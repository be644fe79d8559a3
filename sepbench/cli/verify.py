"""`sepbench verify`: check the hand-built constructions against the tasks' reference answers.

sepbench verify [NAME] [--lengths 8,16,...] [--dtype float64[,float32,...]] [--bits P [--fixed]]
                [--param k=v ...] [--samples S] [--exhaustive-limit E] [--seed S]
                [--threads T] [--curves] [--list]

Without NAME every registered construction is verified. Exit code 0 when everything passes,
1 when some check fails (the first counterexample is printed), 2 for a user error.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch

from sepbench import constructions
from sepbench.cli.common import parse_int_list, parse_kv
from sepbench.constructions import verify as V
from sepbench.errors import UserError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify the hand-built constructions (exhaustive / hard / sampled inputs)",
        description="Run every hand-built construction (or NAME) on every input of small "
        "sizes, on structured hard inputs and on random task samples, at the given "
        "precisions, and report errors, logit margins and counterexamples.",
    )
    parser.add_argument("name", nargs="?", help="construction name (default: all)")
    parser.add_argument(
        "--lengths",
        default=None,
        help="comma-separated problem sizes N (default: "
        + ",".join(str(n) for n in V.DEFAULT_LENGTHS)
        + "; with --curves 8,16,...,256)",
    )
    parser.add_argument(
        "--dtype",
        default="float64",
        help="comma-separated dtypes: " + ", ".join(V.DTYPES) + " (default float64)",
    )
    parser.add_argument(
        "--bits",
        type=int,
        default=None,
        help="simulate P mantissa bits (0..52) after every operation instead of a dtype",
    )
    parser.add_argument(
        "--fixed", action="store_true", help="with --bits: B24's fixed-point grid (P fraction bits)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="builder parameter, e.g. addr_dim=32 or alphabet=2 (repeatable; needs NAME)",
    )
    parser.add_argument("--samples", type=int, default=None, help="random rows per N")
    parser.add_argument(
        "--exhaustive-limit",
        type=int,
        default=V.EXHAUSTIVE_LIMIT,
        help=f"enumerate every input when there are at most this many (default "
        f"{V.EXHAUSTIVE_LIMIT})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random rows")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a busy small machine more threads are slower)",
    )
    parser.add_argument(
        "--curves",
        action="store_true",
        help="also measure the smallest verifying width and the fewest bits at every N",
    )
    parser.add_argument("--list", action="store_true", help="list the constructions and exit")
    parser.set_defaults(handler=cmd_verify)


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    if count < 1:
        raise UserError(f"--threads must be >= 1, got {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in parse_kv(items, "--param").items():
        value: Any = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        out[key] = value
    return out


def _list() -> int:
    for name, c in constructions.registry().items():
        knob = f"  knob: {c.width_knob}" if c.width_knob else ""
        print(f"{name:<28} {c.task:<20} {c.result_id:<8} {c.form:<9} {c.summary}{knob}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    names = [args.name] if args.name else list(constructions.registry())
    for name in names:
        constructions.get(name)  # unknown name: UserError before any work
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    for d in dtypes:
        if d not in V.DTYPES:
            raise UserError(f"--dtype: unknown dtype {d!r}; choose from {', '.join(V.DTYPES)}")
    params = _parse_params(args.param)
    if params and not args.name:
        raise UserError("--param applies to one construction: give NAME as well")
    if args.bits is not None and not 0 <= args.bits <= 52:
        raise UserError(f"--bits must be in 0..52, got {args.bits}")
    if args.fixed and args.bits is None:
        raise UserError("--fixed needs --bits")
    if args.samples is not None and args.samples < 0:
        raise UserError(f"--samples must be >= 0, got {args.samples}")
    default = (8, 16, 32, 64, 128, 256) if args.curves else V.DEFAULT_LENGTHS
    lengths = parse_int_list(args.lengths, "--lengths") if args.lengths else list(default)
    failed = 0
    start = time.perf_counter()
    with _threads(args.threads):
        for name in names:
            c = constructions.get(name)
            form = {"log": "log N", "linear": "N"}.get(c.form, c.form)
            print(f"== {name}  ({c.result_id}, task {c.task}, width ~ {form})")
            try:
                rows = V.verify(
                    name,
                    lengths,
                    dtypes,
                    params=params,
                    bits=args.bits,
                    fixed=args.fixed,
                    samples=args.samples,
                    exhaustive_limit=args.exhaustive_limit,
                    seed=args.seed,
                )
            except UserError as exc:
                if args.name:
                    raise
                print(f"  skipped: {exc}\n")
                continue
            print(V.format_rows(rows))
            failed += sum(r.verdict != "pass" for r in rows)
            if args.curves:
                failed += _curves(name, lengths, params)
            print()
    total = time.perf_counter() - start
    verdict = "all passed" if not failed else f"{failed} failing checks"
    print(f"{verdict} ({total:.0f} s)")
    return 1 if failed else 0


def _curves(name: str, lengths: list[int], params: dict[str, Any]) -> int:
    """Print the width curve, the precision curve and the sanity check; count failures."""
    from sepbench.constructions import curves

    c = constructions.get(name)
    knobs: dict[int, int] = {}
    smallest: dict[int, int | None] = {}
    bad = 0
    if c.width_knob is not None:
        wc = curves.width_curve(name, lengths, params=params)
        print(f"-- smallest accepted {c.width_knob} (width): hypotheses hold, every row right")
        for p in wc.points:
            shown = "none" if p.knob is None else f"{p.knob} ({p.width})"
            print(f"   N={p.length:<6} {shown:<14} rows {p.checked:<5} {p.seconds:6.1f} s")
            smallest[p.length] = p.knob
            if p.knob is not None:
                knobs[p.length] = p.knob
        print(f"   fit: {wc.law}")
        print(f"   {wc.verdict if wc.verdict else wc.note}")
        if wc.verdict is not None and wc.verdict.outcome == "inconsistent":
            bad += 1
    pc = curves.precision_curve(name, lengths, params=params, knobs=knobs or None)
    print(
        "-- fewest bits at the smallest accepted width (mantissa with float64 exponents; fixed "
        "point: step 2^-f, |x| <= 2^f)"
    )
    for q in pc.points:
        dt = " ".join(f"{d}:{'ok' if ok else 'FAIL'}" for d, ok in q.dtypes.items())
        print(
            f"   N={q.length:<6} width {q.width:<6} mantissa {q.mantissa_bits}  "
            f"fixed f={q.fixed_bits}  {dt}"
        )
    print(f"   fixed-point fit: {pc.fixed_law}")
    bits = {q.length: q.needed_bits for q in pc.points if q.needed_bits is not None}
    measured = [(n, smallest.get(n)) for n in lengths if n in bits]
    rows = curves.sanity(name, measured, bits=bits, params=params)
    for r in rows:
        mark = "ok" if r.ok else "BELOW THE LOWER BOUND"
        print(
            f"   sanity N={r.length}: {r.numbers:g} numbers x {r.bits} bits vs {r.bound_id} "
            f"lower bound {r.lower_numbers:.3g}: {mark}"
        )
        bad += not r.ok
    if not rows:
        print("   sanity: no lower bound of this model class in the catalogue for this task")
    return bad
