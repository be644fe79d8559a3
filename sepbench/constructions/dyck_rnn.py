"""H20: bounded-depth stacks in an RNN — Dyck-(k, D) next-closer prediction and recognition.

Three registered constructions, all on the classes ``models.build`` makes (one-hot inputs, so
column v of ``rnn.weight_ih_l0`` is token v's input weight):

* ``dyck_next_elman`` — sigmoid Elman network, width 6D·⌈log2 k⌉ − 2D (H20);
* ``dyck_next_lstm`` — LSTM, width 3D·⌈log2 k⌉ − D (H20);
* ``dyck_recognize_rnn`` — the Elman stack plus an error latch and a final empty-stack test,
  answering ``yes``/``no`` for the ``dyck`` task; width 6D·⌈log2 k⌉ − 2D + 2⌈log2 k⌉ + 2.

**Slot code (H20).** With b = ⌈log2 k⌉ bits, a stack slot is s = 3b − 1 units; type i is
``code(i) = [β(i), 1 − β(i), 1_(b−1)]`` (β = binary code) and an empty slot is all zeros. The
readout row ``r_i = [β(i), 1 − β(i), −1_(b−1)]`` gives
r_i·code(j) = (b − Hamming(i, j)) − (b − 1) = 1 − Hamming(i, j): exactly 1 for j = i, ≤ 0 for
any other type, 0 on an empty slot. The first 2b units of a full slot hold exactly b ones.

**Readout of the next closer.** logit(``)i``) = r_i·top, logit(``_``) = 1/2 − Σ_{u<2b} top_u,
every other token −1. A top of type i gives ``)i`` 1, other closers ≤ 0 and ``_`` ≤ −1/2; an
empty top gives ``_`` 1/2 and every closer 0. The decision gap is ≥ 1/2 in every case.

**Precision.** Every unit is a threshold gate σ(L·(v − θ)) or a tanh(L·v) with v an integer
combination of 0/1 values and margin ≥ L/2 (L = ``scale``, default 10⁴). In float32 these
return exactly 0.0 / 1.0, so the state is an exact bit vector after every step and nothing
accumulates with N: the constructions are verified at N = 2048 and would hold at any N. The
precision they need is independent of N: a float format must (i) represent L·(D + 3) (the
largest pre-activation; within float16's range for D ≤ 3 at L = 10⁴) and (ii) round the
integer combinations with error below L/2, i.e. about log2(2(D + 3)) mantissa bits — any
IEEE format, bfloat16 included. L only has to make the sigmoids saturate: L ≥ 2·17.3 already
rounds σ(L/2) to 1.0 in float32; the ~10⁴ of H20 is kept as the default.

Only valid continuations matter for ``dyck_next`` (its inputs are Dyck strings); a push onto a
full stack drops the bottom slot and a pop of an empty stack leaves it empty. The recogniser
notices both.
"""

from __future__ import annotations

import math

import numpy as np

from sepbench import tasks
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.rnn_weights import (
    SCALE,
    Readout,
    binary,
    check_scale,
    code_bits,
    onehot_rnn,
)
from sepbench.tasks.dyck import EMPTY, parse_bracket

THETA = math.tanh(1.0)
"""tanh(1): what an LSTM unit with cell 1 and open output gate emits."""


def slot_size(types: int) -> int:
    """s = 3b − 1 units per stack slot, b = ⌈log2 k⌉ (b = 1 for k = 1)."""
    return 3 * code_bits(types) - 1


def slot_code(kind: int, types: int) -> np.ndarray:
    """H20's code of bracket type ``kind``: [β(i), 1 − β(i), 1_(b−1)]."""
    b = code_bits(types)
    beta = binary(kind, b)
    return np.concatenate([beta, 1.0 - beta, np.ones(b - 1)])


def slot_readout(kind: int, types: int) -> np.ndarray:
    """H20's readout row r_i = [β(i), 1 − β(i), −1_(b−1)]; r_i·code(j) = 1 − Hamming(i, j)."""
    b = code_bits(types)
    beta = binary(kind, b)
    return np.concatenate([beta, 1.0 - beta, -np.ones(b - 1)])


