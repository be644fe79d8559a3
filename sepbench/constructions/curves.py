"""Constructive width and precision curves, and the lower-bound sanity check (theory.md,
"How the testbed confronts theory with measurement", items 1, 2 and 4).

* :func:`width_curve` — for a construction with a width knob (``Construction.width_knob``),
  the smallest knob value whose network still verifies, at each N: a doubling search from
  :data:`KNOB_START` for the first value that passes, then bisection between the last failure
  and it. Every probe at one N is checked on the **same** rows (the enumeration when there
  are at most ``exhaustive_limit`` inputs, else ``hard`` structured rows and ``samples``
  random rows from a seed fixed per N), stopping at the first error. The curve is fitted with
  :func:`sepbench.theory.fit_growth` and judged with :func:`sepbench.theory.verdict` against
  the construction's result. Bisection presumes that verification is monotone in the knob;
  with nested address draws (:mod:`~sepbench.constructions.addresses`) it nearly is, and the
  curve reports what the search found.
* :func:`precision_curve` — at each N, the fewest mantissa bits (floating point with float64's
  exponent range) and the fewest fixed-point fraction bits f (B24's grid: step 2^(−f), clipped
  at ±2^f, 2f + 1 bits a number) at which the construction still verifies, by bisection, and
  whether the built-in dtypes pass. The network is built with ``params`` (e.g. a knob value).
* :func:`sanity` — no construction may beat a lower bound of its own model class: width ×
  bits per number (state size × bits for recurrent models) against every lower (or tight)
  result of the catalogue for the same task and class.

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

KNOB_START = 4
"""First knob value the width search tries."""
KNOB_MAX = 4096
"""The width search gives up above this knob value."""
CURVE_WORK = float(1 << 33)
"""Multiply-adds one probe may spend (:func:`~sepbench.constructions.verify.row_cost`): the
number of rows checked per N follows from it, between CURVE_MIN_ROWS and CURVE_MAX_ROWS."""
CURVE_MIN_ROWS = 32
CURVE_MAX_ROWS = 512
CURVE_HARD_SHARE = 0.75
"""Share of the rows that are structured hard inputs (positions spread evenly)."""
CURVE_EXHAUSTIVE = 1 << 12
DOUBLING_LENGTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


# ------------------------------------------------------------------------------ width


@dataclass
class WidthPoint:
    """The smallest verified knob at one N, and what the search tried."""

    length: int
    knob: int | None
    """Smallest knob value that verified (None: none up to KNOB_MAX)."""
    width: int | None
    checked: int
    """Rows the passing network was checked on."""
    probes: dict[int, bool] = field(default_factory=dict)
    """Every knob value tried → whether it verified."""
    seconds: float = 0.0


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


def _probe(
    construction: Construction,
    n: int,
    knob: str,
    value: int,
    params: Mapping[str, Any],
    rows: Mapping[str, Any],
) -> tuple[bool, HandBuilt, V.VerifyRow]:
    hb = construction.build(n, **{**params, knob: value})
    row = V.check(hb, name=construction.name, stop_at_first=True, exhaustive_work=math.inf, **rows)
    return row.verdict == "pass", hb, row


def budget_rows(hb: HandBuilt, work: float = CURVE_WORK) -> tuple[int, int]:
    """(hard rows, random rows) that one probe of ``hb``'s size can afford."""
    cost = V.row_cost(hb.module, hb.task.max_tokens(hb.length), hb.width)
    total = int(max(CURVE_MIN_ROWS, min(CURVE_MAX_ROWS, work // max(cost, 1.0))))
    if hb.generate:  # greedy decoding: a Python loop per token
        total = min(total, V.GENERATE_SAMPLES)
    if hb.task.name not in V.HARD_INPUTS or hb.generate:
        return 0, total
    hard = int(total * CURVE_HARD_SHARE)
    return hard, total - hard


def smallest_knob(
    name: str,
    length: int,
    *,
    params: Mapping[str, Any] | None = None,
    samples: int | None = None,
    hard_limit: int | None = None,
    exhaustive_limit: int = CURVE_EXHAUSTIVE,
    seed: int = 0,
    start: int = KNOB_START,
    work: float = CURVE_WORK,
) -> WidthPoint:
    """The smallest value of ``name``'s width knob that verifies at N = ``length``.

    ``samples``/``hard_limit`` default to :func:`budget_rows` of the network at ``start``.
    """
    construction = get(name)
    knob = construction.width_knob
    if knob is None:
        raise UserError(f"construction '{name}' has no width knob")
    if samples is None or hard_limit is None:
        hard, rand = budget_rows(
            construction.build(length, **{**(params or {}), knob: start}), work
        )
        samples = rand if samples is None else samples
        hard_limit = hard if hard_limit is None else hard_limit
    rows: dict[str, Any] = {
        "samples": samples,
        "hard_limit": hard_limit,
        "exhaustive_limit": exhaustive_limit,
        "seed": seed,
    }
    clock = time.perf_counter()
    probes: dict[int, bool] = {}
    good: tuple[int, HandBuilt, V.VerifyRow] | None = None
    low, value = 0, max(1, start)
    while value <= KNOB_MAX:  # doubling: find a passing value
        ok, hb, row = _probe(construction, length, knob, value, params or {}, rows)
        probes[value] = ok
        if ok:
            good = (value, hb, row)
            break
        low, value = value, value * 2
    if good is None:
        return WidthPoint(length, None, None, 0, probes, time.perf_counter() - clock)
    high = good[0]
    while high - low > 1:  # bisection: low fails (or is 0), high passes
        mid = (low + high) // 2
        ok, hb, row = _probe(construction, length, knob, mid, params or {}, rows)
        probes[mid] = ok
        if ok:
            high, good = mid, (mid, hb, row)
        else:
            low = mid
    _, hb, row = good
    return WidthPoint(length, high, hb.width, row.checked, probes, time.perf_counter() - clock)


def width_curve(
    name: str,
    lengths: Sequence[int] = DOUBLING_LENGTHS,
    *,
    params: Mapping[str, Any] | None = None,
    samples: int | None = None,
    hard_limit: int | None = None,
    exhaustive_limit: int = CURVE_EXHAUSTIVE,
    seed: int = 0,
    work: float = CURVE_WORK,
) -> WidthCurve:
    """The constructive width curve of ``name`` (see the module docstring)."""
    construction = get(name)
    if construction.width_knob is None:
        raise UserError(f"construction '{name}' has no width knob: its width is fixed")
    points = []
    start = KNOB_START
    for n in lengths:
        point = smallest_knob(
            name,
            int(n),
            params=params,
            samples=samples,
            hard_limit=hard_limit,
            exhaustive_limit=exhaustive_limit,
            seed=seed,
            start=start,
            work=work,
        )
        points.append(point)
        if point.knob is not None:  # the next N needs at least about as much
            start = max(KNOB_START, point.knob // 2)
    fit, verdict, note = _fit(construction, points)
    return WidthCurve(
        name, construction.result_id, construction.form, construction.width_knob, points,
        fit, verdict, note,
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
PRECISION_SLOWDOWN = 16.0


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
    hb: HandBuilt,
    *,
    samples: int | None = None,
    hard_limit: int | None = None,
    exhaustive_limit: int = CURVE_EXHAUSTIVE,
    seed: int = 0,
    dtypes: Sequence[str] = ("float32", "bfloat16", "float16"),
    work: float = CURVE_WORK,
) -> PrecisionPoint:
    """Fewest mantissa / fixed-point bits and the dtypes that pass, for one built network.

    Rows as in :func:`smallest_knob` (:func:`budget_rows` unless given); a simulated
    precision pass costs several float64 passes (every op is followed by its rounding), so
    the budget is divided by :data:`PRECISION_SLOWDOWN`; the bfloat16/float16 checks, slow
    on CPU, use a quarter of the rows.
    """
    clock = time.perf_counter()
    if samples is None or hard_limit is None:
        hard, rand = budget_rows(hb, work / PRECISION_SLOWDOWN)
        samples = rand if samples is None else samples
        hard_limit = hard if hard_limit is None else hard_limit
    rows: dict[str, Any] = {
        "samples": samples,
        "hard_limit": hard_limit,
        "exhaustive_limit": exhaustive_limit,
        "seed": seed,
    }
    mant = _fewest_bits(hb, False, rows)
    fixed = _fewest_bits(hb, True, rows)
    few = {
        **rows,
        "samples": max(1, rows["samples"] // 4),
        "hard_limit": max(1, rows["hard_limit"] // 4),
    }
    passes = {
        d: V.check(hb, d, stop_at_first=True, exhaustive_work=math.inf, **few).verdict == "pass"
        for d in dtypes
    }
    return PrecisionPoint(hb.length, hb.width, mant, fixed, passes, time.perf_counter() - clock)


def precision_curve(
    name: str,
    lengths: Sequence[int] = DOUBLING_LENGTHS,
    *,
    params: Mapping[str, Any] | None = None,
    knobs: Mapping[int, int] | None = None,
    samples: int | None = None,
    hard_limit: int | None = None,
    exhaustive_limit: int = CURVE_EXHAUSTIVE,
    seed: int = 0,
    dtypes: Sequence[str] = ("float32", "bfloat16", "float16"),
    work: float = CURVE_WORK,
) -> PrecisionCurve:
    """The precision curve of ``name``: :func:`precision_point` at every N.

    ``knobs`` maps N to a width-knob value to build with (e.g. twice the smallest verified
    one, from :func:`width_curve`); otherwise the builder's defaults (and ``params``) apply.
    """
    construction = get(name)
    points = []
    for n in lengths:
        extra = dict(params or {})
        if knobs and int(n) in knobs and construction.width_knob:
            extra[construction.width_knob] = knobs[int(n)]
        hb = construction.build(int(n), **extra)
        points.append(
            precision_point(
                hb,
                samples=samples,
                hard_limit=hard_limit,
                exhaustive_limit=exhaustive_limit,
                seed=seed,
                dtypes=dtypes,
                work=work,
            )
        )
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
    """Bits per number used for the comparison."""
    lower_numbers: float
    """The lower bound on the numbers at that precision."""
    ok: bool


def model_class(construction: Construction) -> str:
    """The catalogue model class of a construction's result (every registered construction's
    result is catalogued; a test checks it)."""
    return theory.get(construction.result_id).model_class


def sanity(
    name: str,
    points: Sequence[tuple[int, int | None]] | None = None,
    *,
    bits: Mapping[int, int] | None = None,
    params: Mapping[str, Any] | None = None,
    lengths: Sequence[int] = (8, 64, 512),
) -> list[SanityRow]:
    """Compare ``name`` with every lower (or tight) bound of its model class on its task.

    ``points`` are (N, knob value) pairs to build (knob None: the default), e.g. from a width
    curve; otherwise ``lengths`` with default parameters. ``bits[N]`` is the precision per
    number to charge (default 64, the float64 the network was verified in — the weakest
    claim; pass the measured fixed-point 2f + 1 for the strongest). A row with ``ok`` False
    is a bug report: the construction (or the bound) is wrong.
    """
    construction = get(name)
    cls = model_class(construction)
    if cls is None:
        return []
    bounds = [
        r
        for r in theory.for_task(construction.task, cls)
        if r.direction in ("lower", "tight") and cls in r.model_classes
    ]
    todo = list(points) if points is not None else [(n, None) for n in lengths]
    out = []
    for n, knob in todo:
        if n < 2:
            continue
        extra = dict(params or {})
        if knob is not None and construction.width_knob:
            extra[construction.width_knob] = knob
        hb = construction.build(int(n), **extra)
        recurrent = cls.startswith("rnn")
        state = getattr(hb.module, "state_size", None)
        numbers = float(state(hb.length)) if recurrent and callable(state) else float(hb.width)
        p = (bits or {}).get(int(n), 64)
        for r in bounds:
            known = {q.name for q in r.params}
            rp = {k: v for k, v in hb.task.params.items() if k in known}
            low = r.lower_width(int(n), p, **rp)
            if low is None:
                continue
            out.append(SanityRow(name, int(n), r.id, numbers, p, low, numbers >= low - 1e-9))
    return out
