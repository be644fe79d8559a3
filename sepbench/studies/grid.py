"""Grid studies: train each model once, evaluate it on a grid of points, store every point.

A *grid study* is a study kind beside the width search (:mod:`sepbench.sweep`): there is no
search; its trials are enumerated up front. One trial is one cell

    (model entry, size, training length T_train, seed replicate)

— train the model once at T_train, then evaluate it on the kind's grid of points (context
lengths × depths × inference options for ``capacity``; test lengths × iteration counts for a
length-generalisation kind) and return one plain record per point. The kind supplies three
things: a spec class (a subclass of :class:`GridStudy` adding its ``[evaluation]`` table and
:meth:`GridStudy.evaluation_plan`), a probe (``probe(trial) -> ProbeOutcome`` whose
``details["points"]`` is the list of point records) and its report. Everything else is the
sweep's machinery, reused as is:

* **trials and keys** — :class:`GridConfig` is a :class:`~sepbench.sweep.trial.SearchConfig`
  with the kind and its evaluation plan added to its identity, so a trial's key (sha256 of its
  full configuration) names what was trained *and* what it was evaluated on. The training seed
  is derived from the training part alone (:meth:`GridConfig.seed`): the same model is trained
  whatever the evaluation grid, and — as in the width search — sizes that differ only in their
  width share a seed (common random numbers);
* **the store** — :class:`~sepbench.sweep.store.Store`, one row per trial (its columns: task,
  model label, ``length`` = T_train, replicate, width, seed, ``reached`` = training reached the
  threshold, ``accuracy`` = in-distribution accuracy); the point records live in the row's
  outcome. The driver (:func:`run_grid`) alone writes it, one committed transaction per
  finished trial, so a study killed at any moment resumes without rerunning a stored trial;
* **executors** — inline, local process pool, Ray (:mod:`sepbench.sweep.executors`);
* **progress** — a tqdm bar over the trials.

:func:`point_rows` flattens a store into one row per point (trial columns + the record's keys)
and :func:`write_points_csv` writes them as CSV.

Spec format (the keys every grid kind shares; the kind adds ``[evaluation]``)::

    name = "state_capacity"
    kind = "capacity"
    seed = 0
    train_lengths = [32, 64]          # T_train: one trial per length …
    seeds = 2                         # … and per replicate
    threshold = 0.99                  # training stops at this confirmed accuracy

    [task]
    name = "passkey"
    params = { digits = 2 }

    [[models]]
    family = "ssm"
    options = { layers = 2 }
    sizes = [{ width = 4, state_dim = 1 }, { width = 16, state_dim = 4 }]

    [[models]]
    family = "lstm"
    sizes = [4, 8, 16]                # a bare number is a width

    [budget]                          # as in a width study (steps scale with T_train)
    steps = 1500
    batch_size = 32
    lr = 3e-3

    [executor]                        # not part of the identity
    kind = "local"
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from sepbench.errors import UserError
from sepbench.sweep.spec import (
    Budget,
    ExecutorSpec,
    Scalar,
    TaskSpec,
    _Strict,
    _to_toml,
    study_name,
    validated,
)
from sepbench.sweep.store import Store, TrialRecord
from sepbench.sweep.trial import ProbeOutcome, SearchConfig, TrialSpec, derive_seed, digest

if TYPE_CHECKING:
    from sepbench.sweep.executors import Completed, ProbeFn

POINTS_KEY = "points"
"""``outcome["details"][POINTS_KEY]``: a grid trial's list of point records (plain dicts)."""


