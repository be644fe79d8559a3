"""B24-E: Dyck-(2, 2) — in general Dyck-(k, D) — recognised by a finite automaton run as a
one-hot sigmoid Elman RNN of constant width.

The minimal DFA of Dyck-(k, D) has one live state per stack of depth ≤ D (Σ_{d=0}^{D} k^d of
them: 7 for k = D = 2 — B24's "7-state automaton") and a dead state. Registered as
``dyck22_automaton`` (defaults k = D = 2; any k ≥ 1, D ≥ 1 is accepted).
"""

from __future__ import annotations

import itertools

import numpy as np

from sepbench import tasks
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.rnn_weights import SCALE, Readout, check_scale, onehot_rnn
from sepbench.tasks.dyck import parse_bracket

Stack = tuple[int, ...]


def automaton_width(types: int, depth: int) -> int:
    """Σ_{d=1}^{D} k^d push units + Σ_{d=2}^{D} k^d pop units + (k + 1) dead units."""
    push = sum(types**d for d in range(1, depth + 1))
    pop = sum(types**d for d in range(2, depth + 1))
    return push + pop + types + 1


def _units(types: int, depth: int) -> tuple[dict[Stack, int], dict[tuple[Stack, int], int], int]:
    """Unit indices: push[s] for every nonempty stack s; pop[(s, t)] for every nonempty s of
    depth ≤ D − 1 entered from s + (t,); the first dead unit (k + 1 of them follow)."""
    push: dict[Stack, int] = {}
    pop: dict[tuple[Stack, int], int] = {}
    n = 0
    for d in range(1, depth + 1):
        for s in itertools.product(range(types), repeat=d):
            push[s] = n
            n += 1
    for d in range(1, depth):
        for s in itertools.product(range(types), repeat=d):
            for t in range(types):
                pop[(s, t)] = n
                n += 1
    return push, pop, n


