"""`sepbench sweep STUDY.toml` and `sepbench results show | export` — width sweeps from the shell.

This module registers two command groups, ``sweep`` and ``results``.
"""

from __future__ import annotations

import argparse
from typing import Any

from sepbench import sweep
from sepbench.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="search the minimal width per (task, model, length) for a study spec",
        description="Run or resume a study: every trial is stored as it finishes, so an "
        "interrupted study continues where it stopped when run again.",
    )
    p.add_argument(
        "study", metavar="STUDY", help="the study spec (a TOML file, or a built-in study's name)"
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray", "inline"),
        help="where trials run (default: the spec's [executor] kind, else local)",
    )
    p.add_argument("--workers", type=int, help="concurrent trials (0 = one per core)")
    p.add_argument("--threads", type=int, help="threads per trial (default 1)")
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--device", help="torch device for training, e.g. cuda (default: cpu)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help=f"directory of the store DIR/<study>.sqlite (default {sweep.DEFAULT_OUT}/)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run", action="store_true", help="validate the spec, print the plan, run nothing"
    )
    p.set_defaults(handler=cmd_sweep)

    r = sub.add_parser("results", help="show or export a sweep's results store")
    rsub = r.add_subparsers(dest="results_command", metavar="ACTION", parser_class=type(r))
    rsub.required = True

    show = rsub.add_parser("show", help="the study, its progress and the width table")
    show.add_argument("store", metavar="STORE.sqlite")
    show.add_argument("--searches", action="store_true", help="also list every search")
    show.add_argument("--spec", action="store_true", help="print the stored spec as TOML")
    show.set_defaults(handler=cmd_show)

    export = rsub.add_parser("export", help="write a table as CSV")
    export.add_argument("store", metavar="STORE.sqlite")
    export.add_argument("--csv", metavar="FILE", help="destination (default: stdout)")
    export.add_argument(
        "--table",
        choices=(*sweep.TABLES, "points"),
        default="trials",
        help="trials (one row per training run, default), searches (one per seed) or "
        "widths (median and range per task, model, length); points (a grid study such as "
        "state_capacity: one row per evaluated point)",
    )
    export.set_defaults(handler=cmd_export)


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = _load(args.study)
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be >= 0 (0 = one per core), got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if args.dry_run:
        plans = sweep.plan_study(spec)
        print(f"study {spec.name}: {len(plans)} searches -> {sweep.store_path(spec, args.out)}")
        for plan in plans:
            print(
                f"  {plan.describe()}  widths {plan.grid.minimum}..{plan.grid.maximum}"
                f" step {plan.grid.resolution}, {plan.config.budget.steps} steps"
            )
        return 0
    summary = sweep.run_study(
        spec,
        args.out,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        address=args.address,
        device=args.device,
        progress=not args.no_progress,
    )
    print(summary.table())
    print(
        f"store: {summary.store_path} ({summary.trials} trials, {summary.new_trials} new, "
        f"{summary.wall_s:.1f} s)"
    )
    if summary.violations:
        print(f"note: {summary.violations} search(es) saw non-monotone outcomes (see --searches)")
    return 0


def _load(study: str) -> sweep.StudySpec:
    from pathlib import Path

    from sepbench.sweep.spec import builtin_studies, load_builtin

    if not Path(study).exists() and study in builtin_studies():
        return load_builtin(study)
    if not Path(study).exists():
        raise UserError(
            f"study spec {study!r} does not exist (built-in studies: "
            f"{', '.join(builtin_studies())})"
        )
    return sweep.load_spec(study)


def cmd_show(args: argparse.Namespace) -> int:
    with sweep.Store.open(args.store) as store:
        if args.spec:
            print(store.spec().to_toml(), end="")
            return 0
        summary = sweep.summarize(store)
        meta = store.meta
    done = sum(s.status != "incomplete" for s in summary.searches)
    print(f"study {summary.study} (spec {summary.spec_hash[:12]}, created {meta.get('created')})")
    print(
        f"{summary.trials} trials; {done}/{len(summary.searches)} searches finished"
        + ("" if summary.complete else " (incomplete: run the study again to resume)")
    )
    print(summary.table())
    if summary.extra.get("orphan_trials"):
        print(
            f"warning: {summary.extra['orphan_trials']} stored trials match no search of the "
            "spec as this sepbench resolves it (written by another version?)"
        )
    if args.searches:
        print()
        for s in summary.searches:
            viol = ", ".join(f"{a}<{b}" for a, b in s.violations)
            print(
                f"{s.task} / {s.model} N={s.length} seed#{s.replicate}: {s.width_text()} "
                f"({s.status}, {s.probes} probes"
                + (f", violations {viol}" + ("" if s.consistent else " unresolved") if viol else "")
                + ")"
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sepbench.sweep.export import write_csv

    with sweep.Store.open(args.store) as store:
        if args.table == "points":
            from sepbench.studies.grid import write_points_csv

            if store.kind == "width":
                raise UserError(f"{args.store} holds a width search: it has no points table")
            rows = write_points_csv(store, args.csv)
        else:
            rows = write_csv(store, args.csv, args.table)
    if args.csv and args.csv != "-":
        print(f"wrote {rows} rows to {args.csv}")
    return 0
