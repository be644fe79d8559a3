"""Constructive width and precision curves, and the lower-bound sanity check (theory.md,
"How the testbed confronts theory with measurement", items 1, 2 and 4).

* :func:`width_curve` — for a construction with a width knob (``Construction.width_knob``),
  the smallest knob value that is **accepted** at each N (:func:`smallest_knob`). A value is
  accepted only if

  1. the build's **structural hypotheses** hold — what its correctness proof assumes of the
     drawn weights, e.g. B24 Lemma 2's margin |⟨T(i), T(j)⟩| ≤ γ over all its addresses
     (``HandBuilt.hypotheses_hold``; the construction's ``admissible`` rule finds the values
     where they do, exactly, without building networks); and
  2. it answers **every position's hard input** (:data:`CURVE_CONTEXTS` contexts with a query
     at every position, :data:`~sepbench.constructions.verify.EVERY_POSITION`) plus
     :data:`CURVE_HARD` structured hard rows and :data:`CURVE_SAMPLES` random rows — the same
     rows at every N (or every input, when there are at most :data:`CURVE_EXHAUSTIVE`).

  The search walks the admissible values upwards (the margin is not monotone in the knob, so
  no bisection) and stops at the first that passes; when the proof is right that is the first
  admissible value, and the curve measures the proof's own quantity (for the address
  constructions: the smallest dimension at which the seeded draw has the lemma's margin). The
  answer does not depend on where a caller's previous search ended, so ``sepbench verify
  --curves``, ``sepbench run`` and docs/constructions.md report the same width at every N.
  The curve is fitted with :func:`sepbench.theory.fit_growth` and judged with
  :func:`sepbench.theory.verdict` against the construction's result.
* :func:`precision_curve` — at each N, the fewest mantissa bits (floating point with float64's
  exponent range) and the fewest fixed-point fraction bits f (B24's grid: step 2^(−f), clipped
  at ±2^f, 2f + 1 bits a number) at which the construction still verifies, by bisection, and
  whether the built-in dtypes pass — on :func:`precision_rows` (fixed per N).
* :func:`sanity` — no construction may beat a lower bound of its own model class: width ×
  the bits per number it **needs** (measured: 2f + 1; state size × bits for recurrent
  models) against every lower (or tight) result of the catalogue for the same task and class.

All of it is plain data (dataclasses) for the CLI and :mod:`~sepbench.docgen.constructions`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sepbench import theory
from sepbench.constructions import verify as V
from sepbench.constructions.base import Construction, HandBuilt, get
from sepbench.errors import UserError

KNOB_MAX = 4096
"""The width search gives up above this knob value."""
CURVE_CONTEXTS = 4
"""Every-position contexts per probe when they share their prefix (index lookup: 4 strings ×
N queries); tasks whose every-position rows are full rows (the pair tasks) get
:data:`CURVE_ROW_CONTEXTS`."""
CURVE_ROW_CONTEXTS = 1
CURVE_HARD = 8
"""Structured hard rows per probe (positions spread evenly, both ends included)."""
CURVE_SAMPLES = 8
"""Random task rows per probe."""
CURVE_EXHAUSTIVE = 1 << 12
PRECISION_CONTEXTS = 1
"""Every-position contexts of a precision probe (shared-prefix tasks only: a simulated
precision pass over N full rows would cost N × 16 float64 passes)."""
DOUBLING_LENGTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


CURVE_SAMPLES_ALONE = 128
"""Random rows per probe of a task without every-position contexts (the Dyck tasks)."""


def acceptance_rows(hb: HandBuilt) -> dict[str, Any]:
    """The rows every acceptance check of ``hb``'s task checks (the same at every N)."""
    name = hb.task.name
    if hb.generate:  # greedy decoding: no teacher-forced contexts
        return {"contexts": 0, "hard_limit": 0, "samples": V.GENERATE_SAMPLES,
                "exhaustive_limit": CURVE_EXHAUSTIVE}  # fmt: skip
    if name not in V.EVERY_POSITION:
        return {"contexts": 0, "hard_limit": CURVE_HARD, "samples": CURVE_SAMPLES_ALONE,
                "exhaustive_limit": CURVE_EXHAUSTIVE}  # fmt: skip
    return {
        "contexts": CURVE_CONTEXTS if V.shares_prefix(name) else CURVE_ROW_CONTEXTS,
        "hard_limit": CURVE_HARD,
        "samples": CURVE_SAMPLES,
        "exhaustive_limit": CURVE_EXHAUSTIVE,
    }


