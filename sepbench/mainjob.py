"""The main job (``sepbench run``): a shipped width-scaling study, end to end.

:func:`run_main_job` runs the study's sweep (:func:`sepbench.sweep.run_study`), measures the
constructions' widths at the study's lengths (:func:`sepbench.sweep.constructive.measure_study`,
cached in ``constructions.json``) and writes the report (:func:`sepbench.report.write_report`),
all into ``<out>/<study>/``: the store ``<study>.sqlite``, ``constructions.json`` and
``<study>-report/`` (where ``sepbench report <out>/<study>`` writes it too). Killed at any
point, it resumes where it stopped when run again. It returns everything it found as data (the
summary, the constructive curves, the report's verdicts); a :class:`Listener` hears each stage
as it ends (the CLI prints there).

A grid study (``kind = "capacity"``, :mod:`sepbench.studies`) runs through
:func:`run_grid_job` instead: its trials (:func:`sepbench.studies.grid.run_grid`, the same store,
executors and progress bar) and its kind's report, into the same ``<out>/<study>/`` layout.

It sits above ``sweep``, ``studies`` and ``report`` (it uses them); only the CLI uses it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sepbench.errors import UserError

if TYPE_CHECKING:
    from sepbench.studies.grid import GridStudy, GridSummary
    from sepbench.sweep.constructive import ConstructiveCurve
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.summary import StudySummary

DEFAULT_STUDY = "index_lookup"
QUICK_SUFFIX = "-quick"


# ---------------------------------------------------------------------- studies
def shipped() -> list[str]:
    """The shipped studies that ``--study`` accepts (their quick variants not listed): the
    width studies, then the grid studies."""
    from sepbench import studies
    from sepbench.sweep.spec import builtin_studies

    width = [n for n in builtin_studies() if not n.endswith(QUICK_SUFFIX)]
    return width + [n for n in studies.shipped() if not n.endswith(QUICK_SUFFIX)]


def quick_variant(spec: StudySpec) -> StudySpec:
    """A study cut down for a quick look: its three shortest lengths, at most two seeds,
    half the training steps, named ``<name>-quick`` (so it has a store of its own)."""
    from sepbench.sweep.spec import StudySpec

    data = spec.model_dump(mode="json", exclude_none=True)
    data["name"] = spec.name + QUICK_SUFFIX
    data["lengths"] = sorted(spec.lengths)[:3]
    data["seeds"] = list(spec.seeds)[:2]
    data["budget"]["steps"] = max(1, spec.budget.steps // 2)
    data["description"] = f"{spec.description} (quick variant: cut down by sepbench run --quick)"
    return StudySpec.from_dict(data, source=f"{spec.name} --quick")


def resolve_study(name: str, quick: bool) -> tuple[StudySpec | GridStudy, str]:
    """(spec, where it came from) for ``--study NAME [--quick]``: a shipped study (its shipped
    ``NAME-quick`` variant when there is one, else :func:`quick_variant` or a grid study's
    ``quick()``) or a TOML file of any kind."""
    from sepbench import studies
    from sepbench.sweep.spec import StudySpec, builtin_studies, load_builtin

    names = builtin_studies()
    grids = studies.shipped()
    spec: StudySpec | GridStudy
    if name in names:
        if quick and name + QUICK_SUFFIX in names:
            return load_builtin(name + QUICK_SUFFIX), f"shipped study {name}{QUICK_SUFFIX}"
        spec = load_builtin(name)
        origin = f"shipped study {name}"
    elif name in grids:
        if quick and name + QUICK_SUFFIX in grids:
            return studies.load_shipped(name + QUICK_SUFFIX), f"shipped study {name}{QUICK_SUFFIX}"
        spec = studies.load_shipped(name)
        origin = f"shipped study {name}"
    elif name.endswith(".toml") and Path(name).is_file():
        spec = studies.load_study(name)
        origin = f"study file {name}"
    else:
        raise UserError(
            f"unknown study '{name}'; shipped studies: {', '.join(shipped())} "
            "(or give a study TOML file)"
        )
    if quick:
        cut = quick_variant(spec) if isinstance(spec, StudySpec) else spec.quick()
        return cut, f"{origin}, cut down (--quick)"
    return spec, origin


# ---------------------------------------------------------------------- what it finds
@dataclass(frozen=True)
class PairVerdict:
    """One (task, model) curve of the report: its fitted law and the verdict."""

    task: str
    model: str
    law: str | None
    """The best growth law's formula (None: too few points to fit)."""
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    outcome: str
    """The pair's combined outcome (:func:`sepbench.report.verdicts.combine`)."""
    theorems: tuple[tuple[str, str], ...] = ()
    """(result id, outcome) of every theorem set beside the curve."""


@dataclass(frozen=True)
class ReportResult:
    path: Path
    """The report's ``report.md``."""
    verdicts: list[PairVerdict]