def elman_width(types: int, depth: int) -> int:
    """6D·b − 2D = 2·D·s (push half + pop half)."""
    return 2 * depth * slot_size(types)


def lstm_width(types: int, depth: int) -> int:
    """3D·b − D = D·s (the cell is the stack)."""
    return depth * slot_size(types)


def recognizer_width(types: int, depth: int) -> int:
    """The Elman stack + 2b mismatch units + 1 overflow unit + 1 latch."""
    return elman_width(types, depth) + 2 * code_bits(types) + 2


def _tokens(task: tasks.Task) -> list[tuple[int, bool, int]]:
    """(token id, is opener, type) for every bracket token of a dyck/dyck_next task."""
    out = []
    for tok, idx in task.token_to_id.items():
        if tok and tok[0] in "()":
            opener, kind = parse_bracket(tok)
            out.append((idx, opener, kind))
    return out


def _dyck_task(name: str, length: int, types: int, depth: int) -> tasks.Task:
    task = tasks.make(name, types=types, depth=depth)
    task.check_length(length)
    return task


# --------------------------------------------------------------------- the Elman stack
def _elman_stack(
    task: tasks.Task, width: int, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[int]]:
    """The push/pop Elman stack in the first 2·D·s units of a ``width``-unit network.

    Returns ``(w_ih, w_hh, bias, top_p, top_q)`` (float64, ``bias`` for ``bias_ih``) and the
    unit indices of slot 0 of the push and pop halves; the top of the stack is their sum.
    Units: push slot j, unit u at ``j·s + u``; pop slot j, unit u at ``D·s + j·s + u``.
    """
    k, depth = task.params["types"], task.params["depth"]
    s = slot_size(k)
    L = scale
    vocab = len(task.vocab)
    w_ih = np.zeros((width, vocab))
    w_hh = np.zeros((width, width))
    bias = np.zeros(width)

    def push(j: int, u: int) -> int:
        return j * s + u

    def pop(j: int, u: int) -> int:
        return depth * s + j * s + u

    brackets = _tokens(task)
    for u in range(s):
        # push slot 0: the opener's code; 0 after a closer
        bias[push(0, u)] = -0.5 * L
        for idx, opener, kind in brackets:
            if opener:
                w_ih[push(0, u), idx] = L * slot_code(kind, k)[u]
        # push slot j ≥ 1: opener AND stack slot j − 1 (stack = push half + pop half)
        for j in range(1, depth):
            row = push(j, u)
            w_hh[row, push(j - 1, u)] = L
            w_hh[row, pop(j - 1, u)] = L
            bias[row] = -1.5 * L
            for idx, opener, _ in brackets:
                if opener:
                    w_ih[row, idx] = L
        # pop slot j ≤ D − 2: closer AND stack slot j + 1; pop slot D − 1 is always empty
        for j in range(depth):
            row = pop(j, u)
            bias[row] = -1.5 * L if j < depth - 1 else -0.5 * L
            if j < depth - 1:
                w_hh[row, push(j + 1, u)] = L
                w_hh[row, pop(j + 1, u)] = L
                for idx, opener, _ in brackets:
                    if not opener:
                        w_ih[row, idx] = L
    top_p = [push(0, u) for u in range(s)]
    top_q = [pop(0, u) for u in range(s)]
    return w_ih, w_hh, bias, top_p, top_q


def _next_closer_readout(
    task: tasks.Task, width: int, top: list[list[int]], gain: float
) -> Readout:
    """logit()i) = r_i·top, logit(_) = 1/2 − Σ_{u<2b} top_u (``top`` lists unit groups whose
    sum, times ``gain``, is the top slot)."""
    k = task.params["types"]
    b = code_bits(k)
    ro = Readout(len(task.vocab), width)
    for idx, opener, kind in _tokens(task):
        if not opener:
            ro.bias[idx] = 0.0
            for group in top:
                ro.weight[idx, group] = gain * slot_readout(kind, k)
    e = task.token_to_id[EMPTY]
    ro.bias[e] = 0.5
    for group in top:
        ro.weight[e, group[: 2 * b]] = -gain
    return ro