def precision_rows(task_name: str) -> dict[str, Any]:
    """The rows every precision probe checks (the same at every N)."""
    return {
        "contexts": PRECISION_CONTEXTS if V.shares_prefix(task_name) else 0,
        "hard_limit": CURVE_HARD,
        "samples": CURVE_SAMPLES,
        "exhaustive_limit": CURVE_EXHAUSTIVE,
    }


def accept(hb: HandBuilt, name: str | None = None, seed: int = 0) -> V.VerifyRow:
    """The acceptance check of one build: its hypotheses and :func:`acceptance_rows` (the
    verdict is ``pass`` only if both hold; stops at the first wrong row)."""
    return V.check(hb, name=name, stop_at_first=True, exhaustive_work=math.inf, seed=seed,
                   **acceptance_rows(hb))  # fmt: skip


# ------------------------------------------------------------------------------ width


@dataclass
class WidthPoint:
    """The smallest accepted knob at one N, and what the search tried."""

    length: int
    knob: int | None
    """Smallest accepted knob value (None: none up to KNOB_MAX)."""
    width: int | None
    checked: int
    """Rows the accepted network was checked on."""
    probes: dict[int, bool] = field(default_factory=dict)
    """Every knob value tried (all admissible) → whether its rows passed."""
    seconds: float = 0.0
    every: int = 0
    """Of ``checked``: rows of the every-position contexts (a query at every position)."""
    hypotheses: str = ""
    """The accepted build's structural hypotheses, as measured."""


@dataclass
class WidthCurve:
    construction: str
    result_id: str
    form: str
    knob: str
    points: list[WidthPoint]
    fit: theory.GrowthFit | None
    verdict: theory.Verdict | None
    note: str = ""

    @property
    def law(self) -> str:
        """The best fitted law as a formula, or a dash."""
        if self.fit is None:
            return "—"
        return self.fit.laws[self.fit.best].formula()


def smallest_knob(
    name: str, length: int, *, params: Mapping[str, Any] | None = None, seed: int = 0
) -> WidthPoint:
    """The smallest value of ``name``'s width knob accepted at N = ``length`` (see the module
    docstring): the admissible values in increasing order, each built and checked on
    :func:`acceptance_rows` until one passes. ``seed`` draws the random rows and contexts;
    ``params`` go to the builder (and to its admissible rule)."""
    construction = get(name)
    knob = construction.width_knob
    if knob is None or construction.admissible is None:
        raise UserError(f"construction '{name}' has no width knob")
    base = {k: v for k, v in (params or {}).items() if k != knob}
    clock = time.perf_counter()
    probes: dict[int, bool] = {}
    value = construction.admissible(int(length), 1, **base)
    while value is not None and value <= KNOB_MAX:
        hb = construction.build(int(length), **{**base, knob: value})
        if not hb.hypotheses_hold:  # the admissible rule and the builder disagree: a bug
            raise AssertionError(f"{name}: {knob}={value} admissible but {hb.hypotheses}")
        row = accept(hb, name, seed)
        probes[value] = row.verdict == "pass"
        if probes[value]:
            return WidthPoint(int(length), value, hb.width, row.checked, probes,
                              time.perf_counter() - clock, row.every, hb.hypotheses)  # fmt: skip
        value = construction.admissible(int(length), value + 1, **base)
    return WidthPoint(int(length), None, None, 0, probes, time.perf_counter() - clock)


