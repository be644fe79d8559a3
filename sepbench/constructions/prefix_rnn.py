"""RNN upper bounds that store the whole prefix — the matching side of B24-T3 and B24-T11.

Two registered constructions, sigmoid Elman networks with one-hot inputs whose units are exact
bits (threshold gates of gain L, see :mod:`sepbench.constructions.rnn_weights`):

* ``index_lookup_prefix_rnn`` — width (N + 1)·⌈log2 k⌉;
* ``string_equality_prefix_rnn`` — width (N + 3)·⌈log2 k⌉ + 2.

**The delay line.** Both keep the input in a shift register of slots of b = ⌈log2 k⌉ units:
slot 0 receives the binary code β of the token just read (0 for non-symbols) and slot j
receives slot j − 1, at *every* step (σ(L·(S_{j−1,u} − 1/2))): after reading token i, slot j
holds the code of token i − j. No pointer, no phase and no multiplexer is needed, because the
position of a stored symbol is a function of time alone — this is what makes one threshold
unit per stored bit enough (a "write here or keep" slot would need a pointer per slot and a
mux, which one threshold unit cannot compute).

**Tightness** (what these constructions are for). B24-T3: an RNN solving index lookup has
m·p ≥ N·log2 k (the state after the N symbols must determine all of them); B24-T11 in the
task's convention (N symbols per half) has m·p ≥ N·log2 k as well. Here every unit holds one
bit (a saturated sigmoid has two stable values), so the state holds (N + 1)·⌈log2 k⌉ bits
(index lookup) or (N + 3)·⌈log2 k⌉ + 2 bits (string equality): within a factor
(1 + 3/N)·⌈log2 k⌉/log2 k (+ 2 bits) of the lower bound, i.e. tight up to constants — exactly
tight (N + 1 vs N) for k = 2. Packing ⌊p/log2 k⌋ symbols into each unit would divide the
width by that factor to ≈ N·log2 k / p, matching the bound at every precision p; that needs
units holding p-bit integers exactly and digit extraction, which these saturated-sigmoid
networks do not do (not built).

**Precision.** Exact in float32 at any N (every unit is a bit; margins L/2); like the H20
stacks they need O(1) mantissa bits, not O(log N).
"""

from __future__ import annotations

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


def index_prefix_width(length: int, alphabet: int) -> int:
    """(N + 1) slots of ⌈log2 k⌉ bits."""
    return (length + 1) * code_bits(alphabet)


def equality_prefix_width(length: int, alphabet: int) -> int:
    """(N + 1) slots of b bits + 2b mismatch units + a phase unit + a latch."""
    b = code_bits(alphabet)
    return (length + 1) * b + 2 * b + 2


