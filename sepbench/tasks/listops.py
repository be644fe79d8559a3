"""listops — NB18's ListOps (Nangia & Bowman 2018), LRA21's length count, RC23's length splits.

Format
------
Tokens ``[MIN [MAX [MED [SM ]``, the digits ``0 … 9`` and ``<pad>``; NYU's ``(``/``)`` are
dropped, as RC23's loaders do. A row is one expression: an operator token, its arguments
(digits or nested expressions), then ``]``. **N = number of tokens** = 2·(operators) + (digits)
(LRA21's length count; RC23's after stripping parentheses). Values: ``MIN``, ``MAX``; ``MED`` =
⌊median⌋ (numpy's median then ``int``: an even count gives ⌊(a + b)/2⌋ of the two middle values);
``SM`` = sum mod 10. The target is the expression's value, at the last token (the final ``]``).
Example: ``[SM [MED 3 8 1 6 ] 7 [MAX 0 4 ] ]`` (N = 13) → ``5`` (MED = ⌊4.5⌋ = 4, MAX = 4,
(4 + 7 + 4) mod 10 = 5).

Law
---
NB18's recursive generator (``make_data.py`` of nyu-mll/spinn): the root is at depth 1; a node at
depth < ``max_depth`` is a digit with probability 1 − ``value_p``, else an operator (uniform over
the four) with U{2 … ``max_args``} children; a node at depth ``max_depth`` is a digit; digits are
uniform. So at most ``max_depth`` − 1 operators are nested. This task draws that law
**conditioned on exactly N tokens** (N ≥ 4, so the root is an operator). LRA21 filters the plain
generator instead; with NB18's defaults a node has 0.25 · 3.5 = 0.875 children on average, so a
long tree is exponentially rare and filtering is hopeless at N in the hundreds.

Exact sampler (the spec's suggestion). Let a node with r operator levels left (r = ``max_depth``
− its depth) have shape weight W_r(s) = the probability that the plain generator's subtree there
has s tokens (op types and digit values are independent uniforms and cancel). Then

    W_0(s) = [s = 1],   W_r(s) = (1 − p)·[s = 1] + p/(A − 1) · Σ_{k=2..A} C_{r−1,k}(s − 2),

with p = ``value_p``, A = ``max_args`` and C_{r,k} the k-fold convolution of W_r
(C_{r,0} = [s = 0]).
Top-down, a node (r, s) is a digit iff s = 1; an operator draws its arity k ∝ C_{r−1,k}(s − 2),
then splits the s − 2 inner tokens among its k children one at a time: with ``rem`` tokens left for
children j … k, child j gets x ∝ W_{r−1}(x) · C_{r−1,k−j}(rem − x), the last child the rest. Each
child is then drawn the same way at (r − 1, x). Every tree of N tokens thus has exactly its
probability under the plain generator, divided by W_{max_depth−1}(N).

Numerics. Long trees are exponentially rare (W_r(s) falls like ρ^(−s)), while the bushy low
levels of a depth-capped tree grow with s, so the raw weights under- or overflow float64 at long N.
Every choice compares weights of one level at one total size, so level r's table may be
multiplied by any x_r^s (a digit weighs x_r, an operator x_r² for its two tokens): the same factor
for every competing choice, so no probability changes. :func:`build_tables` picks each level's
x_r = 2^(J/256) so the level sums to about 2^⌊600/A⌋ (no convolution power can overflow; the
long sizes carry the weight). The tables are float64 from IEEE +, ×, ``ldexp`` and ``fsum`` only
(convolutions sum over the shift in ascending order, elementwise, no BLAS): the same floats on
every machine. They are cached per (``max_args``, ``max_depth``, ``value_p``, size) and sampling at
N uses size :func:`_table_size` (N) (the next power of two ≥ 64, or multiple of 512 past 1024);
building costs O(``max_depth`` · ``max_args`` · N²) multiply-adds (about 0.3 s at N = 1000 with the
defaults; past :data:`TABLE_WORK_LIMIT` a length is refused with a one-line error). Categorical
draws (arity, splits) are exponential races: the x with the smallest E_x / w_x, E_x ~ Exp(1)
i.i.d., is x with probability w_x / Σ w, with no cumulative sums (so a tiny weight next to huge
ones keeps its probability).

Feasibility: the sizes a subtree with r levels can take are {1} ∪ (2 + sums of 2 … A sizes with
r − 1 levels) — computed exactly on 0/1 tables. Infeasible N (1, 2, 3, and more when ``max_args``
or ``max_depth`` is small; e.g. ``max_args`` = 2 allows only N ≡ 1 mod 3) is a one-line error
naming the nearest feasible lengths.

Generation is vectorised over the whole batch: one round per tree level, each handling every node
of that depth in every row (write its token(s) into its span in place, draw its arity and the
sizes of its children's spans, one ragged exponential race per child slot over all nodes at
once); values are then computed bottom-up by segment reductions (``reduceat``; the median from a
sort within segments). Work is O(N · depth) per row. ``meta``: ``depth`` (operator nesting; the
root alone is 1) and ``ops`` (number of operators), both int64 [B].

``balanced``: each value appears ⌊B/10⌋ or ⌈B/10⌉ times per batch (the B mod 10 extra labels a
uniformly drawn set of distinct values), in shuffled order; a row assigned value v is a draw of the
law conditioned on value v (rows are generated in rounds and kept per label in generation order
until every quota is filled). NB18/LRA21 are not balanced. Rows are i.i.d. (NB18 and LRA21
deduplicate their files; nothing here does).

Length splits (RC23, LRA21), as plain data: :data:`RC23_TRAIN` (N ≤ 100), :data:`RC23_TEST`
([200, 300) … [900, 1000)) and :data:`LRA_LIKE` (``max_args`` 10, ``max_depth`` 10, 500 < N < 2000).
A bin is evaluated by drawing N uniformly over its feasible lengths (:func:`draw_bin_lengths`),
one ``sample`` call per distinct N (:func:`sample_bin`).

The reference solver :func:`evaluate` is independent of all this: one left-to-right pass with a
stack of argument lists and integer arithmetic (no tree object, no numpy).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import Batch, Param, Task, int_param, single_answer_batch

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
DIGITS = tuple(str(d) for d in range(10))
_OP_ID0 = 1  # vocabulary: <pad>, the four operators, ], the ten digits
_CLOSE_ID = 5
_DIGIT_ID0 = 6
MIN_LENGTH = 4
"""The shortest row: an operator with two digits."""

TABLE_WORK_LIMIT = 3e9
"""Largest (max_depth − 2) · (max_args − 1) · N² the sampler's tables may cost (about 10 s)."""


