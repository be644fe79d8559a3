"""Study specs: what a width-scaling study measures, as TOML or as a Python object.

A study crosses tasks × models × lengths × seeds; for every cell it searches the smallest
hidden width at which training reaches the accuracy threshold (see :mod:`sepbench.sweep.search`).

.. code-block:: toml

    name = "lookup-vs-lstm"          # letters, digits, '.', '_' and '-' (it names the store file)
    seed = 0                         # study seed: every trial seed derives from it
    lengths = [8, 16, 32, 64]
    seeds = 3                        # independent searches per cell: 3 = replicates 0, 1, 2
    threshold = 0.95                 # accuracy the confirmation evaluation must reach
    trainer = "single"               # single | ensemble (seeds at one width train batched)
    restarts = 1                     # members per probe and learning rate (inner seeds)
    rule = "best_of"                 # best_of | median: when a probe's members succeed

    [[tasks]]
    name = "index_lookup"
    params = { alphabet = 4 }

    [[models]]
    family = "lstm"
    options = { layers = 1 }
    width = { max = 256 }            # optional per-model override of [width]

    [budget]
    steps = 2000                     # training steps at the reference length
    batch_size = 64
    lr = 3e-3                        # or a grid: [1e-2, 3e-3, 1e-3] (one member per rate)
    scale = "linear"                 # constant | linear | sqrt | log (see Budget)
    mixture = { fraction = 0.1 }     # optional: train on lengths [ceil(0.1 N), N], test at N
    options = { warmup = 100 }       # any other field of sepbench.training.Budget

    [width]
    min = 1
    max = 512
    resolution = 1                   # search the multiples of this step
    reprobes = 1                     # extra attempts at a width caught breaking monotonicity
    per_octave = 0                   # n > 0: geometric grid, n widths per doubling
    start = "min"                    # min | previous (start at the shorter length's answer)

    [executor]                       # how to run; not part of the study's identity
    kind = "local"                   # local | ray | inline
    workers = 0                      # 0 = one per core

Every table is validated strictly: an unknown key or a value of the wrong type is a
:class:`~sepbench.errors.UserError` whose one line names the key by its path, e.g.
``models[1].family``. Task names, task parameters and every (task, length) pair are checked
against :mod:`sepbench.tasks` when the spec is built.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from sepbench.errors import UserError
from sepbench.sweep.laws import LAWS
from sepbench.sweep.trial import TrialBudget, digest

Scalar = Annotated[int | float | bool | str, PlainValidator(lambda v: _scalar(v))]
"""A task parameter / model option / budget option: a number, a string or a boolean."""

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _scalar(value: Any) -> int | float | bool | str:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        return value
    raise ValueError(f"must be a number, a string or a boolean, got {value!r}")


class SpecError(UserError):
    """A spec problem at ``loc`` (a path below the model that raised it)."""

    def __init__(self, loc: tuple[int | str, ...], detail: str, more: int) -> None:
        self.loc, self.detail, self.more = loc, detail, more
        where = format_loc(loc)
        super().__init__((f"{where}: {detail}" if where else detail) + _more(more))


class _Strict(BaseModel):
    """Strict, frozen, no unknown keys; constructing one with bad data raises UserError.

    (Pydantic also calls this ``__init__`` for nested tables; the outer error message then
    joins the nested path to its own, see :func:`format_validation_error`.)
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SpecError(*_first_error(exc, type(self))) from None


class TaskSpec(_Strict):
    """One task of the study: a registered name and its parameters (validated by tasks.make)."""

    name: str
    params: dict[str, Scalar] = Field(default_factory=dict)
    label: str | None = None
    """Display name in tables; default: the name, plus the parameters when a study lists the
    same task twice."""

    @model_validator(mode="after")
    def _known_task(self) -> TaskSpec:
        from sepbench import tasks

        tasks.make(self.name, **self.params)  # UserError (a ValueError) names the problem
        return self


