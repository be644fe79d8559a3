"""Width-scaling sweeps: study specs, the minimal-width search, executors, the results store.

>>> from sepbench import sweep
>>> spec = sweep.load_spec("study.toml")                       # doctest: +SKIP
>>> summary = sweep.run_study(spec, "runs", executor="local")  # doctest: +SKIP
>>> print(summary.table())                                     # doctest: +SKIP

The sweep touches training through one function, a *probe*:
``probe(trial: TrialSpec) -> ProbeOutcome`` (default :class:`TrainingProbe`; tests use
:class:`FakeProbe`). See ``docs/sweeps.md`` for the TOML format and the search rule.
"""

from sepbench.sweep.executors import worker_threads
from sepbench.sweep.plan import SearchPlan, plan_study
from sepbench.sweep.probes import FakeProbe, TrainingProbe
from sepbench.sweep.runner import run_study, store_path
from sepbench.sweep.search import Done, Grid, Observation, Probe, next_probe
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
from sepbench.sweep.trial import ProbeOutcome, TrialBudget, TrialSpec, derive_seed

__all__ = [
    "Budget",
    "Done",
    "ExecutorSpec",
    "FakeProbe",
    "Grid",
    "ModelSpec",
    "Observation",
    "Probe",
    "ProbeOutcome",
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
    "load_spec",
    "next_probe",
    "plan_study",
    "run_study",
    "store_path",
    "summarize",
    "worker_threads",
]