# --------------------------------------------------------------------- length splits (RC23, LRA21)
@dataclass(frozen=True)
class LengthBin:
    """A range of lengths ``lo <= N < hi`` (half-open) and the task parameters it is drawn with."""

    name: str
    lo: int
    hi: int
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


RC23_TRAIN = LengthBin("train", MIN_LENGTH, 101)
"""RC23 train on NB18's rows of ≤ 100 tokens; the protocol draws N uniformly over [4, 100]."""
RC23_TEST = tuple(LengthBin(f"{lo}-{lo + 100}", lo, lo + 100) for lo in range(200, 1000, 100))
"""RC23's length-generalisation test bins [200, 300), [300, 400), …, [900, 1000)."""
LRA_LIKE = LengthBin("lra", 501, 2000, MappingProxyType({"max_args": 10, "max_depth": 10}))
"""LRA21-like rows: ``max_args`` 10, ``max_depth`` 10, 500 < N < 2000."""


# --------------------------------------------------------------------- reference solver
def _apply(op: str, args: list[int]) -> int:
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    ordered = sorted(args)  # [MED
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) // 2


def evaluate(tokens: Sequence[str]) -> int:
    """The value of one ListOps expression, by a single pass with a stack of argument lists.

    An operator token opens a frame; a digit is appended to the innermost frame; ``]`` closes the
    innermost frame, applies its operator (MIN, MAX; MED: the middle of the sorted arguments, the
    floor of the mean of the two middle ones for an even count; SM: the sum mod 10) and appends
    the result to the frame below. Anything but exactly one complete expression, every operator
    with at least one argument, raises UserError.
    """
    frames: list[tuple[str, list[int]]] = []
    result: int | None = None
    for pos, tok in enumerate(tokens):
        if result is not None:
            raise UserError(
                f"listops: token {tok!r} at position {pos} follows a complete expression"
            )
        if tok in OPERATORS:
            frames.append((tok, []))
        elif tok == CLOSE:
            if not frames:
                raise UserError(f"listops: ']' at position {pos} closes no operator")
            op, args = frames.pop()
            if not args:
                raise UserError(f"listops: {op} closed at position {pos} has no arguments")
            value = _apply(op, args)
            if frames:
                frames[-1][1].append(value)
            else:
                result = value
        elif tok in DIGITS:
            if not frames:
                raise UserError(f"listops: digit {tok!r} at position {pos} is outside any operator")
            frames[-1][1].append(int(tok))
        else:
            raise UserError(f"listops: unknown token {tok!r} at position {pos}")
    if result is None:
        raise UserError("listops: the expression is incomplete (an operator is never closed)")
    return result