# ---------------------------------------------------------------------------------- the spec
class GridModel(_Strict):
    """One model family with fixed options and the sizes the study trains it at.

    ``sizes``: each a table ``{ width = …, <option> = … }`` (e.g. an SSM's ``state_dim``) or a
    bare number (a width). Every size is validated against the family's card (a width or a
    state option of 0 is a one-line error naming the size)."""

    family: str
    options: dict[str, Scalar] = Field(default_factory=dict)
    sizes: list[dict[str, Scalar]] = Field(min_length=1)
    label: str | None = None

    @field_validator("sizes", mode="before")
    @classmethod
    def _bare_widths(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                {"width": v} if isinstance(v, int) and not isinstance(v, bool) else v for v in value
            ]
        return value

    @model_validator(mode="after")
    def _valid_sizes(self) -> GridModel:
        from sepbench.models.cards import CARDS

        card = CARDS.get(self.family)
        if card is None:
            raise ValueError(f"unknown model family '{self.family}'; known: {', '.join(CARDS)}")
        if "width" in self.options:
            raise ValueError("'width' is set per size (sizes = [...]), not in options")
        seen = []
        for i, size in enumerate(self.sizes):
            width = size.get("width")
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"sizes[{i}]: width must be an integer >= 1, got {width!r}")
            clash = sorted(set(size) & set(self.options))
            if clash:
                raise ValueError(f"sizes[{i}]: option '{clash[0]}' is also set in options")
            try:
                card.validate(width, self.size_options(size))
            except ValueError as exc:
                raise ValueError(f"sizes[{i}]: {exc}") from None
            key = json.dumps(size, sort_keys=True)
            if key in seen:
                raise ValueError(f"sizes[{i}]: {size} appears twice")
            seen.append(key)
        return self

    def size_options(self, size: dict[str, Any]) -> dict[str, Any]:
        """The model options of one size: the entry's options and the size's (no width)."""
        merged = {**self.options, **{k: v for k, v in size.items() if k != "width"}}
        return dict(sorted(merged.items()))

    def state_size(self, size: dict[str, Any]) -> int:
        """Numbers carried per row between steps at this size (the family card's rule; the
        trained model records the same number)."""
        from sepbench.models.cards import CARDS

        return CARDS[self.family].state_size(int(size["width"]), self.size_options(size), 1)


def _seed_list(value: Any) -> Any:
    """``seeds = n`` means replicates 0 … n−1 (as in a width study)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"a count of seeds must be >= 1, got {value}")
        return list(range(value))
    return value


def distinct(value: list[Any]) -> list[Any]:
    """``value`` unchanged, or a ValueError naming the first entry that appears twice."""
    for i, v in enumerate(value):
        if v in value[:i]:
            raise ValueError(f"{v} appears twice")
    return value


class GridStudy(_Strict):
    """The keys every grid study has (module docstring). A kind subclasses it, narrows
    ``kind`` to its name, adds its evaluation table and implements :meth:`evaluation_plan`."""

    KIND: ClassVar[str] = ""

    name: str
    description: str = ""
    kind: str
    seed: int = Field(default=0, ge=0)
    task: TaskSpec
    models: list[GridModel] = Field(min_length=1)
    train_lengths: list[int] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    threshold: float = Field(gt=0, le=1)
    """Training stops when the confirmed in-distribution sequence accuracy reaches it."""
    budget: Budget
    """Steps scale with T_train from the smallest training length (``budget.scale``)."""
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        return study_name(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _seed_list(value)

    @field_validator("seeds", "train_lengths")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return distinct(value)

    @model_validator(mode="after")
    def _cells(self) -> GridStudy:
        from sepbench import tasks

        if self.KIND and self.kind != self.KIND:
            raise ValueError(f"kind must be {self.KIND!r} for {type(self).__name__}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        task = tasks.make(self.task.name, **self.task.params)
        for j, n in enumerate(self.train_lengths):
            try:
                task.check_length(n)
            except ValueError as exc:
                raise ValueError(
                    f"train_lengths[{j}] = {n} does not suit the task: {exc}"
                ) from None
        labels = [label for _, label in self.model_labels()]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise ValueError(f"models: two entries are both labelled {label!r}; set label")
        return self

    # ------------------------------------------------------------------ the kind's part
    def evaluation_plan(self) -> dict[str, Any]:
        """The evaluation plan every trial of this study runs, as plain JSON-able data (part
        of each trial's key). The kind implements it."""
        raise NotImplementedError

    def quick(self) -> GridStudy:
        """A cut-down variant for a quick look, named ``<name>-quick`` (its own store): each
        model's smallest and largest size, the smallest training length, the first seed, half
        the training steps, and whatever the kind cuts (:meth:`_cut`)."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["name"] = self.name + "-quick"
        data["description"] = f"{self.description} (quick variant: cut down by --quick)"
        for m in data["models"]:
            m["sizes"] = m["sizes"][:1] + m["sizes"][1:][-1:]
        data["train_lengths"] = [min(self.train_lengths)]
        data["seeds"] = list(self.seeds)[:1]
        data["budget"]["steps"] = max(1, self.budget.steps // 2)
        self._cut(data)
        return type(self).from_dict(data, source=f"{self.name} --quick")

    def _cut(self, data: dict[str, Any]) -> None:
        """The kind's own cuts of :meth:`quick` (in place on the spec's data)."""

    # ------------------------------------------------------------------ derived views
    def model_labels(self) -> list[tuple[GridModel, str]]:
        names = [m.family for m in self.models]
        out = []
        for m in self.models:
            label = m.label or m.family
            if m.label is None and names.count(m.family) > 1 and m.options:
                label += "(" + ",".join(f"{k}={m.options[k]}" for k in sorted(m.options)) + ")"
            out.append((m, label))
        return out

    def identity(self) -> dict[str, Any]:
        """Everything that determines the results (not the executor, not the description)."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude={"executor", "description"})
        return data

    def spec_hash(self) -> str:
        return digest(self.identity())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "study spec") -> GridStudy:
        """Validate plain data (parsed TOML or JSON); errors are one-line UserErrors."""
        return validated(cls, data, source)

    def to_toml(self) -> str:
        """The spec as TOML that reads back to an equal spec."""
        return _to_toml(self.model_dump(mode="json", exclude_none=True))