@register(
    "dyck_next_elman",
    task="dyck_next",
    result_id="H20",
    form="D log k",
    summary="sigmoid Elman RNN holding a D-slot stack in a push half and a pop half",
)
def dyck_next_elman(length: int, types: int = 2, depth: int = 2, scale: float = SCALE) -> HandBuilt:
    """H20's Elman construction: Dyck-(k, D) next-closer prediction with 6D·⌈log2 k⌉ − 2D units.

    **State.** Two halves of D slots each (s = 3b − 1 units a slot, b = ⌈log2 k⌉): P (push)
    and Q (pop). Invariant: after an opener Q = 0 and P is the stack (slot 0 = top); after a
    closer P = 0 and Q is the stack; so the stack is always S = P + Q, a linear function of
    the state, and the initial zero state is the empty stack.

    **Update** (threshold gates, gain L):

    * P₀ = code(i) on an opener of type i, else 0:   σ(L·(code_i[u] − 1/2));
    * P_j = opener ∧ S_{j−1} (j ≥ 1):                σ(L·(S_{j−1,u} + [opener] − 3/2));
    * Q_j = closer ∧ S_{j+1} (j ≤ D − 2):            σ(L·(S_{j+1,u} + [closer] − 3/2));
    * Q_{D−1} = 0 (nothing lies below the bottom):   σ(−L/2).

    Why two halves: one threshold unit cannot compute "opener ? S_{j−1} : S_{j+1}" (a
    multiplexer is not linearly separable), so the shift-down and the shift-up live in
    different units and the next step reads their sum.

    **Width** 2·D·s = 2D(3b − 1) = 6D·⌈log2 k⌉ − 2D (H20), constant in N. The pop slot
    D − 1 is constant zero; it is kept so that the width is H20's exactly ((2D − 1)·s units
    would do). k that is not a power of 2 uses ⌈log2 k⌉ bits (unused codes never occur);
    k = 1 uses b = 1 (H20's formula with log2 1 = 0 would be negative), width 4D.
    """
    scale = check_scale(scale)
    task = _dyck_task("dyck_next", length, types, depth)
    width = elman_width(types, depth)
    w_ih, w_hh, bias, top_p, top_q = _elman_stack(task, width, scale)
    ro = _next_closer_readout(task, width, [top_p, top_q], 1.0)
    model = onehot_rnn("elman", len(task.vocab), width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="H20",
        width_formula="6D·⌈log2 k⌉ − 2D",
        task=task,
        length=length,
        width_params={"types": types, "depth": depth},
        notes="k = 1 is coded with one bit (width 4D); ⌈log2 k⌉ for k not a power of 2.",
    )


