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
:func:`sepbench.mainjob.quick_variant`. The job itself is :func:`sepbench.mainjob.run_main_job`;
this module parses, calls it, and prints what each stage returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepbench.mainjob import DEFAULT_STUDY, GridListener, Listener

if TYPE_CHECKING:
    from sepbench.mainjob import ReportResult
    from sepbench.studies.grid import GridStudy, GridSummary
    from sepbench.sweep.constructive import ConstructiveCurve
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.summary import StudySummary


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


# ---------------------------------------------------------------------- printing
def _say(text: str) -> None:
    print(text, flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class _Printer(Listener):
    """Prints each stage of the main job as it ends."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def started(self, spec: StudySpec, folder: Path) -> None:
        from sepbench.sweep import plan_study

        models = ", ".join(label for _, label in spec.model_labels())
        tasks = ", ".join(label for _, label in spec.task_labels())
        _say(f"sepbench run: {spec.name} ({self.origin})")
        if spec.description:
            _say(f"  {spec.description}")
        _say(
            f"  tasks {tasks}; models {models}; N = {', '.join(map(str, spec.lengths))}; "
            f"{len(spec.seeds)} seed(s): {len(plan_study(spec))} searches, "
            f"trainer {spec.trainer}"
        )
        _say(f"  output: {folder}/")

    def swept(self, summary: StudySummary, seconds: float) -> None:
        _say(summary.table())
        _say(
            f"sweep: {summary.trials} trials ({summary.new_trials} new) in {_duration(seconds)}; "
            f"store {summary.store_path}"
        )

    def measured(self, curves: dict[str, list[ConstructiveCurve]] | None, seconds: float) -> None:
        if curves is None:
            _say("constructions: skipped (--no-constructions)")
            return
        for task, found in curves.items():
            if not found:
                _say(f"constructions: none registered for task {task}; skipped")
            for curve in found:
                shown = ", ".join(f"N={n}: {w}" for n, w in curve.points)
                what = "smallest verifying width" if curve.knob else "width where it verifies"
                _say(f"constructions: {curve.name} ({curve.result_id}) {what} {shown}")

    def reported(self, report: ReportResult, seconds: float) -> None:
        _say("verdicts (measured growth law of the minimal width; outcome against the theorems):")
        for v in report.verdicts:
            exponent = ""
            if v.alpha is not None:
                ci = v.alpha_ci
                exponent = f", α = {v.alpha:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            each = "; ".join(f"{rid} {outcome}" for rid, outcome in v.theorems)
            _say(
                f"  {v.task} / {v.model}: {v.law or 'no fit'}{exponent}; {v.outcome}"
                + (f" ({each})" if each else "")
            )


class _GridPrinter(GridListener):
    """Prints each stage of a grid job (a capacity study) as it ends."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def started(self, spec: GridStudy, folder: Path) -> None:
        from sepbench.studies.grid import plan_grid

        _say(f"sepbench run: {spec.name} ({self.origin}; a '{spec.kind}' study)")
        if spec.description:
            _say(f"  {spec.description}")
        models = ", ".join(f"{label} ({len(m.sizes)} sizes)" for m, label in spec.model_labels())
        _say(
            f"  models {models}; T_train = {', '.join(map(str, spec.train_lengths))}; "
            f"{len(spec.seeds)} seed(s): {len(plan_grid(spec))} trials"
        )
        _say(f"  output: {folder}/")

    def ran(self, summary: GridSummary, seconds: float) -> None:
        _say(
            f"trials: {summary.trials} stored ({summary.new_trials} new) in "
            f"{_duration(seconds)}; store {summary.store_path}"
        )

    def reported(self, path: Path, seconds: float) -> None:
        import json

        data = json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
        for model in data.get("models", []):
            for theta, points in model["capacity"].items():
                shown = ", ".join(
                    f"S={p['state_size']}: {p['t_recall'] or '—'}"
                    + ("+" if p["censored"] == "above" else "")
                    for p in points
                )
                _say(f"  {model['label']} T_recall({theta}): {shown}")
            forget = ", ".join(
                f"S={s}: {v or '> largest T_train'}" for s, v in model["t_forget"].items()
            )
            _say(f"  {model['label']} T_forget: {forget}")


def _pool(args: argparse.Namespace) -> dict[str, Any]:
    """Where and how the trials run: the options every study kind's job takes."""
    return {
        "executor": args.executor,
        "workers": args.workers,
        "threads": args.threads,
        "address": args.address,
        "device": args.device,
        "progress": not args.no_progress,
    }


def _run_grid(args: argparse.Namespace, spec: GridStudy, origin: str) -> int:
    from sepbench import mainjob

    result = mainjob.run_grid_job(spec, args.out, **_pool(args), listener=_GridPrinter(origin))
    t = result.seconds
    _say(
        f"report: {result.report}  (total {_duration(sum(t.values()))}: trials "
        f"{_duration(t['trials'])}, report {_duration(t['report'])})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sepbench import mainjob, studies
    from sepbench.sweep.spec import StudySpec

    if args.list:
        from sepbench.sweep.spec import builtin_studies, load_builtin

        for name in mainjob.shipped():
            listed = load_builtin(name) if name in builtin_studies() else studies.load_shipped(name)
            mark = " (default)" if name == DEFAULT_STUDY else ""
            _say(f"{name}{mark}: {listed.description}")
        return 0
    found, origin = mainjob.resolve_study(args.study, args.quick)
    if not isinstance(found, StudySpec):
        return _run_grid(args, found, origin)
    spec = found
    result = mainjob.run_main_job(
        spec,
        args.out,
        **_pool(args),
        constructions=not args.no_constructions,
        listener=_Printer(origin),
    )
    t = result.seconds
    _say(
        f"report: {result.report.path}  (total {_duration(sum(t.values()))}: "
        f"sweep {_duration(t['sweep'])}, constructions {_duration(t['constructions'])}, "
        f"report {_duration(t['report'])})"
    )
    return 0
