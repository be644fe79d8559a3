"""What a report shows, computed from a results store: curves, fits, bounds, verdicts.

Everything here is plain data (no matplotlib): :func:`collect` turns a store (or a study
summary) into a :class:`ReportData`, which :mod:`~sepbench.report.plots` draws and
:mod:`~sepbench.report.markdown` writes out.

Conventions (stated in every report):

* **Model classes.** A model family is set beside the theorems of its class:
  ``transformer`` with ``layers = 1`` → ``transformer-1``, ``layers ≥ 2`` → ``transformer-2``
  (the two-layer constructions are upper bounds for deeper models too; the one-layer lower
  bounds are not claimed for them); ``elman``, ``lstm``, ``gru``, ``ssm`` → ``rnn``; ``hybrid``
  → ``hybrid``; ``rag`` → ``rnn+retrieval``. On a task whose trace is a chain of thought
  (``is_tree`` with ``trace = "cot"``) a Transformer is ``transformer+cot`` and an RNN
  ``rnn+cot``. A family the testbed does not know has no class and no theorem.
* **Width vs state.** The search varies the model's ``width`` (hidden units; the Transformer's
  d_model). RNN theorems bound m, the *numbers in the state*: ``state = s·width`` with
  s = layers for Elman/GRU, 2·layers for an LSTM (h and c), layers·state_dim for an SSM
  (:func:`state_per_width`). Plots stay in the searched width: a lower bound on m is drawn as
  m / s. Verdicts on RNN classes are computed on the state (width × s), as
  :func:`sepbench.theory.verdict` expects. Upper bounds (constructions) are already widths.
* **Precision.** Lower bounds on state *bits* become widths with p bits per number, default
  :data:`DEFAULT_PRECISION_BITS` = 32: a float32 has 2^32 bit patterns, and the bounds count
  distinguishable states, so all 32 bits count (24 mantissa bits would undercount sign and
  exponent and make every bound look stronger than it is). The same p evaluates upper bounds
  (it matters only for W24-RAG) and is the default of :func:`sepbench.theory.verdict`.
* **Censored widths.** A seed whose search found no width up to the maximum is drawn at the
  maximum with a distinct marker and counted; it is left out of the growth fit (the fit then
  underestimates growth, so a "consistent" form verdict on such a curve becomes "undecided").
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sepbench import theory
from sepbench.errors import UserError
from sepbench.sweep.summary import SearchResult, StudySummary, WidthRow, summarize

if TYPE_CHECKING:
    from sepbench.sweep.spec import StudySpec
    from sepbench.sweep.store import Store, TrialRecord

DEFAULT_PRECISION_BITS = 32
"""Bits per number used to turn state-bit lower bounds into widths (float32)."""

LENGTH_EVAL_KEY = "length_eval"
"""Length-generalisation hook: a trial whose stored outcome has
``outcome["details"]["length_eval"]`` — the list :func:`sepbench.training.evaluate_lengths`
returns (records with ``length`` and ``sequence_accuracy``) — is plotted as accuracy against
evaluation length."""

RNN_FAMILIES = ("elman", "lstm", "gru", "ssm")
RNN_CLASSES = ("rnn", "rnn+cot", "rnn+retrieval")
OUTCOME_ORDER = ("inconsistent", "undecided", "consistent")
NO_THEOREM = "n/a"

# Defaults of the model options that change the state size (sepbench.models.describe; a test
# keeps them in step without importing torch here).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "elman": {"layers": 1},
    "lstm": {"layers": 1},
    "gru": {"layers": 1},
    "rag": {"layers": 1, "cell": "lstm"},
    "ssm": {"layers": 1, "state_dim": 16},
    "transformer": {"layers": 1, "heads": 1},
    "hybrid": {"heads": 1},
}


# --------------------------------------------------------------------------------------------
# model and task descriptions
# --------------------------------------------------------------------------------------------
def model_class(
    family: str | None,
    options: Mapping[str, Any],
    task: str | None = None,
    task_params: Mapping[str, Any] | None = None,
) -> str | None:
    """The theory model class of a model family (see the module docstring), or None."""
    if family is None:
        return None
    opts = {**MODEL_DEFAULTS.get(family, {}), **options}
    if family == "transformer":
        base = "transformer-1" if int(opts["layers"]) == 1 else "transformer-2"
    elif family in RNN_FAMILIES:
        base = "rnn"
    elif family == "hybrid":
        base = "hybrid"
    elif family == "rag":
        base = "rnn+retrieval"
    else:
        return None
    if task == "is_tree" and (task_params or {}).get("trace") == "cot":
        if base.startswith("transformer"):
            return "transformer+cot"
        if base == "rnn":
            return "rnn+cot"
    return base


def state_per_width(family: str | None, options: Mapping[str, Any]) -> tuple[float, str]:
    """(s, text): numbers of recurrent state per unit of width, and the rule in words.

    1 for non-recurrent families (their theorems bound the width itself).
    """
    if family is None:
        return 1.0, ""
    opts = {**MODEL_DEFAULTS.get(family, {}), **options}
    layers = int(opts.get("layers", 1))
    per_layer = f" × {layers} layers" if layers != 1 else ""
    if family == "lstm" or (family == "rag" and opts.get("cell") == "lstm"):
        return 2.0 * layers, f"LSTM state = 2 × hidden (h and c){per_layer}"
    if family in ("elman", "gru", "rag"):
        name = {"elman": "Elman", "gru": "GRU"}.get(family, f"RAG ({opts.get('cell')})")
        return float(layers), f"{name} state = hidden{per_layer}"
    if family == "ssm":
        n = int(opts["state_dim"])
        return float(layers * n), f"SSM state = width × state_dim {n}{per_layer}"
    return 1.0, ""


@dataclass(frozen=True)
class ModelInfo:
    """A model of the study, as the report sees it."""

    label: str
    family: str | None
    options: dict[str, Any]
    color_index: int

    def opts(self) -> dict[str, Any]:
        return {**MODEL_DEFAULTS.get(self.family or "", {}), **self.options}


@dataclass(frozen=True)
class TaskInfo:
    """A task of the study: its label, registered name and full parameters (or None)."""

    label: str
    name: str | None
    params: dict[str, Any]


# --------------------------------------------------------------------------------------------
# constructions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConstructionCurve:
    """The smallest verifying width of a hand-built construction at each N."""

    name: str
    task: str
    result_id: str
    points: tuple[tuple[int, float], ...]
    classes: tuple[str, ...] = ()
    """Model classes, for a registered construction whose result is not in the catalogue
    (the induction head's ``IND``); empty: the catalogue record's classes."""

    @property
    def model_classes(self) -> tuple[str, ...]:
        return self.classes or theory.get(self.result_id).model_classes


def construction_curves(data: Any) -> list[ConstructionCurve]:
    """Normalise construction widths passed to the report.

    Accepted: a mapping ``{name: [(N, width), ...]}`` (the task and result are looked up in
    :func:`sepbench.constructions.registry`), ``{name: {"task", "result_id", "points"}}``, or
    any iterable of objects with ``name``, ``task``, ``result_id`` and ``points`` attributes
    (e.g. :class:`ConstructionCurve`). Bad data is a UserError naming the construction.
    """
    if data is None:
        return []
    out: list[ConstructionCurve] = []
    if isinstance(data, Mapping):
        items: Iterable[Any] = data.items()
    else:
        items = [(getattr(c, "name", None), c) for c in data]
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise UserError(f"constructions: every curve needs a name, got {name!r}")
        if isinstance(value, Mapping):
            task, rid, points = value.get("task"), value.get("result_id"), value.get("points")
        elif hasattr(value, "points"):
            task = getattr(value, "task", None)
            rid = getattr(value, "result_id", None)
            points = value.points
        else:
            task, rid, points = None, None, value
        if task is None or rid is None:
            task, rid = _registered(name)
        if not isinstance(task, str) or not isinstance(rid, str):
            raise UserError(f"construction '{name}': task and result_id must be names")
        classes = _uncatalogued_classes(name, rid)
        out.append(ConstructionCurve(name, task, rid, _points(name, points), classes))
    return out


def _uncatalogued_classes(name: str, rid: str) -> tuple[str, ...]:
    """() when ``rid`` is a catalogue result; else the model class of the registered
    construction ``name`` (e.g. the induction head, ``IND``, a two-layer Transformer), so the
    report draws it without a theorem to judge it by. UserError if neither is known."""
    try:
        theory.get(rid)
        return ()
    except UserError as exc:
        try:
            from sepbench import constructions
            from sepbench.constructions.curves import model_class
        except ImportError:  # pragma: no cover - torch missing
            raise exc from None
        reg = constructions.registry()
        cls = model_class(reg[name]) if name in reg and reg[name].result_id == rid else None
        if cls is None:
            raise exc from None
        return (cls,)


def _registered(name: str) -> tuple[str, str]:
    try:
        from sepbench import constructions
    except ImportError as exc:  # pragma: no cover - torch missing
        raise UserError(f"construction '{name}': cannot look it up ({exc})") from None
    reg = constructions.registry()
    if name not in reg:
        known = ", ".join(reg) or "none registered"
        raise UserError(
            f"construction '{name}' is not registered (known: {known}); pass "
            '{"task": ..., "result_id": ..., "points": [...]} for it'
        )
    return reg[name].task, reg[name].result_id


def _points(name: str, points: Any) -> tuple[tuple[int, float], ...]:
    try:
        pts = tuple((int(n), float(w)) for n, w in points)
    except (TypeError, ValueError):
        raise UserError(
            f"construction '{name}': points must be (N, width) pairs, got {points!r}"[:200]
        ) from None
    if not pts or any(n < 1 or not math.isfinite(w) or w < 0 for n, w in pts):
        raise UserError(f"construction '{name}': need (N >= 1, finite width >= 0) pairs")
    return tuple(sorted(pts))


# --------------------------------------------------------------------------------------------
# bounds and verdicts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BoundCurve:
    """A theorem's width at each N, in the searched width's units.

    ``result_id`` may name several results ("B24-T3 = W24-R") when their curves coincide.
    """

    result_id: str
    side: str
    """``"upper"`` (construction width) or ``"lower"`` (smallest width allowed)."""
    form: str
    exact: bool
    lengths: tuple[int, ...]
    widths: tuple[float, ...]
    formula: str
    precision_bits: int
    conversion: str = ""
    """How a state lower bound became a width (e.g. ``÷2: LSTM state = 2 × hidden``)."""

    @property
    def label(self) -> str:
        what = "construction width" if self.side == "upper" else "lower bound"
        shape = "" if self.exact or "form only" in self.conversion else " (form only)"
        conv = f"; {self.conversion}" if self.conversion else ""
        return f"{self.result_id} {what}{shape}: {self.formula} (p={self.precision_bits}{conv})"


def merge_bounds(curves: Sequence[BoundCurve]) -> list[BoundCurve]:
    """Curves of several results that coincide (same side and values) drawn once."""
    out: list[BoundCurve] = []
    for c in curves:
        for i, o in enumerate(out):
            if (
                o.side == c.side
                and o.lengths == c.lengths
                and np.allclose(o.widths, c.widths, rtol=1e-9, atol=0)
            ):
                out[i] = replace(o, result_id=f"{o.result_id} = {c.result_id}")
                break
        else:
            out.append(c)
    return out


@dataclass(frozen=True)
class ResultVerdict:
    """One theorem set beside one measured curve."""

    result_id: str
    direction: str
    form: str
    statement: str
    outcome: str
    reason: str
    interpretation: str
    """What the outcome means for a trained width (learnability vs representability)."""
    bound_at_max: float | None
    """The theorem's width (lower side for lower/tight results) at ``bound_length``, in the
    searched width's units; None if it could not be evaluated."""
    bound_length: int | None
    """The largest measured N (of the fit)."""


@dataclass
class PairData:
    """Everything about one (task, model) pair."""

    task: TaskInfo
    model: ModelInfo
    model_class: str | None
    state_factor: float
    state_note: str
    rows: list[WidthRow]
    searches: list[SearchResult]
    trials: list[TrialRecord]
    fit: theory.GrowthFit | None
    fit_note: str
    bounds: list[BoundCurve]
    verdicts: list[ResultVerdict]
    outcome: str
    reason: str
    constructions: list[ConstructionCurve]
    length_eval: list[tuple[int, int, list[tuple[int, float]]]] = field(default_factory=list)
    """(trained N, width, [(eval N, sequence accuracy), ...]) per trial that has them."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.task.label, self.model.label)

    def seed_points(self) -> tuple[list[int], list[float], list[int], list[float]]:
        """(N, width) of finished seeds, then (N, max width) of censored ones."""
        ok = [s for s in self.searches if s.status == "done" and s.width is not None]
        cens = [s for s in self.searches if s.status == "censored"]
        return (
            [s.length for s in ok],
            [float(s.width or 0) for s in ok],
            [s.length for s in cens],
            [float(s.max_width) for s in cens],
        )

    @property
    def censored(self) -> list[SearchResult]:
        return [s for s in self.searches if s.status == "censored"]

    @property
    def violations(self) -> list[SearchResult]:
        return [s for s in self.searches if s.violations]

    def measured_law(self) -> str:
        if self.fit is None:
            return "—"
        return f"{self.fit.best}: {self.fit.laws[self.fit.best].formula()}"

    def alpha_text(self) -> str:
        f = self.fit
        if f is None or f.alpha is None:
            return "—"
        if f.alpha_ci is None:
            return f"{f.alpha:.2f}"
        return f"{f.alpha:.2f} [{f.alpha_ci[0]:.2f}, {f.alpha_ci[1]:.2f}]"


@dataclass
class ReportData:
    """A whole report's content."""

    study: str
    spec_hash: str
    store_path: str
    created: str | None
    generated: str
    spec: StudySpec | None
    summary: StudySummary
    tasks: list[TaskInfo]
    models: list[ModelInfo]
    pairs: list[PairData]
    records: list[TrialRecord]
    precision_bits: int
    constructions: list[ConstructionCurve]
    notes: list[str] = field(default_factory=list)

    def pairs_for(self, task_label: str) -> list[PairData]:
        return [p for p in self.pairs if p.task.label == task_label]

    @property
    def trial_wall_s(self) -> float:
        return float(sum(r.wall_s for r in self.records))

    def elapsed_s(self) -> float | None:
        """Seconds from the first to the last stored trial's finish time."""
        stamps = []
        for r in self.records:
            try:
                stamps.append(_dt.datetime.fromisoformat(r.finished_at))
            except ValueError:
                continue
        if len(stamps) < 2:
            return None
        return (max(stamps) - min(stamps)).total_seconds()


def _bound_length(result_id: str, task: TaskInfo, length: int) -> int:
    """The N a result's formula takes for the study's N (B24-T8 on mqar counts 2P tokens)."""
    if result_id == "B24-T8" and task.name == "mqar":
        return 2 * int(task.params.get("pairs", 1))
    return length


def _result_params(result: theory.Result, task: TaskInfo, model: ModelInfo) -> dict[str, Any]:
    """The result's parameters taken from the task's parameters and the model's options."""
    accepted = {p.name for p in result.params}
    opts = model.opts()
    out = {k: v for k, v in task.params.items() if k in accepted}
    if "heads" in accepted and "heads" in opts:
        out["heads"] = opts["heads"]
    if "cell" in accepted:
        cell = opts.get("cell") if model.family == "rag" else model.family
        out["cell"] = "lstm" if cell == "lstm" else "elman"
    return out


def _grid(lengths: Sequence[int]) -> list[int]:
    lo, hi = max(2, min(lengths)), max(2, max(lengths))
    dense = np.unique(np.round(np.geomspace(lo, hi, 48)).astype(int)) if hi > lo else [lo]
    return sorted({int(n) for n in dense} | {n for n in lengths if n >= 2})


def _bound_curves(
    result: theory.Result,
    task: TaskInfo,
    model: ModelInfo,
    factor: float,
    note: str,
    lengths: Sequence[int],
    p: int,
) -> tuple[list[BoundCurve], str | None]:
    if not lengths:
        return [], None
    params = _result_params(result, task, model)
    grid = _grid(lengths)
    curves: list[BoundCurve] = []
    sides: list[tuple[str, Any]] = []
    if result.direction in ("upper", "tight"):
        sides.append(("upper", result.width_bound))
    if result.direction in ("lower", "tight"):
        sides.append(("lower", result.lower_width))
    for side, fn in sides:
        try:
            values = [fn(_bound_length(result.id, task, n), p, **params) for n in grid]
        except UserError as exc:
            return [], f"{result.id}: bound not drawn ({exc})"
        widths = [float(v) for v in values]
        conv = ""
        if side == "lower" and factor != 1.0:
            widths = [w / factor for w in widths]
            conv = f"÷{factor:g}: {note}"
        formula = result.formula
        if "; lower: " in formula:  # a tight result states both sides: keep this side's
            upper_text, lower_text = formula.split("; lower: ", 1)
            formula = upper_text if side == "upper" else lower_text
        curves.append(
            BoundCurve(
                result.id,
                side,
                result.form,
                result.exact,
                tuple(grid),
                tuple(widths),
                formula,
                p,
                conv,
            )
        )
    return curves, None


def _anchor_form_only(bounds: Sequence[BoundCurve], rows: Sequence[WidthRow]) -> list[BoundCurve]:
    """Scale curves that fix only the form (``exact=False``) to meet the measured median at the
    smallest N: their constants are not the theorem's, so only the shape is compared."""
    first = min((r for r in rows if r.median is not None), key=lambda r: r.length, default=None)
    out = []
    for b in bounds:
        if b.exact or first is None or first.length not in b.lengths:
            out.append(b)
            continue
        at = b.widths[b.lengths.index(first.length)]
        if at <= 0:
            out.append(b)
            continue
        k = float(first.median or 0) / at
        note = f"form only: scaled to the median at N={first.length}"
        conv = f"{b.conversion}; {note}" if b.conversion else note
        out.append(replace(b, widths=tuple(w * k for w in b.widths), conversion=conv))
    return out


def _combine(verdicts: Sequence[ResultVerdict]) -> tuple[str, str]:
    if not verdicts:
        return NO_THEOREM, ""
    for outcome in OUTCOME_ORDER:
        hits = [v for v in verdicts if v.outcome == outcome]
        if hits:
            v = hits[0]
            return outcome, f"{v.result_id}: {v.reason} — {v.interpretation}"
    raise AssertionError("unknown outcome")  # pragma: no cover


def interpretation(direction: str, outcome: str, reason: str = "") -> str:
    """What a verdict on a *trained* width can and cannot say (theory.md), in a few words."""
    if direction == "lower" or (direction == "tight" and "below the lower bound" in reason):
        if outcome == "inconsistent":
            return (
                "no model can beat a lower bound: check the trial (evaluation, threshold) or "
                "whether the bound's assumptions hold for this task"
            )
        if outcome == "consistent":
            return (
                "above the bound, which binds only at large N: at these N the trained width "
                "measures learnability, not the bound"
            )
        return "the bound could not be checked"
    if outcome == "consistent":
        return "training found solutions that scale like the theorem's construction"
    if outcome == "inconsistent":
        return (
            "grows faster than the construction: a learnability gap over this range, not a "
            "counterexample (trained widths only bound the minimal width from above)"
        )
    return "the measured range cannot separate the theorem's form from faster growth"


def _verdicts(
    results: Sequence[theory.Result],
    task: TaskInfo,
    model: ModelInfo,
    factor: float,
    fit: theory.GrowthFit | None,
    state_fit: theory.GrowthFit | None,
    fit_note: str,
    censored: int,
    p: int,
) -> list[ResultVerdict]:
    out = []
    measured = state_fit if state_fit is not None else fit
    max_n = int(max(measured.lengths)) if measured is not None else None
    for r in results:
        params = _result_params(r, task, model)
        bound: float | None = None
        if max_n is not None:
            try:
                n_eval = _bound_length(r.id, task, max_n)
                low = r.lower_width(n_eval, p, **params)
                bound = r.width_bound(n_eval, p, **params) if low is None else low / factor
            except UserError:
                bound = None
        if measured is None:
            outcome, reason = "undecided", f"no growth fit: {fit_note}"
        else:
            try:
                v = _verdict_for(r, task, measured, p, params)
                outcome, reason = v.outcome, v.reason
            except UserError as exc:
                outcome, reason = "undecided", f"verdict not computed: {exc}"
            else:
                if factor != 1.0 and state_fit is not None:
                    reason = f"on the state (= {factor:g} × width): {reason}"
                if censored and r.direction != "lower" and outcome == "consistent":
                    outcome = "undecided"
                    reason = (
                        f"{censored} censored seed(s) (> max width) are left out of the fit, "
                        f"which may then understate growth; without them: {reason}"
                    )
        out.append(
            ResultVerdict(
                result_id=r.id,
                direction=r.direction,
                form=r.form,
                statement=r.statement,
                outcome=outcome,
                reason=reason,
                interpretation=interpretation(r.direction, outcome, reason),
                bound_at_max=bound,
                bound_length=max_n,
            )
        )
    return out


def _verdict_for(
    result: theory.Result,
    task: TaskInfo,
    fit: theory.GrowthFit,
    p: int,
    params: dict[str, Any],
) -> theory.Verdict:
    if result.id == "B24-T8" and task.name == "mqar":
        # the formula's N is 2P, not the study's N: check the constant bound directly
        n = _bound_length(result.id, task, int(max(fit.lengths)))
        bound = result.lower_width(n, p, **params) or 0.0
        worst = min(fit.widths)
        if worst < bound * (1 - 1e-9):
            return theory.Verdict(
                result.id,
                "inconsistent",
                f"width {worst:g} is below the lower bound {bound:.3g} (N = 2P = {n}, p = {p}): "
                "a bug report, not a discovery",
            )
        return theory.Verdict(
            result.id,
            "consistent",
            f"every width clears the bound {bound:.3g} (N = 2P = {n}, p = {p})",
        )
    return theory.verdict(result.id, fit, precision_bits=p, **params)


def _fits(
    searches: Sequence[SearchResult], factor: float, n_boot: int
) -> tuple[theory.GrowthFit | None, theory.GrowthFit | None, str]:
    done = [s for s in searches if s.status == "done" and s.width is not None]
    censored = sum(s.status == "censored" for s in searches)
    incomplete = sum(s.status == "incomplete" for s in searches)
    lengths = [s.length for s in done]
    widths = [float(s.width or 0) for s in done]
    notes = []
    if censored:
        notes.append(f"{censored} censored seed(s) (> max width) excluded from the fit")
    if incomplete:
        notes.append(f"{incomplete} unfinished search(es) not yet in the fit")
    if len(set(lengths)) < 3:
        notes.insert(0, f"only {len(set(lengths))} length(s) with a measured width (need 3)")
        return None, None, "; ".join(notes)
    fit = theory.fit_growth(lengths, widths, n_boot=n_boot)
    state_fit = None
    if factor != 1.0:
        state_fit = theory.fit_growth(lengths, [w * factor for w in widths], n_boot=n_boot)
    return fit, state_fit, "; ".join(notes)


def _length_eval(trials: Sequence[TrialRecord]) -> list[tuple[int, int, list[tuple[int, float]]]]:
    """Per trained N, the smallest-width successful trial's length-generalisation curve."""
    best: dict[int, tuple[int, list[tuple[int, float]]]] = {}
    for t in trials:
        details = t.outcome.get("details") or {}
        records = details.get(LENGTH_EVAL_KEY) if isinstance(details, dict) else None
        if not t.reached or not isinstance(records, list):
            continue
        curve = []
        for rec in records:
            if not isinstance(rec, dict):
                continue
            n, acc = rec.get("length"), rec.get("sequence_accuracy")
            if isinstance(n, int) and isinstance(acc, int | float) and math.isfinite(acc):
                curve.append((n, float(acc)))
        if curve and (t.length not in best or t.width < best[t.length][0]):
            best[t.length] = (t.width, sorted(curve))
    return [(n, w, c) for n, (w, c) in sorted(best.items())]


# --------------------------------------------------------------------------------------------
# collecting a report
# --------------------------------------------------------------------------------------------
def resolve_store(path: str | os.PathLike[str]) -> Path:
    """A store file given a file or a study directory holding exactly one ``*.sqlite``."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{str(p)!r} does not exist (give a results store or a study directory)")
    if p.is_dir():
        stores = sorted(p.glob("*.sqlite"))
        if not stores:
            raise UserError(f"directory {str(p)!r} holds no results store (*.sqlite)")
        if len(stores) > 1:
            names = ", ".join(s.name for s in stores)
            raise UserError(f"directory {str(p)!r} holds {len(stores)} stores ({names}); name one")
        return stores[0]
    return p


def _infos(spec: StudySpec | None, summary: StudySummary) -> tuple[list[TaskInfo], list[ModelInfo]]:
    if spec is not None:
        from sepbench import tasks

        task_infos = []
        for t, label in spec.task_labels():
            try:
                params = dict(tasks.make(t.name, **t.params).params)
            except ValueError:
                params = dict(t.params)
            task_infos.append(TaskInfo(label, t.name, params))
        model_infos = [
            ModelInfo(label, m.family, dict(m.options), i)
            for i, (m, label) in enumerate(spec.model_labels())
        ]
        return task_infos, model_infos
    # no spec: labels only; a label that is a registered name is taken as that name
    from sepbench import tasks

    t_labels = list(dict.fromkeys(r.task for r in summary.rows))
    m_labels = list(dict.fromkeys(r.model for r in summary.rows))
    task_infos = []
    for label in t_labels:
        name = label.split("(")[0]
        known = name in tasks.names()
        params = dict(tasks.make(name).params) if known else {}
        task_infos.append(TaskInfo(label, name if known else None, params))
    model_infos = []
    for i, label in enumerate(m_labels):
        fam = label.split("(")[0]
        model_infos.append(ModelInfo(label, fam if fam in MODEL_DEFAULTS else None, {}, i))
    return task_infos, model_infos


def collect(
    source: Store | StudySummary | str | os.PathLike[str],
    constructions: Any = None,
    *,
    precision_bits: int = DEFAULT_PRECISION_BITS,
    n_boot: int = 1000,
) -> ReportData:
    """Gather a report's content from a store, a store path / study directory, or a summary."""
    from sepbench.sweep.store import Store

    if (
        isinstance(precision_bits, bool)
        or not isinstance(precision_bits, int)
        or not (1 <= precision_bits <= 128)
    ):
        raise UserError(
            f"precision must be an integer number of bits in 1..128, got {precision_bits!r}"
        )
    curves = construction_curves(constructions)
    if isinstance(source, Store):
        return _collect(source, None, curves, precision_bits, n_boot)
    if isinstance(source, StudySummary):
        try:
            with Store.open(source.store_path) as store:
                return _collect(store, source, curves, precision_bits, n_boot)
        except UserError as exc:
            data = _collect(None, source, curves, precision_bits, n_boot)
            data.notes.append(
                f"The store {source.store_path} could not be read ({exc}); this report has no "
                "trial-level data (heatmaps, wall time) and takes families from model labels."
            )
            return data
    if isinstance(source, str | os.PathLike):
        with Store.open(resolve_store(source)) as store:
            return _collect(store, None, curves, precision_bits, n_boot)
    raise UserError(
        f"write_report needs a Store, a StudySummary or a path, got {type(source).__name__}"
    )


def _collect(
    store: Store | None,
    summary: StudySummary | None,
    curves: list[ConstructionCurve],
    p: int,
    n_boot: int,
) -> ReportData:
    spec = store.spec() if store is not None else None
    if summary is None:
        assert store is not None
        summary = summarize(store)
    records = store.records() if store is not None else []
    task_infos, model_infos = _infos(spec, summary)
    pairs = []
    for task in task_infos:
        for model in model_infos:
            pairs.append(_pair(task, model, summary, records, curves, p, n_boot))
    return ReportData(
        study=summary.study,
        spec_hash=summary.spec_hash,
        store_path=summary.store_path,
        created=store.meta.get("created") if store is not None else None,
        generated=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        spec=spec,
        summary=summary,
        tasks=task_infos,
        models=model_infos,
        pairs=pairs,
        records=records,
        precision_bits=p,
        constructions=curves,
    )


def _pair(
    task: TaskInfo,
    model: ModelInfo,
    summary: StudySummary,
    records: Sequence[TrialRecord],
    curves: Sequence[ConstructionCurve],
    p: int,
    n_boot: int,
) -> PairData:
    rows = [r for r in summary.rows if r.task == task.label and r.model == model.label]
    searches = [s for s in summary.searches if s.task == task.label and s.model == model.label]
    # by search key, not label: two labels of one configuration share their searches' trials
    keys = {s.search_key for s in searches}
    trials = [t for t in records if t.search_key in keys]
    cls = model_class(model.family, model.options, task.name, task.params)
    factor, note = state_per_width(model.family, model.options)
    if cls not in RNN_CLASSES:
        factor, note = 1.0, ""
    fit, state_fit, fit_note = _fits(searches, factor, n_boot)
    results: list[theory.Result] = []
    reason = ""
    if cls is None:
        reason = f"model family {model.family!r} has no theory model class"
    elif task.name is None or task.name not in theory.tasks_covered():
        reason = f"no result in the catalogue concerns task {task.name or task.label!r}"
    else:
        results = theory.for_task(task.name, cls)
        if not results:
            reason = f"no result in the catalogue for {task.name} with {cls}"
    lengths = [r.length for r in rows] or [s.length for s in searches]
    bounds: list[BoundCurve] = []
    notes = []
    for r in results:
        got, problem = _bound_curves(r, task, model, factor, note, lengths, p)
        bounds += got
        if problem:
            notes.append(problem)
    bounds = merge_bounds(_anchor_form_only(bounds, rows))
    verdicts = _verdicts(
        results,
        task,
        model,
        factor,
        fit,
        state_fit,
        fit_note,
        sum(s.status == "censored" for s in searches),
        p,
    )
    outcome, combined = _combine(verdicts)
    if outcome == NO_THEOREM:
        combined = reason
    if notes:
        fit_note = "; ".join([fit_note, *notes]) if fit_note else "; ".join(notes)
    mine = [c for c in curves if c.task == task.name and cls is not None and cls in c.model_classes]
    return PairData(
        task=task,
        model=model,
        model_class=cls,
        state_factor=factor,
        state_note=note,
        rows=rows,
        searches=searches,
        trials=trials,
        fit=fit,
        fit_note=fit_note,
        bounds=bounds,
        verdicts=verdicts,
        outcome=outcome,
        reason=combined,
        constructions=mine,
        length_eval=_length_eval(trials),
    )