@register(
    "dyck_next_lstm",
    task="dyck_next",
    result_id="H20",
    form="D log k",
    summary="LSTM whose cell holds the D-slot stack; gates push, pop and expose the top",
)
def dyck_next_lstm(length: int, types: int = 2, depth: int = 2, scale: float = SCALE) -> HandBuilt:
    """H20's LSTM construction: Dyck-(k, D) next-closer prediction with 3D·⌈log2 k⌉ − D units.

    **State.** The cell c holds the stack bottom-up: slot j (units j·s … j·s + s − 1) is the
    (j+1)-th bracket from the bottom, code(i) or 0; a depth-d stack fills slots 0 … d − 1.
    Every gate is exact (0 or 1) and g = tanh(L·code_i[u]) ∈ {0, 1}, so c stays a bit vector.
    The output gate exposes the top slot only: h = tanh(1)·(top slot), 0 elsewhere. From h
    the gates read where the top is: T_τ = Σ_{u<2b} h_{τ,u} / (b·tanh 1) is 1 iff slot τ is the
    top (a full slot has exactly b ones in its first 2b units), all T = 0 iff the stack is empty.

    **Gates for slot j** (same for all its units), with τ the old top's slot:

    * input  i_j = opener ∧ (τ = j − 1):  σ(L·([opener] + T_{j−1} − 3/2)); i_0 = opener ∧
      empty: σ(L·([opener] − Σ_τ T_τ − 1/2)) — the opener is written into the first empty slot;
    * forget f_j = ¬(closer ∧ τ = j):     σ(L·(3/2 − [closer] − T_j)) — a closer clears the top;
    * cell input g_{j,u} = tanh(L·code_i[u]) on an opener of type i (0 on closers);
    * output o_j = [j ≥ new top]: with Σ_τ (τ + 1)·T_τ = d the old depth,
      σ(L·(j + 1/2 − d)) after an opener and σ(L·(j + 5/2 − d)) after a closer.

    *Fix to theory.md* ("the output gate exposes only the top slot"): the gate cannot be the
    indicator of the new top itself — "opener ∧ τ = j − 1 or closer ∧ τ = j + 1" is a
    multiplexer, not a threshold function of the token and h. It does not have to be: the gate
    may also open on slots that are empty after the step (they emit 0), so o_j = [j ≥ new top]
    suffices, and that is a threshold of the token's bias and the linear d. Slots below the top
    stay hidden; the top is the only nonzero slot of h, which is what the gates above read.

    **Readout** as the Elman construction's, on the top slot = h / tanh(1) summed over slots.

    **Width** D·s = D(3b − 1) = 3D·⌈log2 k⌉ − D (H20); the state carries 2·width floats (h and
    c), as for every LSTM. Same conventions for k as ``dyck_next_elman``.
    """
    scale = check_scale(scale)
    task = _dyck_task("dyck_next", length, types, depth)
    k, d_max = types, depth
    b = code_bits(k)
    s = slot_size(k)
    width = lstm_width(k, d_max)
    vocab = len(task.vocab)
    L = scale
    gi, gf, gg, go = (slice(n * width, (n + 1) * width) for n in range(4))
    w_ih = np.zeros((4 * width, vocab))
    w_hh = np.zeros((4 * width, width))
    bias = np.zeros(4 * width)
    brackets = _tokens(task)
    # T_τ = (1/(b·tanh 1))·Σ_{u<2b} h_{τ,u}: coefficient rows over h for "slot τ is the top"
    detect = np.zeros((d_max, width))
    for tau in range(d_max):
        detect[tau, tau * s : tau * s + 2 * b] = 1.0 / (b * THETA)
    depth_row = sum((tau + 1) * detect[tau] for tau in range(d_max))  # = old depth d
    for j in range(d_max):
        rows = np.arange(j * s, (j + 1) * s)
        # input gate
        ri = rows + gi.start
        if j == 0:
            w_hh[ri] = -L * detect.sum(axis=0)
            bias[ri] = -0.5 * L
        else:
            w_hh[ri] = L * detect[j - 1]
            bias[ri] = -1.5 * L
        # forget gate
        rf = rows + gf.start
        w_hh[rf] = -L * detect[j]
        bias[rf] = 1.5 * L
        # output gate: bias per token class, minus L·d
        ro_ = rows + go.start
        w_hh[ro_] = -L * depth_row
        for idx, opener, kind in brackets:
            if opener:
                w_ih[ri, idx] = L
                w_ih[ro_, idx] = L * (j + 0.5)
                w_ih[rows + gg.start, idx] = L * slot_code(kind, k)
            else:
                w_ih[rf, idx] = -L
                w_ih[ro_, idx] = L * (j + 2.5)
    top = [list(range(j * s, (j + 1) * s)) for j in range(d_max)]
    ro = _next_closer_readout(task, width, top, 1.0 / THETA)
    model = onehot_rnn("lstm", vocab, width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="H20",
        width_formula="3D·⌈log2 k⌉ − D",
        task=task,
        length=length,
        width_params={"types": types, "depth": depth},
        notes="Output gate o_j = [j ≥ new top] instead of the top's indicator (a multiplexer, "
        "not a threshold gate); empty slots it also opens emit 0.",
    )