# ---------------------------------------------------------------------------------- trials
@dataclass(frozen=True)
class GridConfig(SearchConfig):
    """A grid trial's configuration: a :class:`SearchConfig` (task, model options, T_train as
    ``length``, replicate, threshold, budget, study seed) plus the study kind and the
    evaluation plan, both part of the identity (hence of the trial key)."""

    kind: str = "grid"
    evaluation: dict[str, Any] = field(default_factory=dict)
    size_label: str = ""

    def training_identity(self) -> dict[str, Any]:
        """What determines the trained model (besides the width): the search configuration."""
        return super().identity()

    def identity(self) -> dict[str, Any]:
        return {**self.training_identity(), "kind": self.kind, "evaluation": self.evaluation}

    def seed(self, attempt: int) -> int:
        """The training seed: from the study seed and the *training* identity only, so the
        evaluation plan never changes which model is trained."""
        return derive_seed(self.study_seed, digest(self.training_identity()), attempt)

    def describe(self) -> str:
        return (
            f"{self.model_label or self.family} {self.size_label} "
            f"T_train={self.length} seed#{self.replicate}"
        )


@dataclass(frozen=True)
class GridTrial:
    """One planned trial: its place in the study, its size and its :class:`TrialSpec`."""

    index: int
    model: GridModel
    model_label: str
    size: dict[str, Any]
    state_size: int
    trial: TrialSpec

    @property
    def config(self) -> GridConfig:
        assert isinstance(self.trial.search, GridConfig)
        return self.trial.search


@dataclass(frozen=True)
class TrainingProbe:
    """What every grid probe that trains a model per trial shares (capacity, lengthgen): the
    torch device, the budget check at every training length and the trial's
    :class:`GridConfig`. Subclasses add ``__call__`` (train, then score the grid's points)."""

    device: str | None = None

    def validate(self, spec: GridStudy) -> None:
        """Budgets valid at every training length (the spec checked the rest)."""
        from sepbench.sweep.probes import check_budgets

        check_budgets(spec.budget, spec.train_lengths)

    def grid_config(self, trial: TrialSpec) -> GridConfig:
        """The trial's grid configuration (UserError for a trial of another kind)."""
        config = trial.search
        if not isinstance(config, GridConfig):
            raise UserError(f"{type(self).__name__} runs grid trials, got {type(config).__name__}")
        return config