class WidthSearch(_Strict):
    """The width range searched: the multiples of ``resolution`` in ``[min, max]``."""

    min: int = Field(default=1, ge=1)
    max: int = Field(ge=1)
    resolution: int = Field(default=1, ge=1)
    reprobes: int = Field(default=1, ge=0)
    """Extra attempts (fresh derived seeds) at a width whose outcome contradicts monotonicity."""
    per_octave: int = Field(default=0, ge=0, le=64)
    """0: search every multiple of ``resolution``; n > 0: a geometric grid of n widths per
    doubling (constant relative resolution, see :class:`sepbench.sweep.search.Grid`)."""
    start: Literal["min", "previous"] = "min"
    """Where a search's doubling starts: the smallest width, or (``previous``) the largest
    answer over the seeds at the next shorter length of the same task and model — the search
    then waits for those searches to finish."""

    @model_validator(mode="after")
    def _non_empty(self) -> WidthSearch:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        if -(-self.min // self.resolution) * self.resolution > self.max:
            raise ValueError(
                f"no multiple of resolution {self.resolution} lies in [{self.min}, {self.max}]"
            )
        return self


class ModelSpec(_Strict):
    """One model family with fixed options; its width is what the search varies."""

    family: str
    options: dict[str, Scalar] = Field(default_factory=dict)
    width: WidthSearch | None = None
    """Overrides the study's ``[width]`` for this model (e.g. a multiple of the head count)."""
    label: str | None = None

    @field_validator("options")
    @classmethod
    def _no_width_option(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "width" in value:
            raise ValueError("'width' is what the search varies; set [width] instead")
        return value


class Mixture(_Strict):
    """Training lengths drawn from a range ending at N (B24, DE23): each training batch has one
    length, uniform over the task's valid lengths in ``[shortest(N), N]``; evaluation and
    confirmation stay at exactly N. Give ``fraction`` (shortest = ⌈fraction·N⌉; an empty table
    means B24's ``fraction = 0.1``) or ``min`` (a fixed shortest length, at most every N)."""

    fraction: float | None = Field(default=None, gt=0, le=1)
    min: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_fraction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("fraction") is None and data.get("min") is None:
            return {**data, "fraction": 0.1}
        return data

    @model_validator(mode="after")
    def _one_of(self) -> Mixture:
        if self.fraction is not None and self.min is not None:
            raise ValueError("give fraction or min, not both")
        return self

    def shortest(self, length: int) -> int:
        """The shortest training length at N = ``length``."""
        if self.min is not None:
            return self.min
        assert self.fraction is not None
        return max(1, math.ceil(self.fraction * length - 1e-9))


def _learning_rates(value: Any) -> Any:
    """A number > 0, or a non-empty list of distinct numbers > 0 (one member per rate); a list
    of one is that number (so ``lr = [x]`` and ``lr = x`` are the same study)."""
    rule = "must be a number > 0 or a non-empty list of them"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"an empty list: {rule} (one member per learning rate)")
    out = []
    for item in items:
        if (
            isinstance(item, bool)
            or not isinstance(item, int | float)
            or not math.isfinite(item)
            or item <= 0
        ):
            raise ValueError(f"{rule}, got {item!r}")
        if float(item) in out:
            raise ValueError(f"{item!r} appears twice")
        out.append(float(item))
    return out if len(out) > 1 else out[0]


class Budget(_Strict):
    """The training budget of one trial, and the rule by which it grows with the length N.

    Steps at length N: ``ceil(steps * f(N) / f(N_ref))``, capped at ``steps_cap``, with
    ``f = 1`` (constant), ``N`` (linear), ``sqrt(N)`` (sqrt) or ``log2(max(N, 2))`` (log) and
    ``N_ref = reference_length`` (default: the study's smallest length). Batch size and learning
    rate do not scale. ``lr`` may be a list (a grid: every probe trains one member per rate
    and restart). ``mixture`` draws training lengths from a range ending at N
    (:class:`Mixture`). ``options`` are passed to :class:`sepbench.training.Budget` unchanged.
    """

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: Annotated[float | list[float], PlainValidator(_learning_rates)]
    scale: Literal["constant", "linear", "sqrt", "log"] = "constant"
    reference_length: int | None = Field(default=None, ge=1)
    steps_cap: int | None = Field(default=None, ge=1)
    mixture: Mixture | None = None
    options: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _not_duplicated(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("max_steps", "batch_size", "lr"):
            if key in value:
                raise ValueError(f"'{key}' is set by the budget itself, not by budget.options")
        for key in ("min_length", "max_length", "eval_lengths"):
            if key in value:
                raise ValueError(
                    f"'{key}' is not a study option: set budget.mixture (training lengths "
                    "[shortest, N]; studies evaluate at N)"
                )
        return value

    @property
    def lrs(self) -> list[float]:
        """The learning rates, as a list (one for a single rate)."""
        return list(self.lr) if isinstance(self.lr, list) else [float(self.lr)]

    def steps_at(self, length: int, reference: int) -> int:
        """The training steps of one trial at length ``length`` (see the class docstring;
        ``f`` is :data:`sepbench.sweep.laws.LAWS` ``[scale]``)."""
        ref = self.reference_length or reference
        f = LAWS[self.scale]
        steps = math.ceil(self.steps * f(length) / f(ref) - 1e-9)
        steps = max(1, steps)
        return min(steps, self.steps_cap) if self.steps_cap else steps

    def at(self, length: int, reference: int) -> TrialBudget:
        """The budget of every trial at length ``length`` (``reference``: the study's
        smallest length), in the form trial keys hash."""
        rates = self.lrs
        return TrialBudget(
            steps=self.steps_at(length, reference),
            batch_size=self.batch_size,
            lr=rates[0] if len(rates) == 1 else tuple(rates),
            options=dict(sorted(self.options.items())),
            min_length=self.mixture.shortest(length) if self.mixture else 0,
        )


class ExecutorSpec(_Strict):
    """Where trials run. Not part of a study's identity: a study may resume on another."""

    kind: Literal["local", "ray", "inline"] = "local"
    workers: int = Field(default=0, ge=0)
    """Concurrent trials; 0 = one per core (local) or the cluster's CPUs (ray)."""
    threads_per_worker: int = Field(default=1, ge=1)
    device: str | None = None
    """Torch device of the training probe (``cpu``, ``cuda``, ``cuda:1``); none = CPU."""
    address: str | None = None
    """Ray cluster address (``ray://host:10001`` or ``auto``); none = a local Ray instance."""


class StudySpec(_Strict):
    """A whole study. Build it from TOML with :func:`load_spec` or directly in Python."""

    name: str
    description: str = ""
    seed: int = Field(default=0, ge=0)
    tasks: list[TaskSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    lengths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    """Replicate ids; an integer n in the input means ``[0, 1, ..., n-1]``."""
    threshold: float = Field(gt=0, le=1)
    budget: Budget
    width: WidthSearch
    trainer: Literal["single", "ensemble"] = "single"
    """``single``: one ``training.fit`` per trial. ``ensemble``: the seeds of one (task, model,
    length) that probe the same width train together as one batched ensemble
    (``training.train`` on ``models.build_ensemble``; each member still gets its own data,
    initialisation, loss and stopping step) — faster for small models, whose steps are
    dispatch-bound."""
    kind: Literal["width"] = "width"
    """The study kind: ``width`` (this class: the minimal-width search). Other kinds (a grid of
    evaluations per trained model, e.g. ``capacity``) have their own spec classes in
    :mod:`sepbench.studies`; :func:`sepbench.studies.load_study` picks the class by this key."""
    restarts: int = Field(default=1, ge=1)
    """Members per probe and learning rate: restart 0 trains with the trial's seed, restart
    r ≥ 1 with ``derive_seed(trial seed, "restart", r)``. A probe trains K = restarts ×
    len(budget.lr) members as one batched ensemble."""
    rule: Literal["best_of", "median"] = "best_of"
    """When a probe's K members succeed (:mod:`sepbench.rules`): ``best_of`` when any passes
    confirmation, ``median`` when at least half do. The search decides by it; the report
    shows what the stored probes determine under the other rule too."""
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        return study_name(value)

    @field_validator("kind", mode="before")
    @classmethod
    def _width_kind(cls, value: Any) -> Any:
        if value != "width":
            raise ValueError(
                f"{value!r} is not a width search; a study of another kind is read by "
                "sepbench.studies.load_study (sepbench run --study FILE)"
            )
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"a count of seeds must be >= 1, got {value}")
            return list(range(value))
        return value

    @field_validator("lengths", "seeds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            dup = next(v for v in value if value.count(v) > 1)
            raise ValueError(f"{dup} appears twice")
        return value

    @model_validator(mode="after")
    def _cells(self) -> StudySpec:
        from sepbench import tasks

        for i, t in enumerate(self.tasks):
            task = tasks.make(t.name, **t.params)
            for j, n in enumerate(self.lengths):
                try:
                    task.check_length(n)
                except ValueError as exc:
                    raise ValueError(
                        f"lengths[{j}] = {n} does not suit tasks[{i}]: {exc}"
                    ) from None
        mixture = self.budget.mixture
        if mixture is not None and mixture.min is not None:
            for j, n in enumerate(self.lengths):
                if mixture.min > n:
                    raise ValueError(
                        f"budget.mixture.min: {mixture.min} is above lengths[{j}] = {n}; the "
                        "training lengths [min, N] must lie in 1..N"
                    )
        for what, labels in (
            ("tasks", [lbl for _, lbl in self.task_labels()]),
            ("models", [lbl for _, lbl in self.model_labels()]),
        ):
            if len(set(labels)) != len(labels):
                dup = next(v for v in labels if labels.count(v) > 1)
                raise ValueError(f"{what}: two entries are both labelled {dup!r}; set label")
        return self

    # ------------------------------------------------------------------ derived views
    def task_labels(self) -> list[tuple[TaskSpec, str]]:
        names = [t.name for t in self.tasks]
        return [(t, t.label or _auto_label(t.name, t.params, names)) for t in self.tasks]

    def model_labels(self) -> list[tuple[ModelSpec, str]]:
        names = [m.family for m in self.models]
        return [(m, m.label or _auto_label(m.family, m.options, names)) for m in self.models]

    @property
    def members(self) -> int:
        """K, the members every probe trains: restarts × learning rates."""
        return self.restarts * len(self.budget.lrs)

    def width_for(self, model: ModelSpec) -> WidthSearch:
        return model.width or self.width

    def identity(self) -> dict[str, Any]:
        """Everything that determines the results (not the executor, not the description).

        Keys added after the first stores were written are left out while they hold their
        defaults, so those stores keep their spec hash.
        """
        data = self.model_dump(mode="json", exclude={"executor", "description"})
        for key, default in _LATER_KEYS.items():
            if data.get(key) == default:
                del data[key]
        for key, default in _LATER_BUDGET_KEYS.items():
            if data["budget"].get(key) == default:
                del data["budget"][key]
        for width in [data["width"], *(m.get("width") for m in data["models"])]:
            for key, default in _LATER_WIDTH_KEYS.items():
                if isinstance(width, dict) and width.get(key) == default:
                    del width[key]
        return data

    def spec_hash(self) -> str:
        return digest(self.identity())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "study spec") -> StudySpec:
        """Validate plain data (parsed TOML or JSON); errors are one-line UserErrors."""
        return validated(cls, data, source)

    def to_toml(self) -> str:
        """The spec as TOML that :func:`load_spec` reads back to an equal spec."""
        return _to_toml(self.model_dump(mode="json", exclude_none=True))


def study_name(value: str) -> str:
    """A study's name, which names its store file: letters, digits, '.', '_', '-'."""
    if not value or not set(value) <= NAME_CHARS or value.startswith("."):
        raise ValueError(
            f"must be letters, digits, '.', '_' or '-' (it names the store file), got {value!r}"
        )
    return value


def validated(cls: type[_M], data: Any, source: str) -> _M:
    """``cls`` validated from plain data; any problem is one UserError line naming ``source``
    and the key's path."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a table of keys, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {format_validation_error(exc, cls)}") from None


_M = TypeVar("_M", bound=BaseModel)
_LATER_KEYS: dict[str, Any] = {
    "trainer": "single",
    "kind": "width",
    "restarts": 1,
    "rule": "best_of",
}
_LATER_BUDGET_KEYS: dict[str, Any] = {"mixture": None}
_LATER_WIDTH_KEYS: dict[str, Any] = {"per_octave": 0, "start": "min"}


def builtin_studies() -> list[str]:
    """Names of the studies shipped in ``sepbench/sweep/studies/``."""
    folder = importlib.resources.files("sepbench.sweep").joinpath("studies")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_builtin(name: str) -> StudySpec:
    """A shipped study by name (see :func:`builtin_studies`)."""
    if name not in builtin_studies():
        raise UserError(
            f"unknown built-in study '{name}'; built-in: {', '.join(builtin_studies())}"
        )
    resource = importlib.resources.files("sepbench.sweep").joinpath("studies", f"{name}.toml")
    with importlib.resources.as_file(resource) as path:
        return load_spec(path)


def _auto_label(name: str, params: dict[str, Any], all_names: list[str]) -> str:
    if all_names.count(name) <= 1 or not params:
        return name
    return name + "(" + ",".join(f"{k}={params[k]}" for k in sorted(params)) + ")"


def load_spec(path: str | os.PathLike[str]) -> StudySpec:
    """Read and validate a study spec from a TOML file."""
    return StudySpec.from_dict(read_toml(path), source=str(path))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed TOML of a study spec file (UserError: missing, unreadable, invalid TOML)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"study spec {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"study spec {str(p)!r} is a directory") from None
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a UTF-8 text file") from None
    except OSError as exc:
        raise UserError(f"cannot read study spec {str(p)!r}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p}: invalid TOML: {exc}") from None


# ---------------------------------------------------------------------- error messages
def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('models', 1, 'family')`` -> ``models[1].family``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model class found by following ``loc`` (field names, list indices)."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _more(more: int) -> str:
    return f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""


def _first_error(
    exc: ValidationError, root: type[BaseModel]
) -> tuple[tuple[int | str, ...], str, int]:
    """(path, message, number of further problems) of the first problem pydantic found."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    more = len(errors) - 1
    kind = err["type"]
    inner = err.get("ctx", {}).get("error")
    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else ""
        msg = f"unknown key '{loc[-1]}'" + (f" (allowed: {allowed})" if allowed else "")
        loc = loc[:-1]
    elif kind == "missing":
        msg = f"required key '{loc[-1]}' is missing"
        loc = loc[:-1]
    elif isinstance(inner, SpecError):  # raised by a nested table's own __init__
        loc, msg, more = loc + inner.loc, inner.detail, more + inner.more
    else:
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        if kind != "value_error" and "input" in err:
            msg += f", got {_short(err['input'])}"
    return loc, msg, more


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """One line for the first problem pydantic found (and how many more there are)."""
    loc, msg, more = _first_error(exc, root)
    where = format_loc(loc)
    return (f"{where}: {msg}" if where else msg) + _more(more)


# ---------------------------------------------------------------------- TOML writer
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a valid TOML basic string
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(key: str) -> str:
    return key if key and set(key) <= NAME_CHARS - {"."} else _toml_value(key)


def _to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables += [f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables.append(f"\n[[{key}]]")
                tables += [f"{_key(k)} = {_toml_value(v)}" for k, v in item.items()]
        else:
            lines.append(f"{_key(key)} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"
