"""`sepbench run` — the main job: a shipped width-scaling study, end to end.

``sepbench run`` runs the default study (``index_lookup``: a one-layer Transformer against GRU,
LSTM and SSM), computes the constructions' widths at the study's lengths, and writes
everything into ``<out>/<study>/``: the results store ``<study>.sqlite``, the constructive
widths ``constructions.json`` and the report ``<study>-report/report.md`` with its figures
(where ``sepbench report <out>/<study>`` writes it too). It is
``sepbench sweep`` + the constructive-width search + ``sepbench report`` in one command, with
progress bars; killed at any point, it resumes where it stopped when run again.

``--study NAME`` runs another shipped study (``--list`` names them); ``--quick`` its small
variant: the shipped ``NAME-quick`` study when there is one, else the study cut down by
:func:`quick_variant`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sepbench.errors import UserError

DEFAULT_STUDY = "index_lookup"
QUICK_SUFFIX = "-quick"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="the main job: run a shipped width-scaling study and write its report",
        description="Run a shipped study (default: index_lookup, a one-layer Transformer "
        "against GRU, LSTM and SSM), search the constructions' widths at its lengths, and "
        "write the store, the figures and report.md into OUT/<study>/. A killed run resumes "
        "where it stopped when run again with the same arguments.",
    )
    p.add_argument(
        "--study",
        default=DEFAULT_STUDY,
        metavar="NAME",
        help=f"a shipped study (default {DEFAULT_STUDY}; see --list) or a study TOML file",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="the study's small variant (NAME-quick when shipped, else cut down)",
    )
    p.add_argument("--out", metavar="DIR", default="runs", help="parent directory (default runs/)")
    p.add_argument(
        "--executor",
        choices=("local", "ray", "inline"),
        help="where trials run (default: the study's, local: a process pool)",
    )
    p.add_argument("--workers", type=int, help="concurrent jobs (0 = one per core)")
    p.add_argument("--threads", type=int, help="torch threads per job (default 1)")
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--device", help="torch device for training, e.g. cuda (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-constructions",
        action="store_true",
        help="skip the constructive-width search (the report then has no construction curve)",
    )
    p.add_argument("--list", action="store_true", help="list the shipped studies and exit")
    p.set_defaults(handler=cmd_run)


# ---------------------------------------------------------------------- studies
def shipped() -> list[str]:
    """The shipped studies that ``--study`` accepts (their quick variants not listed)."""
    from sepbench.sweep.spec import builtin_studies

    names = builtin_studies()
    return [n for n in names if not n.endswith(QUICK_SUFFIX)]


def quick_variant(spec: Any) -> Any:
    """A study cut down for a quick look: its three shortest lengths, at most two seeds,
    half the training steps, named ``<name>-quick`` (so it has a store of its own)."""
    from sepbench.sweep import StudySpec

    data = spec.model_dump(mode="json", exclude_none=True)
    data["name"] = spec.name + QUICK_SUFFIX
    data["lengths"] = sorted(spec.lengths)[:3]
    data["seeds"] = list(spec.seeds)[:2]
    data["budget"]["steps"] = max(1, spec.budget.steps // 2)
    data["description"] = f"{spec.description} (quick variant: cut down by sepbench run --quick)"
    return StudySpec.from_dict(data, source=f"{spec.name} --quick")


def resolve_study(name: str, quick: bool) -> tuple[Any, str]:
    """(spec, where it came from) for ``--study NAME [--quick]``."""
    from sepbench.sweep import load_spec
    from sepbench.sweep.spec import builtin_studies, load_builtin

    names = builtin_studies()
    if name in names:
        if quick and name + QUICK_SUFFIX in names:
            return load_builtin(name + QUICK_SUFFIX), f"shipped study {name}{QUICK_SUFFIX}"
        spec = load_builtin(name)
        origin = f"shipped study {name}"
    elif name.endswith(".toml") and Path(name).is_file():
        spec = load_spec(name)
        origin = f"study file {name}"
    else:
        raise UserError(
            f"unknown study '{name}'; shipped studies: {', '.join(shipped())} "
            "(or give a study TOML file)"
        )
    if quick:
        return quick_variant(spec), f"{origin}, cut down (--quick)"
    return spec, origin


# ---------------------------------------------------------------------- the job
def _say(text: str) -> None:
    print(text, flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def cmd_run(args: argparse.Namespace) -> int:
    from sepbench import sweep

    if args.list:
        from sepbench.sweep.spec import load_builtin

        for name in shipped():
            spec = load_builtin(name)
            mark = " (default)" if name == DEFAULT_STUDY else ""
            _say(f"{name}{mark}: {spec.description}")
        return 0
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be >= 0 (0 = one per core), got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    spec, origin = resolve_study(args.study, args.quick)
    folder = Path(args.out) / spec.name
    plans = sweep.plan_study(spec)
    models = ", ".join(label for _, label in spec.model_labels())
    tasks = ", ".join(label for _, label in spec.task_labels())
    _say(f"sepbench run: {spec.name} ({origin})")
    if spec.description:
        _say(f"  {spec.description}")
    _say(
        f"  tasks {tasks}; models {models}; N = {', '.join(map(str, spec.lengths))}; "
        f"{len(spec.seeds)} seed(s): {len(plans)} searches, trainer {spec.trainer}"
    )
    _say(f"  output: {folder}/")
    start = time.perf_counter()

    # 1. the trained widths
    summary = sweep.run_study(
        spec,
        folder,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        address=args.address,
        device=args.device,
        progress=not args.no_progress,
    )
    sweep_s = time.perf_counter() - start
    _say(summary.table())
    _say(
        f"sweep: {summary.trials} trials ({summary.new_trials} new) in {_duration(sweep_s)}; "
        f"store {summary.store_path}"
    )

    # 2. the constructions' widths
    t = time.perf_counter()
    curves = {} if args.no_constructions else construction_curves(spec, folder, args.no_progress)
    if args.no_constructions:
        _say("constructions: skipped (--no-constructions)")
    construction_s = time.perf_counter() - t

    # 3. the report
    from sepbench import report

    t = time.perf_counter()
    store = Path(summary.store_path)
    path = report.write_report(store, store.parent / f"{store.stem}-report", curves or None)
    report_s = time.perf_counter() - t
    data = json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
    _say("verdicts (measured growth law of the minimal width; outcome against the theorems):")
    for pair in data["pairs"]:
        alpha = pair.get("alpha")
        ci = pair.get("alpha_ci")
        exponent = ""
        if alpha is not None:
            exponent = f", α = {alpha:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        law = pair["law"] or "no fit"
        _say(f"  {pair['task']} / {pair['model']}: {law}{exponent}; {pair['outcome']}")
    total = time.perf_counter() - start
    _say(
        f"report: {path}  (total {_duration(total)}: sweep {_duration(sweep_s)}, "
        f"constructions {_duration(construction_s)}, report {_duration(report_s)})"
    )
    return 0


def construction_curves(spec: Any, folder: Path, quiet: bool) -> dict[str, dict[str, Any]]:
    """Constructive widths of every construction of the study's tasks at the study's lengths
    (the smallest verifying width where a knob sets it); measured once, cached in
    ``folder/constructions.json``."""
    from sepbench.sweep.constructive import (
        CONSTRUCTIONS_CACHE,
        cache_key,
        cached_curves,
        constructions_for,
        constructive_widths,
        read_cache,
    )

    cache = read_cache(folder)
    lengths = sorted(spec.lengths)
    for task, label in spec.task_labels():
        names = constructions_for(task.name)
        if not names:
            _say(f"constructions: none registered for task {label}; skipped")
            continue
        for name in names:
            key = cache_key(name, task.params, lengths)
            if key not in cache:
                bar = None
                if not quiet:
                    from tqdm.auto import tqdm

                    bar = tqdm(
                        total=len(lengths), desc=f"construction {name}", unit="N", file=sys.stderr
                    )

                def tick(n: int, width: int | None, bar: Any = bar) -> None:
                    if bar is not None:
                        bar.set_postfix_str(f"N={n}: width {width}", refresh=False)
                        bar.update(1)

                try:
                    curve = constructive_widths(name, lengths, task.params, on_length=tick)
                finally:
                    if bar is not None:
                        bar.close()
                cache[key] = {
                    "name": name,
                    "task": curve.task,
                    "result_id": curve.result_id,
                    "knob": curve.knob,
                    "points": [list(p) for p in curve.points],
                    "knobs": [list(p) for p in curve.knobs],
                }
                folder.mkdir(parents=True, exist_ok=True)
                (folder / CONSTRUCTIONS_CACHE).write_text(
                    json.dumps(cache, indent=1) + "\n", encoding="utf-8"
                )
            entry = cache[key]
            shown = ", ".join(f"N={n}: {w}" for n, w in entry["points"])
            what = "smallest verifying width" if entry["knob"] else "width where it verifies"
            _say(f"constructions: {name} ({entry['result_id']}) {what} {shown}")
    return cached_curves(spec, folder)