def size_label(size: dict[str, Any], state: int) -> str:
    """``S=32 (width 8, state_dim 4)``: the state size and the size's settings."""
    parts = ", ".join(f"{k} {v}" for k, v in size.items())
    return f"S={state} ({parts})"


def plan_grid(spec: GridStudy) -> list[GridTrial]:
    """The study's trials in plan order: model entry, size, T_train, replicate."""
    from sepbench import tasks

    params = dict(sorted(tasks.make(spec.task.name, **spec.task.params).params.items()))
    reference = min(spec.train_lengths)
    evaluation = spec.evaluation_plan()
    out: list[GridTrial] = []
    for model, label in spec.model_labels():
        for size in model.sizes:
            state = model.state_size(size)
            for length in spec.train_lengths:
                for replicate in spec.seeds:
                    config = GridConfig(
                        task=spec.task.name,
                        task_params=params,
                        family=model.family,
                        model_options=model.size_options(size),
                        length=length,
                        replicate=replicate,
                        threshold=float(spec.threshold),
                        budget=spec.budget.at(length, reference),
                        study_seed=spec.seed,
                        task_label=spec.task.label or spec.task.name,
                        model_label=label,
                        kind=spec.kind,
                        evaluation=evaluation,
                        size_label=size_label(size, state),
                    )
                    trial = config.trial(int(size["width"]))
                    out.append(GridTrial(len(out), model, label, dict(size), state, trial))
    return out


# ---------------------------------------------------------------------------------- the driver
@dataclass(frozen=True)
class GridSummary:
    """What :func:`run_grid` did: trials planned, stored (all) and new, and its wall time."""

    study: str
    store_path: str
    planned: int
    trials: int
    new_trials: int
    wall_s: float

    @property
    def complete(self) -> bool:
        return self.trials >= self.planned