@register(
    "dyck_recognize_rnn",
    task="dyck",
    result_id="H20",
    form="D log k",
    summary="H20's Elman stack + an error latch and a final empty-stack test (yes/no)",
)
def dyck_recognize_rnn(
    length: int, types: int = 2, depth: int = 2, scale: float = SCALE
) -> HandBuilt:
    """Recognition of Dyck-(k, D) (task ``dyck``): H20's Elman stack, an error latch and a final
    empty-stack test; width 6D·⌈log2 k⌉ − 2D + 2⌈log2 k⌉ + 2.

    A string leaves Dyck-(k, D) exactly when, reading left to right with the stack S, (a) a
    closer of type i meets an empty stack or a top of another type, (b) an opener meets a full
    stack (D open brackets), or (c) the stack is not empty at the end. Units beyond the stack:

    * **mismatch** M_u, u < 2b:  M_u = closer_i ∧ code_i[u] = 1 ∧ S_{0,u} = 0, i.e.
      σ(L·(code_i[u]·[closer i] − S_{0,u} − 1/2)). Both code(i) and a full top hold exactly b
      ones in their first 2b units, so some M_u fires iff the top is not of type i — and an
      empty top (all zeros) makes every u with code_i[u] = 1 fire: (a) in 2b units.
    * **overflow** V = opener ∧ slot D − 1 full: σ(L·([opener] + Σ_{u<2b} S_{D−1,u}/b − 3/2)).
    * **latch** E_t = E_{t−1} ∨ V_{t−1} ∨ ⋁_u M_{u,t−1}: σ(L·(E + V + Σ_u M_u − 1/2)).

    Why not fewer: a single unit reading the token and the top cannot flag "closer of the
    wrong type" (for k = 2 the four cases (type, top) ∈ {0,1}² with the error on the
    anti-diagonal are not linearly separable), so the check needs units of its own, evaluated
    one step before the latch absorbs them; the latch therefore lags one step and the readout
    adds the current step's flags itself.

    **Readout** (last position): logit(yes) = 1/2 − (E + V + Σ_u M_u + Σ_{u<2b} S_{0,u}),
    logit(no) = 0: ``yes`` iff no error so far, none now, and an empty stack (the last term is
    b ≥ 1 when the stack is not empty). Gap ≥ 1/2.

    **Width** 2D(3b − 1) + 2b + 2 = 6D·⌈log2 k⌉ − 2D + 2⌈log2 k⌉ + 2 (12 for k = D = 2);
    the extra 2b + 2 units are the honest price of recognition over H20's generator.
    """
    scale = check_scale(scale)
    task = _dyck_task("dyck", length, types, depth)
    k, d_max = types, depth
    b = code_bits(k)
    s = slot_size(k)
    L = scale
    base = elman_width(k, d_max)
    width = recognizer_width(k, d_max)
    w_ih, w_hh, bias, top_p, top_q = _elman_stack(task, width, scale)
    mism = list(range(base, base + 2 * b))
    over, latch = base + 2 * b, base + 2 * b + 1
    brackets = _tokens(task)
    for u, row in enumerate(mism):
        w_hh[row, top_p[u]] = -L
        w_hh[row, top_q[u]] = -L
        bias[row] = -0.5 * L
        for idx, opener, kind in brackets:
            if not opener:
                w_ih[row, idx] = L * slot_code(kind, k)[u]
    bottom_p = [(d_max - 1) * s + u for u in range(2 * b)]
    bottom_q = [d_max * s + (d_max - 1) * s + u for u in range(2 * b)]
    w_hh[over, bottom_p] = L / b
    w_hh[over, bottom_q] = L / b
    bias[over] = -1.5 * L
    for idx, opener, _ in brackets:
        if opener:
            w_ih[over, idx] = L
    w_hh[latch, [latch, over, *mism]] = L
    bias[latch] = -0.5 * L
    ro = Readout(len(task.vocab), width)
    yes, no = task.token_to_id["yes"], task.token_to_id["no"]
    ro.bias[yes], ro.bias[no] = 0.5, 0.0
    ro.weight[yes, [latch, over, *mism]] = -1.0
    ro.weight[yes, top_p[: 2 * b]] = -1.0
    ro.weight[yes, top_q[: 2 * b]] = -1.0
    model = onehot_rnn("elman", len(task.vocab), width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="H20",
        width_formula="6D·⌈log2 k⌉ − 2D + 2⌈log2 k⌉ + 2",
        task=task,
        length=length,
        width_params={"types": types, "depth": depth},
        notes="Recognition adds 2⌈log2 k⌉ mismatch units, an overflow unit and a latch to "
        "H20's stack (theory.md names the latch but not its width).",
    )