@dataclass
class MainJobResult:
    spec: StudySpec
    folder: Path
    summary: StudySummary
    constructions: dict[str, list[ConstructiveCurve]] | None
    """``{task label: curves}`` (an empty list: no construction for the task); None when
    skipped."""
    report: ReportResult
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage: ``sweep``, ``constructions``, ``report``."""


class Listener:
    """Hears each stage of the main job as it ends (the defaults do nothing)."""

    def started(self, spec: StudySpec, folder: Path) -> None:
        """The options are valid; the sweep starts (writing into ``folder``)."""

    def swept(self, summary: StudySummary, seconds: float) -> None:
        """The sweep is done (or was already: nothing new to train)."""

    def measured(self, curves: dict[str, list[ConstructiveCurve]] | None, seconds: float) -> None:
        """The constructive widths are known (None: skipped)."""

    def reported(self, report: ReportResult, seconds: float) -> None:
        """The report is written."""


# ---------------------------------------------------------------------- the job
def _check_counts(workers: int | None, threads: int | None) -> None:
    if workers is not None and workers < 0:
        raise UserError(f"--workers must be >= 0 (0 = one per core), got {workers}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")


def run_main_job(
    spec: StudySpec,
    out_dir: str | os.PathLike[str],
    *,
    executor: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    device: str | None = None,
    progress: bool = True,
    constructions: bool = True,
    listener: Listener | None = None,
) -> MainJobResult:
    """Sweep, constructive widths and report of ``spec`` in ``out_dir/<study name>/``.

    ``executor``, ``workers``, ``threads``, ``address``, ``device``: as for
    :func:`sepbench.sweep.run_study`. ``constructions=False`` skips the constructive widths
    (the report then has no construction curve). ``progress``: progress bars on stderr.
    """
    from sepbench import sweep
    from sepbench.sweep.constructive import measure_study, report_curves

    _check_counts(workers, threads)
    hear = listener or Listener()
    folder = Path(out_dir) / spec.name
    seconds: dict[str, float] = {}
    hear.started(spec, folder)

    start = time.perf_counter()
    summary = sweep.run_study(
        spec,
        folder,
        executor=executor,
        workers=workers,
        threads=threads,
        address=address,
        device=device,
        progress=progress,
    )
    seconds["sweep"] = time.perf_counter() - start
    hear.swept(summary, seconds["sweep"])

    start = time.perf_counter()
    curves = measure_study(spec, folder, progress=progress) if constructions else None
    seconds["constructions"] = time.perf_counter() - start
    hear.measured(curves, seconds["constructions"])

    start = time.perf_counter()
    drawn = report_curves(c for found in (curves or {}).values() for c in found)
    report = write_report(Path(summary.store_path), drawn)
    seconds["report"] = time.perf_counter() - start
    hear.reported(report, seconds["report"])
    return MainJobResult(spec, folder, summary, curves, report, seconds)


def write_report(store_path: Path, curves: dict[str, dict[str, object]]) -> ReportResult:
    """The study's report in ``<store directory>/<store name>-report`` (the directory
    ``sepbench report`` writes too), and its verdicts as data."""
    from sepbench import report
    from sepbench.sweep.store import Store

    out = store_path.parent / f"{store_path.stem}-report"
    with Store.open(store_path) as store:
        data = report.collect(store, curves or None)
    path = report.write_data(data, out)
    verdicts = []
    for pair in data.pairs:
        fit = pair.fit
        verdicts.append(
            PairVerdict(
                task=pair.task.label,
                model=pair.model.label,
                law=fit.laws[fit.best].formula() if fit else None,
                alpha=fit.alpha if fit else None,
                alpha_ci=fit.alpha_ci if fit else None,
                outcome=pair.outcome,
                theorems=tuple((v.result_id, v.outcome) for v in pair.verdicts),
            )
        )
    return ReportResult(path, verdicts)


# ---------------------------------------------------------------------- grid studies
@dataclass
class GridJobResult:
    spec: GridStudy
    folder: Path
    summary: GridSummary
    report: Path
    """The report's ``report.md``."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage: ``trials``, ``report``."""


class GridListener:
    """Hears each stage of a grid job as it ends (the defaults do nothing)."""

    def started(self, spec: GridStudy, folder: Path) -> None:
        """The options are valid; the trials start (writing into ``folder``)."""

    def ran(self, summary: GridSummary, seconds: float) -> None:
        """Every trial is stored (or was already)."""

    def reported(self, path: Path, seconds: float) -> None:
        """The report is written (``path``: its report.md)."""


def run_grid_job(
    spec: GridStudy,
    out_dir: str | os.PathLike[str],
    *,
    executor: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    device: str | None = None,
    progress: bool = True,
    listener: GridListener | None = None,
) -> GridJobResult:
    """A grid study's trials and report in ``out_dir/<study name>/``: the store
    ``<study>.sqlite`` and ``<study>-report/`` (report.md, report.json, points.csv, figures).
    Killed at any point, it resumes where it stopped when run again."""
    from sepbench import studies
    from sepbench.report.grids import write_grid_report
    from sepbench.studies.grid import run_grid

    _check_counts(workers, threads)
    hear = listener or GridListener()
    folder = Path(out_dir) / spec.name
    hear.started(spec, folder)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    probe = studies.default_probe(spec, device or spec.executor.device)
    summary = run_grid(
        spec,
        probe,
        folder,
        executor=executor,
        workers=workers,
        threads=threads,
        address=address,
        progress=progress,
    )
    seconds["trials"] = time.perf_counter() - start
    hear.ran(summary, seconds["trials"])
    start = time.perf_counter()
    store = Path(summary.store_path)
    path = write_grid_report(store, store.parent / f"{store.stem}-report")
    seconds["report"] = time.perf_counter() - start
    hear.reported(path, seconds["report"])
    return GridJobResult(spec, folder, summary, path, seconds)