def width_curve(
    name: str,
    lengths: Sequence[int] = DOUBLING_LENGTHS,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> WidthCurve:
    """The constructive width curve of ``name`` (see the module docstring)."""
    construction = get(name)
    if construction.width_knob is None:
        raise UserError(f"construction '{name}' has no width knob: its width is fixed")
    points = [smallest_knob(name, int(n), params=params, seed=seed) for n in lengths]
    return curve_of(construction, points)


def curve_of(construction: Construction, points: Sequence[WidthPoint]) -> WidthCurve:
    """A :class:`WidthCurve` from measured points: fitted and judged."""
    assert construction.width_knob is not None
    fit, verdict, note = _fit(construction, points)
    return WidthCurve(
        construction.name, construction.result_id, construction.form, construction.width_knob,
        list(points), fit, verdict, note,
    )  # fmt: skip


def _fit(
    construction: Construction, points: Sequence[WidthPoint]
) -> tuple[theory.GrowthFit | None, theory.Verdict | None, str]:
    done = [p for p in points if p.width is not None]
    if len({p.length for p in done}) < 3:
        return None, None, "fewer than 3 lengths verified: no fit"
    fit = theory.fit_growth([p.length for p in done], [float(p.width or 0) for p in done])
    try:
        verdict = construction.judge(fit)
    except UserError as exc:
        return fit, None, f"no verdict: {exc}"
    return fit, verdict, ""


# -------------------------------------------------------------------------- precision

MANTISSA_RANGE = (0, 52)
FIXED_RANGE = (1, 52)


@dataclass
class PrecisionPoint:
    length: int
    width: int
    mantissa_bits: int | None
    """Fewest mantissa bits that verify (None: not even 52)."""
    fixed_bits: int | None
    """Fewest fixed-point fraction bits f that verify (a number then takes 2f + 1 bits)."""
    dtypes: dict[str, bool] = field(default_factory=dict)
    """Built-in dtype → verified."""
    seconds: float = 0.0

    @property
    def needed_bits(self) -> int | None:
        """Bits per number the construction needs on B24's grid: 2f + 1 (None: f > 52)."""
        return None if self.fixed_bits is None else 2 * self.fixed_bits + 1


@dataclass
class PrecisionCurve:
    construction: str
    params: dict[str, Any]
    points: list[PrecisionPoint]
    fixed_fit: theory.GrowthFit | None
    note: str = ""

    @property
    def fixed_law(self) -> str:
        if self.fixed_fit is None:
            return "—"
        return self.fixed_fit.laws[self.fixed_fit.best].formula()


def _fewest_bits(hb: HandBuilt, fixed: bool, rows: Mapping[str, Any]) -> int | None:
    lo, hi = FIXED_RANGE if fixed else MANTISSA_RANGE
    guess = 16 if fixed else 8  # where the answers usually are: saves probes

    def ok(bits: int) -> bool:
        row = V.check(hb, bits=bits, fixed=fixed, stop_at_first=True, exhaustive_work=math.inf,
                      **rows)  # fmt: skip
        return row.verdict == "pass"

    if ok(guess):
        hi = guess
    elif ok(hi):
        lo = guess
    else:
        return None
    if lo < guess and ok(lo):
        return lo
    while hi - lo > 1:  # lo fails, hi passes
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def precision_point(
    hb: HandBuilt, *, seed: int = 0, dtypes: Sequence[str] = ("float32", "bfloat16", "float16")
) -> PrecisionPoint:
    """Fewest mantissa / fixed-point bits and the dtypes that pass, for one built network,
    every probe on :func:`precision_rows` (the same at every N)."""
    clock = time.perf_counter()
    rows = {**precision_rows(hb.task.name), "seed": seed}
    mant = _fewest_bits(hb, False, rows)
    fixed = _fewest_bits(hb, True, rows)
    passes = {
        d: V.check(hb, d, stop_at_first=True, exhaustive_work=math.inf, **rows).verdict == "pass"
        for d in dtypes
    }
    return PrecisionPoint(hb.length, hb.width, mant, fixed, passes, time.perf_counter() - clock)


def precision_curve(
    name: str,
    lengths: Sequence[int] = DOUBLING_LENGTHS,
    *,
    params: Mapping[str, Any] | None = None,
    knobs: Mapping[int, int] | None = None,
    seed: int = 0,
    dtypes: Sequence[str] = ("float32", "bfloat16", "float16"),
) -> PrecisionCurve:
    """The precision curve of ``name``: :func:`precision_point` at every N.

    ``knobs`` maps N to a width-knob value to build with (e.g. the smallest accepted one,
    from :func:`width_curve`); otherwise the builder's defaults (and ``params``) apply.
    """
    construction = get(name)
    points = []
    for n in lengths:
        extra = dict(params or {})
        if knobs and int(n) in knobs and construction.width_knob:
            extra[construction.width_knob] = knobs[int(n)]
        hb = construction.build(int(n), **extra)
        points.append(precision_point(hb, seed=seed, dtypes=dtypes))
    done = [p for p in points if p.fixed_bits is not None]
    fit = None
    note = ""
    if len({p.length for p in done}) >= 3:
        fit = theory.fit_growth([p.length for p in done], [float(p.fixed_bits or 0) for p in done])
    else:
        note = "fewer than 3 lengths: no fit"
    return PrecisionCurve(name, dict(params or {}), points, fit, note)


# ----------------------------------------------------------------------------- sanity


@dataclass
class SanityRow:
    construction: str
    length: int
    bound_id: str
    numbers: float
    """Width (attention) or state size (recurrent) of the construction."""
    bits: int
    """Bits per number charged: what the construction was measured to need at that N."""
    lower_numbers: float
    """The lower bound on the numbers at that precision."""
    ok: bool


def model_class(construction: Construction) -> str:
    """The catalogue model class of a construction's result (every registered construction's
    result is catalogued; a test checks it)."""
    return theory.get(construction.result_id).model_class


def sanity(
    name: str,
    points: Sequence[tuple[int, int | None]],
    *,
    bits: Mapping[int, int],
    params: Mapping[str, Any] | None = None,
) -> list[SanityRow]:
    """Compare ``name`` with every lower (or tight) bound of its model class on its task.

    ``points`` are (N, knob value) pairs to build (knob None: the default), e.g. from a width
    curve. ``bits[N]`` is the precision per number the construction **needs** at N — measure
    it (:attr:`PrecisionPoint.needed_bits`, 2f + 1 on B24's fixed-point grid); it is charged
    as is, so a construction that stores fewer bits than a bound demands fails (there is no
    generous default: charging the 64 bits of the float64 it ran in would let every
    construction pass). A row with ``ok`` False is a bug report: the construction (or the
    bound) is wrong.
    """
    construction = get(name)
    missing = sorted({int(n) for n, _ in points if n >= 2} - {int(n) for n in bits})
    if missing:
        raise UserError(
            f"sanity of '{name}': no measured bits per number at N = {missing[0]}; pass "
            "bits[N] (e.g. 2f + 1 from its precision point) for every N"
        )
    cls = model_class(construction)
    if cls is None:
        return []
    bounds = [
        r
        for r in theory.for_task(construction.task, cls)
        if r.direction in ("lower", "tight") and cls in r.model_classes
    ]
    out = []
    for n, knob in points:
        if n < 2:
            continue
        extra = dict(params or {})
        if knob is not None and construction.width_knob:
            extra[construction.width_knob] = knob
        hb = construction.build(int(n), **extra)
        recurrent = cls.startswith("rnn")
        state = getattr(hb.module, "state_size", None)
        numbers = float(state(hb.length)) if recurrent and callable(state) else float(hb.width)
        p = int(bits[int(n)])
        for r in bounds:
            known = {q.name for q in r.params}
            rp = {k: v for k, v in hb.task.params.items() if k in known}
            low = r.lower_width(int(n), p, **rp)
            if low is None:
                continue
            out.append(SanityRow(name, int(n), r.id, numbers, p, low, numbers >= low - 1e-9))
    return out