def nesting(tokens: Sequence[str]) -> int:
    """The largest number of simultaneously open operators (the ``depth`` meta of a row)."""
    depth = best = 0
    for tok in tokens:
        if tok in OPERATORS:
            depth += 1
            best = max(best, depth)
        elif tok == CLOSE:
            depth -= 1
    return best


# --------------------------------------------------------------------- tables
TILT_STEPS = 256
"""Tilts are powers 2^(J/256), J an integer: exact to apply with ``ldexp`` (see :func:`_tilted`)."""


def _fractional_powers() -> np.ndarray:
    """2^(i/256) for i = 0 … 255, from eight square roots of 2 and products (IEEE-exact steps:
    the same floats on every machine)."""
    roots = [2.0]
    for _ in range(8):
        roots.append(math.sqrt(roots[-1]))  # roots[b] = 2^(1/2^b)
    out = np.ones(TILT_STEPS)
    for i in range(1, TILT_STEPS):
        value = 1.0
        for bit in range(8):
            if i >> bit & 1:
                value *= roots[8 - bit]  # 2^(2^bit / 256)
        out[i] = value
    return out


_FRAC = _fractional_powers()


def _tilted(values: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """values · 2^(exponents/256), elementwise (integer ``exponents``)."""
    return np.ldexp(values * _FRAC[exponents % TILT_STEPS], exponents // TILT_STEPS)


def _pow2(exponent: int) -> float:
    """2^(exponent/256) as a float (inf past the float range)."""
    with np.errstate(over="ignore"):
        return float(_tilted(np.ones(1), np.array([exponent], dtype=np.int64))[0])


def _table_size(length: int) -> int:
    """Tables are built to the next power of two ≥ max(N, 64) up to 1024, then to a multiple of
    512: a handful of builds cover a whole sweep of lengths. Sampling at N always uses the tables
    of size ``_table_size(N)``, so a row depends only on (parameters, N, seed), never on which
    tables happen to be cached."""
    if length <= 1024:
        return max(64, 1 << (length - 1).bit_length())
    return -(-length // 512) * 512


def _levels(max_depth: int, size: int) -> int:
    """Operator levels the root needs for sizes ≤ ``size``: ``max_depth`` − 1, or fewer where the
    cap cannot bind. A subtree of s tokens nests at most ⌊(s − 1)/3⌋ operators (each extra level
    costs an operator, its ``]`` and a sibling), so levels beyond ⌊(size − 1)/3⌋ + 1 change no
    weight and are dropped."""
    return min(max_depth - 1, (size - 1) // 3 + 1)


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b)[s]`` for s < len(a), summed over the shift t of ``b`` in ascending order.

    Elementwise numpy only (no BLAS dot, whose summation order may vary), so every entry is the
    same float on every machine.
    """
    out = np.zeros_like(a)
    tmp = np.empty_like(a)
    size = a.size
    for t in np.flatnonzero(b):
        n = size - t
        np.multiply(a[:n], b[t], out=tmp[:n])
        out[t:] += tmp[:n]
    return out


def _total(values: np.ndarray) -> float:
    """The exactly rounded sum (``math.fsum``), +inf on overflow."""
    if not np.isfinite(values).all():
        return math.inf
    try:
        return math.fsum(values.tolist())
    except OverflowError:
        return math.inf


def _level_tilt(inner: np.ndarray, prev: int, digit: float, op: float, ceiling: float) -> int:
    """The tilt step j of the next level: the largest j in ±2^13 whose tilted level sums to at
    most ``ceiling``.

    With y = 2^(j/256) and x = x_prev·y, the next level's entries are ``digit``·x at s = 1 and
    ``op``·x²·y^(s−2)·inner(s − 2) for s ≥ 2, increasing in j; bisection over integers.
    """
    steps = np.arange(inner.size, dtype=np.int64)

    def level_sum(j: int) -> float:
        x_exp = prev + j
        with np.errstate(over="ignore"):
            body = _total(_tilted(inner, 2 * x_exp + j * steps))
            return digit * _pow2(x_exp) + op * body

    lo, hi = -(1 << 13), 1 << 13
    if level_sum(hi) <= ceiling:
        return hi
    if level_sum(lo) > ceiling:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if level_sum(mid) <= ceiling:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Tables:
    """Shape weights for one parameter set, sizes 0 … ``size`` (see the module docstring).

    ``weights[r, s]`` = W_r(s)·x_r^s for r = 0 … ``levels``; ``conv[r, k, s]`` = C_{r,k}(s)·x_r^s
    (the k-fold convolution of ``weights[r]``) for child levels r = 0 … levels − 1 and k = 0 … A;
    ``feasible[r, s]``: a subtree with r levels can have s tokens (exact 0/1 arithmetic). The
    root uses level ``levels``; ``tilts[r]`` = J_r with x_r = 2^(J_r/256).
    """

    max_args: int
    levels: int
    size: int
    weights: np.ndarray
    conv: np.ndarray
    feasible: np.ndarray
    tilts: tuple[int, ...]


@functools.lru_cache(maxsize=16)
def build_tables(max_args: int, max_depth: int, value_p: float, size: int) -> Tables:
    """The tables for sizes ≤ ``size`` (cached; sampling uses ``size = _table_size(N)``).

    Tilts, level by level: every choice the sampler makes compares weights of the same level at
    the same total size, so level r's table may be multiplied by any x_r^s. Level 0 is {s = 1}
    with x_0 = 1. Level r + 1 follows from level r's convolutions (tilted by x_r) through

        W_{r+1}(s)·x_{r+1}^s = [s = 1](1 − p)·x_{r+1}
                               + p/(A − 1)·x_{r+1}²·y^(s−2)·Σ_k C_{r,k}(s − 2)·x_r^(s−2),

    y = x_{r+1}/x_r, and x_{r+1} is the largest power 2^(J/256) for which level r + 1 sums to at
    most σ = 2^⌊600/A⌋: then every k-fold convolution (k ≤ A) sums to at most 2^600, so nothing
    overflows, and the heaviest sizes of each level, rather than s = 1, set its scale, so the
    long-tree entries the sampler needs stay far from underflow. Without this, a single tilt
    either underflows at long N (small ``value_p``) or overflows in the bushy low levels (large
    ``max_args``). Every step is IEEE +, ×, ``ldexp`` or ``fsum``: the same tables on any machine.
    """
    a = max_args
    levels = _levels(max_depth, size)
    width = size + 1
    ceiling = float(2 ** (600 // a))
    weights = np.zeros((levels + 1, width))
    conv = np.zeros((levels, a + 1, width))
    feasible = np.zeros((levels + 1, width), dtype=bool)
    weights[0, 1] = 1.0
    feasible[0, 1] = True
    tilts = [0]
    digit, op = 1 - value_p, value_p / (a - 1)
    steps = np.arange(width - 2, dtype=np.int64)
    for r in range(1, levels + 1):
        child, child_ok = weights[r - 1], feasible[r - 1].astype(float)
        c = conv[r - 1]
        c[0, 0] = 1.0
        c[1] = child
        inner = np.zeros(width)
        reach = np.zeros(width)
        ok = child_ok
        for k in range(2, a + 1):
            c[k] = _convolve(c[k - 1], child)
            inner += c[k]
            ok = np.minimum(np.convolve(ok, child_ok)[:width], 1.0)  # exact: 0/1 counts
            reach += ok
        j = _level_tilt(inner[:-2], tilts[-1], digit, op, ceiling)
        x_exp = tilts[-1] + j
        tilts.append(x_exp)
        weights[r, 2:] = op * _tilted(inner[:-2], 2 * x_exp + j * steps)
        weights[r, 1] = digit * _pow2(x_exp)
        feasible[r, 2:] = reach[:-2] > 0
        feasible[r, 1] = True
    return Tables(a, levels, size, weights, conv, feasible, tuple(tilts))


def largest_size(max_args: int, max_depth: int) -> int:
    """The most tokens a tree can have: every operator full (A children) down to the cap
    (s_1 = 1, s_{d+1} = 2 + A·s_d); past 2^62 the count stops growing (no table reaches it)."""
    size = 1
    for _ in range(max_depth - 1):
        size = 2 + max_args * size
        if size > 1 << 62:
            return 1 << 62
    return size


# --------------------------------------------------------------------- vectorised sampler
def _race_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row of a [M, K] weight matrix, a column drawn ∝ its weight (exponential race)."""
    keys = np.full(weights.shape, np.inf)
    np.divide(rng.standard_exponential(weights.shape), weights, out=keys, where=weights > 0)
    return np.argmin(keys, axis=1)


def _race_segments(weights: np.ndarray, lens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For consecutive segments of ``weights`` (lengths ``lens``, all ≥ 1), the offset within
    each segment of an entry drawn ∝ its weight (exponential race; ties have probability 0 and
    go to the first)."""
    keys = np.full(weights.shape, np.inf)
    np.divide(rng.standard_exponential(weights.size), weights, out=keys, where=weights > 0)
    starts = np.cumsum(lens) - lens
    best = np.minimum.reduceat(keys, starts)
    hit = np.flatnonzero(keys == np.repeat(best, lens))
    if hit.size != lens.size:  # a tie: keep the first hit of each segment
        seg = np.repeat(np.arange(lens.size), lens)[hit]
        first = np.ones(hit.size, dtype=bool)
        first[1:] = seg[1:] != seg[:-1]
        hit = hit[first]
    return hit - starts


@dataclass
class _Rounds:
    """What generation records per tree level, for the bottom-up evaluation."""

    ops: list[np.ndarray] = field(default_factory=list)  # indices (within the level) of operators
    kinds: list[np.ndarray] = field(default_factory=list)  # operator type 0..3 per operator
    arity: list[np.ndarray] = field(default_factory=list)
    digits: list[np.ndarray] = field(default_factory=list)  # indices of digit nodes
    digit_values: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # nodes at this level


def sample_trees(
    tab: Tables, length: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``batch_size`` rows of exactly ``length`` tokens: (token ids [B, N], values, depth, ops).

    Token ids follow :class:`ListOps`'s vocabulary. ``length`` must be feasible and ≤ ``tab.size``.
    """
    a, width = tab.max_args, tab.size + 1
    w_flat, c_flat = tab.weights.ravel(), tab.conv.ravel()
    tokens = np.empty(batch_size * length, dtype=np.int64)
    depth = np.zeros(batch_size, dtype=np.int64)
    ops_count = np.zeros(batch_size, dtype=np.int64)
    rows = np.arange(batch_size, dtype=np.int64)
    start = rows * length  # flat position of each node's first token
    size = np.full(batch_size, length, dtype=np.int64)
    level = np.full(batch_size, tab.levels, dtype=np.int64)
    rec = _Rounds()
    arities = np.arange(2, a + 1)
    round_no = 0
    while rows.size:
        round_no += 1
        rec.counts.append(rows.size)
        is_op = size > 1
        dig = np.flatnonzero(~is_op)
        values = rng.integers(0, 10, size=dig.size)
        tokens[start[dig]] = _DIGIT_ID0 + values
        rec.digits.append(dig)
        rec.digit_values.append(values)
        op = np.flatnonzero(is_op)
        kinds = rng.integers(0, 4, size=op.size)
        rec.ops.append(op)
        rec.kinds.append(kinds)
        if op.size == 0:
            rec.arity.append(np.zeros(0, dtype=np.int64))
            break
        o_start, o_size, o_rows = start[op], size[op], rows[op]
        tokens[o_start] = _OP_ID0 + kinds
        tokens[o_start + o_size - 1] = _CLOSE_ID
        depth[o_rows] = round_no
        ops_count += np.bincount(o_rows, minlength=batch_size)
        child_level = level[op] - 1
        inner = o_size - 2
        # arity k ∝ C_{r-1,k}(s - 2)
        base = child_level * (a + 1) * width + inner
        k = 2 + _race_rows(c_flat[base[:, None] + arities[None, :] * width], rng)
        rec.arity.append(k)
        # child sizes, one slot at a time: x ∝ W_{r-1}(x) · C_{r-1,m}(rem - x), m children after it
        sizes = np.zeros((op.size, a), dtype=np.int64)
        rem = inner.copy()
        for j in range(a - 1):
            act = np.flatnonzero(k - j - 1 >= 1)
            if act.size == 0:
                break
            m = k[act] - j - 1
            r_act, rem_act = child_level[act], rem[act]
            lens = rem_act - m  # x = 1 … rem - m (every later child needs >= 1 token)
            choice = np.ones(act.size, dtype=np.int64)
            wide = np.flatnonzero(lens > 1)
            if wide.size:
                lw = lens[wide]
                offs = np.cumsum(lw) - lw
                pos = np.arange(int(lw.sum()), dtype=np.int64)
                iw = pos + np.repeat(r_act[wide] * width + 1 - offs, lw)
                ic = (
                    np.repeat(
                        (r_act[wide] * (a + 1) + m[wide]) * width + rem_act[wide] - 1 + offs, lw
                    )
                    - pos
                )
                choice[wide] = 1 + _race_segments(w_flat[iw] * c_flat[ic], lw, rng)
            sizes[act, j] = choice
            rem[act] -= choice
        sizes[np.arange(op.size), k - 1] = rem
        # the next level: every operator's children, in order
        mask = np.arange(a)[None, :] < k[:, None]
        offsets = np.cumsum(sizes, axis=1) - sizes
        start = (o_start[:, None] + 1 + offsets)[mask]
        size = sizes[mask]
        rows = np.repeat(o_rows, k)
        level = np.repeat(child_level, k)
    values = _evaluate_rounds(rec)
    return tokens.reshape(batch_size, length), values, depth, ops_count


def _evaluate_rounds(rec: _Rounds) -> np.ndarray:
    """Node values bottom-up: each operator reduces its children's segment of the next level."""
    below = np.zeros(0, dtype=np.int64)
    for lvl in range(len(rec.counts) - 1, -1, -1):
        vals = np.empty(rec.counts[lvl], dtype=np.int64)
        vals[rec.digits[lvl]] = rec.digit_values[lvl]
        op, kinds, k = rec.ops[lvl], rec.kinds[lvl], rec.arity[lvl]
        if op.size:
            starts = np.cumsum(k) - k
            seg = np.repeat(np.arange(op.size), k)
            ordered = np.sort(seg * 16 + below) - seg * 16
            med = (ordered[starts + (k - 1) // 2] + ordered[starts + k // 2]) // 2
            out = np.choose(
                kinds,
                [
                    ordered[starts],  # MIN
                    ordered[starts + k - 1],  # MAX
                    med,
                    np.add.reduceat(below, starts) % 10,  # SM
                ],
            )
            vals[op] = out
        below = vals
    return below


# --------------------------------------------------------------------- the task
def _value_p_ok(value: float) -> bool:
    return 0.0 < value < 1.0


class ListOps(Task):
    """ListOps expressions of exactly N tokens; the answer (a digit) at the final ``]``."""

    name = "listops"
    summary = "evaluate a nested MIN/MAX/MED/SM expression of N tokens; answer at the final ]"
    source = "NB18 format and law (conditioned on N tokens); LRA21 lengths; RC23 length splits"
    length_meaning = "tokens: 2·(operators) + (digits)"
    params_spec = (
        int_param(
            "max_args", 5, "largest number of arguments of an operator (LRA21: 10)", 2, (2, 3, 10)
        ),
        int_param(
            "max_depth",
            20,
            "NB18's depth cap: the root is at depth 1, nodes at max_depth are digits, so at most "
            "max_depth − 1 nested operators (LRA21: 10)",
            2,
            (2, 3, 10),
        ),
        Param(
            "value_p",
            float,
            0.25,
            "NB18's probability that a node above the depth cap is an operator",
            check=_value_p_ok,
            rule="a number in (0, 1)",
            examples=(0.1, 0.5),
        ),
        Param(
            "balanced",
            bool,
            False,
            "each answer 0 … 9 appears ⌊B/10⌋ or ⌈B/10⌉ times per batch",
            examples=(True,),
        ),
    )
    test_lengths = (MIN_LENGTH, 24)

    def _build_vocab(self) -> Sequence[str]:
        return [self.pad_token, *OPERATORS, CLOSE, *DIGITS]

    # ----------------------------------------------------------------- lengths
    def _key(self) -> tuple[int, int, float]:
        return self.params["max_args"], self.params["max_depth"], self.params["value_p"]

    def _params_text(self) -> str:
        return f"max_args={self.params['max_args']}, max_depth={self.params['max_depth']}"

    def tables(self, length: int) -> Tables:
        """The sampler's tables covering ``length`` (cached per parameters and size step)."""
        a, d, p = self._key()
        size = _table_size(length)
        work = (_levels(d, size) - 1) * (a - 1) * float(size) ** 2
        if work > TABLE_WORK_LIMIT:
            raise UserError(
                f"task '{self.name}': length {length} with {self._params_text()} is beyond the "
                f"exact sampler (its tables cost ~(max_depth − 2)·(max_args − 1)·N² = {work:.1e} "
                f"multiply-adds; the limit is {TABLE_WORK_LIMIT:.0e}): use a smaller length, "
                "max_args or max_depth"
            )
        return build_tables(a, d, p, size)

    def largest_length(self) -> int:
        """The most tokens any row can have with these parameters."""
        return largest_size(self.params["max_args"], self.params["max_depth"])

    def feasible_lengths(self, lo: int, hi: int) -> list[int]:
        """Every feasible N with ``lo <= N < hi``, ascending."""
        hi = min(hi, self.largest_length() + 1)
        lo = max(lo, MIN_LENGTH)
        if hi <= lo:
            return []
        tab = self.tables(hi - 1)
        ok = tab.feasible[tab.levels, lo:hi]
        return [lo + int(i) for i in np.flatnonzero(ok)]

    def check_length(self, length: int) -> None:
        largest = self.largest_length()
        if length >= MIN_LENGTH:
            tab = self.tables(min(length, largest))  # past the work limit: that error
            if length <= largest and tab.feasible[tab.levels, length]:
                if tab.weights[tab.levels, length] <= 0:  # the tilts prevent it; never silent
                    raise UserError(
                        f"task '{self.name}': length {length} is outside the sampler's float "
                        f"range with {self._params_text()}, value_p={self.params['value_p']}"
                    )
                return
        near = " and ".join(str(n) for n in self._nearest_feasible(length))
        raise UserError(
            f"task '{self.name}': no expression has exactly {length} tokens with "
            f"{self._params_text()} (N = 2·operators + digits, {MIN_LENGTH} … {largest}); "
            f"nearest feasible lengths: {near}"
        )

    def _nearest_feasible(self, length: int) -> list[int]:
        """The largest feasible length below ``length`` and the smallest above (where they exist;
        the search above widens from 64 lengths and stops at the tables' work limit)."""
        largest = self.largest_length()
        if length > largest:
            return [largest]  # the full tree
        below = self.feasible_lengths(MIN_LENGTH, length)[-1:]
        above: list[int] = []
        window = 64
        while not above and length + 1 <= largest:
            try:
                above = self.feasible_lengths(length + 1, length + 1 + window)[:1]
            except UserError:
                break
            if length + window >= largest:
                break
            window *= 4
        return below + above

    def max_tokens(self, length: int) -> int:
        return length

    # ----------------------------------------------------------------- generation
    def _draw(
        self, length: int, count: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return sample_trees(self.tables(length), length, count, rng)

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        if self.params["balanced"]:
            tokens, values, depth, ops = self._balanced(length, batch_size, rng)
        else:
            tokens, values, depth, ops = self._draw(length, batch_size, rng)
        batch = single_answer_batch(tokens, _DIGIT_ID0 + values)
        batch.meta["depth"] = depth
        batch.meta["ops"] = ops
        return batch

    def _balanced(
        self, length: int, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Quotas ⌊B/10⌋ per value plus one for B mod 10 distinct values drawn uniformly; rows are
        drawn in rounds and each label keeps its first rows in generation order until its quota is
        met; then the labels are put in a random order."""
        quota = np.full(10, batch_size // 10, dtype=np.int64)
        quota[rng.permutation(10)[: batch_size % 10]] += 1
        kept: list[tuple[np.ndarray, ...]] = []
        have = np.zeros(10, dtype=np.int64)
        seen = np.zeros(10, dtype=np.int64)
        draw = batch_size
        while (have < quota).any():
            tokens, values, depth, ops = self._draw(length, draw, rng)
            seen += np.bincount(values, minlength=10)
            # rank of each row among this round's rows of its value, offset by what is kept
            order = np.argsort(values, kind="stable")
            counts = np.bincount(values, minlength=10)
            rank = np.empty(draw, dtype=np.int64)
            rank[order] = np.arange(draw) - np.repeat(np.cumsum(counts) - counts, counts)
            take = rank < (quota - have)[values]
            kept.append((tokens[take], values[take], depth[take], ops[take]))
            have += np.bincount(values[take], minlength=10)
            need = quota - have
            if (need > 0).any():  # enough for the rarest missing value, by the rates seen so far
                rate = (seen + 1) / (seen.sum() + 10)
                draw = int(min(max(64, np.ceil(1.2 * (need / rate).max())), 16 * batch_size))
        tokens, values, depth, ops = (np.concatenate(parts) for parts in zip(*kept, strict=True))
        by_value = np.argsort(values, kind="stable")  # grouped by value, generation order
        labels = rng.permutation(np.repeat(np.arange(10), quota))
        slot = np.empty(batch_size, dtype=np.int64)  # output row b takes the next row of its label
        order = np.argsort(labels, kind="stable")
        slot[order] = np.arange(batch_size)
        rows = by_value[slot]
        return tokens[rows], values[rows], depth[rows], ops[rows]

    def solve(self, tokens: Sequence[str]) -> list[str]:
        return [str(evaluate(tokens))]


# --------------------------------------------------------------------- bins for the protocol
def draw_bin_lengths(
    task: ListOps, lengths: LengthBin, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` lengths drawn uniformly over the feasible N of the bin (int64, as drawn)."""
    feasible = task.feasible_lengths(lengths.lo, lengths.hi)
    if not feasible:
        raise UserError(
            f"task 'listops': no feasible length in [{lengths.lo}, {lengths.hi}) with "
            f"{task._params_text()}"
        )
    return np.asarray(feasible, dtype=np.int64)[rng.integers(0, len(feasible), size=count)]


def sample_bin(task: ListOps, lengths: LengthBin, count: int, seed: int) -> list[tuple[int, Batch]]:
    """``count`` rows of a bin: N uniform over its feasible lengths, then one ``sample`` call per
    distinct N (ascending), all from one generator seeded with ``seed``. Returns (N, batch) pairs
    whose batch sizes sum to ``count``."""
    rng = np.random.default_rng(seed)
    drawn = draw_bin_lengths(task, lengths, count, rng)
    values, counts = np.unique(drawn, return_counts=True)
    return [
        (int(n), task.sample(int(n), int(c), rng=rng)) for n, c in zip(values, counts, strict=True)
    ]