def _delay_line(
    width: int, vocab: int, slots: int, b: int, codes: dict[int, np.ndarray], scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slots 0 … slots − 1 of b units (slot j, bit u at j·b + u): slot 0 = code of the token
    (``codes``: token id → b bits; other tokens write 0), slot j = slot j − 1."""
    L = scale
    w_ih = np.zeros((width, vocab))
    w_hh = np.zeros((width, width))
    bias = np.zeros(width)
    for u in range(b):
        bias[u] = -0.5 * L
        for idx, code in codes.items():
            w_ih[u, idx] = L * code[u]
        for j in range(1, slots):
            w_hh[j * b + u, (j - 1) * b + u] = L
            bias[j * b + u] = -0.5 * L
    return w_ih, w_hh, bias


def _readout_code(ro: Readout, token: int, code: np.ndarray, units: list[np.ndarray]) -> None:
    """logit = Σ_u [β_u y_u + (1 − β_u)(1 − y_u)] = Σ_u (2β_u − 1)·y_u + (b − |β|), summed over
    the unit groups ``units`` (at most one of which is nonzero): b for the stored code, ≤ b − 1
    for any other."""
    ro.bias[token] = float(len(code) - code.sum())
    for group in units:
        ro.weight[token, group] = 2 * code - 1


@register(
    "index_lookup_prefix_rnn",
    task="index_lookup",
    result_id="B24-T3",
    form="linear",
    summary="sigmoid Elman delay line storing every symbol; the query keeps only slot N − p",
)
def index_lookup_prefix_rnn(
    length: int, alphabet: int = 4, max_length: int | None = None, scale: float = SCALE
) -> HandBuilt:
    """Index lookup by storing the prefix: width (N + 1)·⌈log2 k⌉, tight for B24-T3.

    **Data steps**: the delay line (module docstring) — after N symbols slot j holds
    β(x_{N−j}), j = 0 … N − 1, and slot N is empty.

    **Query step** ``@p``: slot 0 gets 0 (not a symbol) and the shift continues, but gated:
    slot j + 1 = slot j ∧ (data token ∨ q = N − j), i.e. σ(L·(S_{j,u} + [data] + [q = N − j]
    − 3/2)) — a threshold of the state bit and the token. Only x_p, at slot N − p, survives
    (into slot N − p + 1); every other slot becomes 0.

    **Readout**: logit(s_c) = Σ_{slots} Σ_u (2β_u(c) − 1)·y_u + (b − |β(c)|): b for c = x_p,
    ≤ b − 1 for any other symbol (an all-zero code is symbol s0's, which then wins by 1), −1
    for non-symbols. Gap 1.

    **Width** (N + 1)·⌈log2 k⌉ = slots 0 … N (x_1 reaches slot N at the query step).
    """
    scale = check_scale(scale)
    extra = {} if max_length is None else {"max_length": max_length}
    task = tasks.make("index_lookup", alphabet=alphabet, **extra)
    task.check_length(length)
    n, b, L = length, code_bits(alphabet), scale
    width = index_prefix_width(n, alphabet)
    vocab = len(task.vocab)
    sym = {task.token_to_id[f"s{c}"]: binary(c, b) for c in range(alphabet)}
    w_ih, w_hh, bias = _delay_line(width, vocab, n + 1, b, sym, L)
    for j in range(1, n + 1):
        rows = j * b + np.arange(b)
        bias[rows] = -1.5 * L
        for idx in sym:
            w_ih[rows, idx] = L  # data: plain shift
        p = n - (j - 1)  # slot j − 1 holds x_p at the query step
        w_ih[rows, task.token_to_id[f"@{p}"]] = L
    ro = Readout(vocab, width)
    slots = [j * b + np.arange(b) for j in range(n + 1)]
    for c in range(alphabet):
        _readout_code(ro, task.token_to_id[f"s{c}"], binary(c, b), slots)
    model = onehot_rnn("elman", vocab, width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="B24-T3",
        width_formula="(N + 1)·⌈log2 k⌉ (bits of state; lower bound N·log2 k)",
        task=task,
        length=length,
        width_params={"alphabet": alphabet},
        notes="A delay line instead of addressed slots: a stored symbol's slot is a function of "
        "time, so no pointer units are needed. Units are 1-bit (no packing).",
    )


@register(
    "string_equality_prefix_rnn",
    task="string_equality",
    result_id="B24-T11",
    form="linear",
    summary="sigmoid Elman delay line: x_t reaches slot N exactly when y_t is read",
)
def string_equality_prefix_rnn(
    length: int, alphabet: int = 2, negatives: str = "mixed", scale: float = SCALE
) -> HandBuilt:
    """String equality by storing the prefix: width (N + 3)·⌈log2 k⌉ + 2, tight for B24-T11.

    **Delay line** (module docstring) over every token (``|`` writes 0): before the step that
    reads y_t (token 2 + N + t − 1, 1-based N + 1 + t) slot N holds β(x_t) — the delay is the
    same for every t — and during the first half and at ``|`` slot N is empty.

    **Comparison** of slot N with the token being read, b + b units, no pointer:

    * M1_u = S_{N,u} ∧ ¬β_u(y):      σ(L·(S_{N,u} − β_u(tok) − 1/2)) for symbols (never for ``|``);
    * M2_u = Φ ∧ ¬S_{N,u} ∧ β_u(y):  σ(L·(Φ − S_{N,u} + β_u(tok) − 3/2)) for symbols;
    * phase Φ = "``|`` has been read": σ(L·(2Φ + [tok = |] − 1/2)) — needed by M2 only, since
      an empty slot N is indistinguishable from a stored 0 bit in the first half;
    * latch E_t = E_{t−1} ∨ Σ_u (M1_u + M2_u)_{t−1}: σ(L·(E + ΣM − 1/2)).

    *Fix to the obvious design:* comparing in place (turn slot t's bits into "x_t ≠ y_t"
    flags) is impossible for a threshold unit — the first half must write β(x) (increasing in
    the token's bit) and the second half must clear it on a match (decreasing in the token's
    bit), and the token's input weight cannot change sign with the phase. Hence the separate
    2b comparison units at a fixed slot.

    **Readout** (last position): logit(neq) = E + Σ_u (M1_u + M2_u) − 1/2, logit(eq) = 0.
    Gap 1/2.

    **Width** (N + 1)·b + 2b + 2 = (N + 3)·⌈log2 k⌉ + 2 (N + 5 for k = 2) against the lower
    bound N·log2 k bits.
    """
    scale = check_scale(scale)
    task = tasks.make("string_equality", alphabet=alphabet, negatives=negatives)
    task.check_length(length)
    n, b, L = length, code_bits(alphabet), scale
    width = equality_prefix_width(n, alphabet)
    vocab = len(task.vocab)
    sym = {task.token_to_id[f"s{c}"]: binary(c, b) for c in range(alphabet)}
    sep = task.token_to_id["|"]
    w_ih, w_hh, bias = _delay_line(width, vocab, n + 1, b, sym, L)
    last = n * b + np.arange(b)  # slot N
    m1 = (n + 1) * b + np.arange(b)
    m2 = (n + 2) * b + np.arange(b)
    phase, latch = (n + 3) * b, (n + 3) * b + 1
    for u in range(b):
        w_hh[m1[u], last[u]] = L
        bias[m1[u]] = -0.5 * L
        w_hh[m2[u], last[u]] = -L
        w_hh[m2[u], phase] = L
        bias[m2[u]] = -1.5 * L
        for idx, code in sym.items():
            w_ih[m1[u], idx] = -L * code[u]
            w_ih[m2[u], idx] = L * code[u]
        w_ih[m1[u], sep] = -L
        w_ih[m2[u], sep] = -2 * L
    w_hh[phase, phase] = 2 * L
    w_ih[phase, sep] = L
    bias[phase] = -0.5 * L
    w_hh[latch, [latch, *m1, *m2]] = L
    bias[latch] = -0.5 * L
    ro = Readout(vocab, width)
    eq, neq = task.token_to_id["eq"], task.token_to_id["neq"]
    ro.bias[eq], ro.bias[neq] = 0.0, -0.5
    ro.weight[neq, [latch, *m1, *m2]] = 1.0
    model = onehot_rnn("elman", vocab, width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="B24-T11",
        width_formula="(N + 3)·⌈log2 k⌉ + 2 (bits of state; lower bound N·log2 k)",
        task=task,
        length=length,
        width_params={"alphabet": alphabet},
        notes="Delay line + 2⌈log2 k⌉ comparison units at slot N + phase + latch; in-place "
        "comparison is impossible for threshold units (sign flip between halves).",
    )