@register(
    "dyck22_automaton",
    task="dyck",
    result_id="B24-E",
    form="constant",
    summary="the Dyck-(2,2) automaton as a one-hot sigmoid Elman RNN (13 units at every N)",
)
def dyck22_automaton(
    length: int, types: int = 2, depth: int = 2, scale: float = SCALE
) -> HandBuilt:
    """B24-E: a one-hot RNN running the Dyck-(k, D) automaton; 13 units for k = D = 2, any N.

    **Why not 7 units (fix to theory.md / the catalogue's "width 7").** One unit per live
    state cannot be wired in an Elman network, whatever the activation: a unit's
    pre-activation is α_s + β_x — the previous state enters through ``W_hh``, the token through
    its ``W_ih`` column — and a monotone activation thresholds it. The unit of the stack (0)
    must fire after (stack 00, token )0) and after (01, )1) but not after (00, )1) or (01, )0)
    (both dead): α₀₀ + β₎₀ > θ, α₀₁ + β₎₁ > θ, α₀₀ + β₎₁ < θ, α₀₁ + β₎₀ < θ, and the two sums
    contradict each other. The same argument holds for any state entered by two different
    pops, for a state entered both by a push and by a pop, and for "dead after a closer"
    (the states (0) and (1) on )0 / )1). Also, the models start from h = 0 with no learned
    initial state, so the zero vector must be the start state ε, not the dead state.

    **Encoding.** ε is the zero vector (at the start and whenever the stack empties). Every
    other state is represented by one of its *entry units* — one unit per (state, way of
    entering it) — exactly one of which is on; the dead state turns on dead units:

    * push(s), s = p + (t,): entered from p on ``(t``: σ(L·([x = (t] + H(p) − 3/2)), where
      H(p) = Σ of p's units; for p = ε, H(ε) = 1 − Σ_all h: σ(L·([x = (t] − Σ_all h − 1/2));
    * pop(s, t), |s| ≤ D − 1, s ≠ ε: entered from s + (t,) on ``)t``:
      σ(L·([x = )t] + H(s + (t,)) − 3/2)); pops to ε turn nothing on;
    * dead_t, one per closer type: σ(L·(2·Σ dead + [x = )t] − Σ_{s: top(s) = t} H(s) − 1/2))
      — a closer on ε or on another type, or already dead;
    * dead_open: σ(L·(2·Σ dead + [x opener] + Σ_{|s| = D} H(s) − 3/2)) — a push on a full
      stack, or already dead.

    Each is a threshold of (token, one-hot state) of the α_s + β_x form, which is why the
    entries are split as above: no two entries of one unit form the forbidden "diagonal".

    **Readout** (``dyck``): logit(yes) = 1/2 − Σ_all h, logit(no) = 0 — ``yes`` iff the final
    state is ε (no live unit, no dead unit). Gap 1/2.

    **Width** Σ_{d=1}^{D} k^d + Σ_{d=2}^{D} k^d + k + 1 = 6 + 4 + 3 = 13 for k = D = 2, at
    every N (the state is a one-hot vector of bits: constant precision, exact in float32 with
    L = ``scale``). B24's constant-width claim holds; the constant for an Elman network is 13,
    not 7.
    """
    scale = check_scale(scale)
    task = tasks.make("dyck", types=types, depth=depth)
    task.check_length(length)
    L = scale
    push, pop, first_dead = _units(types, depth)
    width = automaton_width(types, depth)
    dead = list(range(first_dead, width))  # dead_0 … dead_{k−1}, dead_open
    vocab = len(task.vocab)
    w_ih = np.zeros((width, vocab))
    w_hh = np.zeros((width, width))
    bias = np.zeros(width)

    def units_of(s: Stack) -> list[int]:
        out = [push[s]] if s else []
        return out + [pop[(s, t)] for t in range(types) if (s, t) in pop]

    opener_ids: dict[int, int] = {}
    closer_ids: dict[int, int] = {}
    for tok, idx in task.token_to_id.items():
        if tok and tok[0] in "()":
            is_open, kind = parse_bracket(tok)
            (opener_ids if is_open else closer_ids)[kind] = idx
    for s, row in push.items():
        prefix, t = s[:-1], s[-1]
        w_ih[row, opener_ids[t]] = L
        if prefix:
            w_hh[row, units_of(prefix)] = L
            bias[row] = -1.5 * L
        else:
            w_hh[row, :] = -L
            bias[row] = -0.5 * L
    for (s, t), row in pop.items():
        w_ih[row, closer_ids[t]] = L
        w_hh[row, units_of((*s, t))] = L
        bias[row] = -1.5 * L
    stacks = [s for s in push]
    for t in range(types):
        row = dead[t]
        w_hh[row, dead] = 2 * L
        w_ih[row, closer_ids[t]] = L
        for s in stacks:
            if s[-1] == t:
                w_hh[row, units_of(s)] = -L
        bias[row] = -0.5 * L
    row = dead[types]
    w_hh[row, dead] = 2 * L
    w_ih[row, list(opener_ids.values())] = L
    for s in stacks:
        if len(s) == depth:
            w_hh[row, units_of(s)] = L
    bias[row] = -1.5 * L
    ro = Readout(vocab, width)
    yes, no = task.token_to_id["yes"], task.token_to_id["no"]
    ro.bias[yes], ro.bias[no] = 0.5, 0.0
    ro.weight[yes, :] = -1.0
    model = onehot_rnn("elman", vocab, width, w_ih, w_hh, bias, ro)
    return HandBuilt(
        module=model,
        width=width,
        result_id="B24-E",
        width_formula="Σ_{d=1}^{D} k^d + Σ_{d=2}^{D} k^d + k + 1 (13 for k = D = 2)",
        task=task,
        length=length,
        width_params={"types": types, "depth": depth},
        notes="One unit per live state (width 7) is impossible in an Elman RNN (a state entered "
        "by two pops is a non-separable 'diagonal'); one unit per (state, entry) + k + 1 dead "
        "units, ε = the zero vector: 13 units for Dyck-(2, 2).",
    )
