"""Width-scaling sweeps: study specs, the minimal-width search, executors, the results store.

>>> from sepbench import sweep
>>> spec = sweep.load_spec("study.toml")                       # doctest: +SKIP
>>> summary = sweep.run_study(spec, "runs", executor="local")  # doctest: +SKIP
>>> print(summary.table())                                     # doctest: +SKIP

The sweep touches training through one function, a *probe*:
``probe(trial: TrialSpec) -> ProbeOutcome`` (default :class:`TrainingProbe`; tests use
:class:`FakeProbe`).

Modules: ``spec`` (study specs), ``plan`` (spec -> searches), ``search`` (the minimal-width
state machine), ``trial`` (a search's configuration; a trial, its key and seed), ``laws``
(growth laws of budgets and fake probes), ``store`` (SQLite), ``executors`` (inline, local
pool, Ray), ``probes`` (training and fake probes), ``runner`` (``run_study``), ``summary``
(per-seed results, median/range rows), ``replay`` (stored probes under another success
rule or threshold), ``export`` (the flat tables as CSV / DataFrame).

Names are imported on first use, so a pool worker (which needs only ``trial``, ``executors``
and its probe) and ``sepbench --help`` do not pay for pydantic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sepbench import lazy

DEFAULT_OUT = Path("runs")
"""Default directory of study stores: ``runs/<study name>.sqlite``."""

TABLES = ("trials", "searches", "widths")
"""The flat tables a store exports (CSV / DataFrame)."""

_EXPORTS = {
    "worker_threads": "executors",
    "SearchPlan": "plan",
    "plan_study": "plan",
    "FakeProbe": "probes",
    "TrainingProbe": "probes",
    "run_study": "runner",
    "store_path": "runner",
    "Done": "search",
    "Grid": "search",
    "Observation": "search",
    "Probe": "search",
    "next_probe": "search",
    "find_min_width": "search",
    "Budget": "spec",
    "ExecutorSpec": "spec",
    "ModelSpec": "spec",
    "StudySpec": "spec",
    "TaskSpec": "spec",
    "WidthSearch": "spec",
    "load_spec": "spec",
    "to_dataframe": "export",
    "write_csv": "export",
    "Store": "store",
    "TrialRecord": "store",
    "SearchResult": "summary",
    "StudySummary": "summary",
    "WidthRow": "summary",
    "summarize": "summary",
    "ProbeOutcome": "trial",
    "SearchConfig": "trial",
    "TrialBudget": "trial",
    "TrialSpec": "trial",
    "derive_seed": "trial",
}
_MODULES = frozenset(_EXPORTS.values())

if TYPE_CHECKING:
    from sepbench.sweep.executors import worker_threads
    from sepbench.sweep.export import to_dataframe, write_csv
    from sepbench.sweep.plan import SearchPlan, plan_study
    from sepbench.sweep.probes import FakeProbe, TrainingProbe
    from sepbench.sweep.runner import run_study, store_path
    from sepbench.sweep.search import Done, Grid, Observation, Probe, find_min_width, next_probe
    from sepbench.sweep.spec import (
        Budget,
        ExecutorSpec,
        ModelSpec,
        StudySpec,
        TaskSpec,
        WidthSearch,
        load_spec,
    )
    from sepbench.sweep.store import Store, TrialRecord
    from sepbench.sweep.summary import SearchResult, StudySummary, WidthRow, summarize
    from sepbench.sweep.trial import (
        ProbeOutcome,
        SearchConfig,
        TrialBudget,
        TrialSpec,
        derive_seed,
    )

__all__ = [
    "DEFAULT_OUT",
    "TABLES",
    "Budget",
    "Done",
    "ExecutorSpec",
    "FakeProbe",
    "Grid",
    "ModelSpec",
    "Observation",
    "Probe",
    "ProbeOutcome",
    "SearchConfig",
    "SearchPlan",
    "SearchResult",
    "Store",
    "StudySpec",
    "StudySummary",
    "TaskSpec",
    "TrainingProbe",
    "TrialBudget",
    "TrialRecord",
    "TrialSpec",
    "WidthRow",
    "WidthSearch",
    "derive_seed",
    "find_min_width",
    "load_spec",
    "next_probe",
    "plan_study",
    "run_study",
    "store_path",
    "summarize",
    "to_dataframe",
    "worker_threads",
    "write_csv",
]


__getattr__, __dir__ = lazy.attributes(__name__, _EXPORTS, _MODULES, __all__)