def grid_store_path(spec: GridStudy, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<out_dir>/<study name>.sqlite`` (default ``runs/``), as for a width study."""
    from sepbench.sweep import DEFAULT_OUT

    return Path(out_dir if out_dir is not None else DEFAULT_OUT) / f"{spec.name}.sqlite"


def run_grid(
    spec: GridStudy,
    probe: ProbeFn,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> GridSummary:
    """Run (or resume) a grid study: every planned trial not yet in the store is run by
    ``probe`` on the executor and committed as soon as it finishes (longest training lengths
    first, so the longest trials do not trail at the end). Trials already stored are never
    rerun. ``executor``, ``workers``, ``threads``, ``address`` override the spec's
    ``[executor]``; ``store`` (a file) overrides ``out_dir``."""
    from sepbench.sweep.runner import open_path, pool_factory

    validate = getattr(probe, "validate", None)
    if callable(validate):
        validate(spec)
    pool_of = pool_factory(spec.executor, probe, executor, workers, threads, address)
    path = open_path(store, grid_store_path(spec, out_dir))
    planned = plan_grid(spec)
    start = time.perf_counter()
    with Store.for_study(path, spec) as db:
        stored = db.keys()
        orphans = stored - {p.trial.key for p in planned}
        if orphans:
            raise UserError(
                f"{path}: {len(orphans)} stored trials do not match this study's trials as this "
                "sepbench resolves them; resume with the sepbench version that wrote the "
                "store, or use another --out directory"
            )
        pending = [p.trial for p in planned if p.trial.key not in stored]
        pending.sort(key=lambda t: -t.search.length)  # stable: plan order within a length
        before = len(stored)
        if pending:
            pool = pool_of()
            bar = _bar(spec.name, len(planned), before) if progress else None
            try:
                _drive(pool, pending, db, bar)
            except BaseException:
                pool.close(cancel=True)
                raise
            finally:
                if bar is not None:
                    bar.close()
            pool.close()
        total = db.count()
    return GridSummary(
        spec.name, str(path), len(planned), total, total - before, time.perf_counter() - start
    )


def _bar(name: str, total: int, done: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=done,
        unit="trial",
        desc=f"grid {name}",
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _drive(pool: Any, pending: list[TrialSpec], db: Store, bar: Any) -> None:
    """Keep the executor's slots full; commit each finished trial before anything else."""
    queue = list(reversed(pending))
    running = 0
    while queue or running:
        while queue and running < pool.slots:
            pool.submit(queue.pop())
            running += 1
        done: list[Completed] = pool.wait()
        running -= len(done)
        ok = [(c.trial, c.outcome) for c in done if c.outcome is not None]
        if ok:
            db.record_many(ok)
            if bar is not None:
                bar.update(len(ok))
        for c in done:
            if c.error is not None:
                if c.error.user_error:
                    raise UserError(f"{c.trial.describe()}: {c.error.message}")
                raise RuntimeError(
                    f"{c.trial.describe()} failed: {c.error.kind}: {c.error.message}\n"
                    f"--- probe traceback ---\n{c.error.traceback}"
                )


# ---------------------------------------------------------------------------------- points
TRIAL_POINT_COLUMNS = (
    "model",
    "family",
    "width",
    "size",
    "state_size",
    "parameters",
    "train_length",
    "replicate",
    "seed",
    "trained",
    "train_accuracy",
    "trial_key",
)
"""The trial columns in front of every point row (the record's own keys follow)."""


def trial_columns(record: TrialRecord) -> dict[str, Any]:
    """The :data:`TRIAL_POINT_COLUMNS` of one stored grid trial."""
    from sepbench.models.cards import ModelFacts

    details = record.outcome.get("details") or {}
    facts = ModelFacts.from_details(details)
    model = record.config.get("model", {})
    options = model.get("options", {}) if isinstance(model, dict) else {}
    return {
        "model": record.model,
        "family": model.get("family") if isinstance(model, dict) else None,
        "width": record.width,
        "size": json.dumps({"width": record.width, **options}, sort_keys=True),
        "state_size": facts.state_size if facts else None,
        "parameters": facts.parameters if facts else None,
        "train_length": record.length,
        "replicate": record.replicate,
        "seed": record.seed,
        "trained": record.reached,
        "train_accuracy": record.accuracy,
        "trial_key": record.key,
    }


def trial_points(record: TrialRecord) -> list[dict[str, Any]]:
    """The point records of one stored grid trial (empty if it has none)."""
    details = record.outcome.get("details") or {}
    points = details.get(POINTS_KEY) if isinstance(details, dict) else None
    return [p for p in points if isinstance(p, dict)] if isinstance(points, list) else []


def point_rows(store: Store) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(columns, rows): one row per stored point, its trial's columns first, then the union
    of the records' keys in first-seen order (a missing key is empty; lists and tables are
    written as JSON)."""
    keys: list[str] = []
    flat: list[dict[str, Any]] = []
    for record in store.records():
        head = trial_columns(record)
        for point in trial_points(record):
            for key in point:
                if key not in keys and key not in head:
                    keys.append(key)
            flat.append({**point, **head})
    columns = (*TRIAL_POINT_COLUMNS, *keys)
    rows = [tuple(_cell(row.get(c)) for c in columns) for row in flat]
    return columns, rows


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def write_points_csv(store: Store, path: str | os.PathLike[str] | None) -> int:
    """The points as CSV to ``path`` (atomically) or stdout; returns the number of rows."""
    from sepbench.sweep.export import write_rows

    columns, rows = point_rows(store)
    return write_rows(columns, rows, path)


def outcome_points(outcome: ProbeOutcome) -> list[dict[str, Any]]:
    """The point records a probe returned (for tests and probes' own checks)."""
    points = outcome.details.get(POINTS_KEY, [])
    return list(points) if isinstance(points, list) else []
