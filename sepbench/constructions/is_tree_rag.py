"""W24-RAG: the IsTree retrieval controller as a hand-wired sigmoid Elman network (``rag`` family).

Registered as ``is_tree_retrieval`` (task ``is_tree`` with ``trace="retrieval"``,
``generate=True``). With the task's retriever in the generation loop (``rag`` models: the token
after each ``[ENDSEARCH]`` is written by ``task.retrieval_result``), greedy decoding writes the
whole retrieval trace of tasks.md — every query, every fact ``r ~ top``, ``[EOS]`` — and the
answer, token for token as :func:`sepbench.tasks.is_tree.retrieval_trace` does.

**Everything is hand-set** in one single-layer sigmoid Elman network with one-hot inputs
(``rnn.weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``readout``): no lookup table, no
Python in the loop besides the task's retriever. Every unit is a threshold gate
σ(L·(v − θ)) over 0/1 values with margin ≥ L/2, so the state is an exact bit vector.

**The machine** (see :func:`is_tree_retrieval` for the unit list). Node names are held in
*registers* of 2B units (B = ⌈log2 n⌉; the double-rail code [β(v), 1 − β(v)] of v, all zero
for "[FAILED]"): ``LAST`` (the token just read), ``TOP``, ``PREV``, ``F`` (the parent f of top)
and ``R`` (the candidate r), with flags pF (prev = [FAILED]), fF (f = [FAILED]). A one-hot
*program counter* (PC: ~35 units) tracks where the controller is in the fixed token pattern
of a DFS step; an up/down binary *counter* of B bits (+ 4B carry/borrow helpers) counts the
input edges and the facts; *comparators* (2B + 1 units each) test prev = f and r = f.

Three constraints of threshold units shape the wiring (each a fix a naive design needs):

* a register cannot be overwritten in one step ("keep or load" is a multiplexer): it is
  cleared one step and OR-loaded later (the DFS pattern always leaves a step in between);
* "is the token equal to register X" is bilinear in (token, state): it is computed by 2B
  mismatch units (X[u] ∧ the token's bit u is 0) and read one step later as Σ = 0 / Σ ≥ 1;
* emitting a register's node goes through *masked copies* (cond ∧ X[u], 2B units per
  emitting context); the readout scores node v by ⟨code(v), masked copies⟩ − (B − 1), which is
  1 for the emitted node and ≤ 0 for every other, while fixed tokens get 2·[emit] − 1.

**Precision.** Every unit is an exact bit at gain L = 100 (margins ≥ 50) in float32, bfloat16
and float16 alike; the pre-activations are integers·L of size O(log n)·L, so O(log log n)
mantissa bits suffice — the O(log n) of W24 is in the *number* of state bits, not in their
precision.

**State size** (W24-RAG: O(log n) bits). Width = 33·B + 43 for B = ⌈log2 n⌉ (every unit one
bit): 5 registers (10B), 7 masked-copy sets (14B), comparators (4B + 2), counter (5B), and
41 constant units (35 PC states, 3 flags, 3 answer units). So the state is 33⌈log2 n⌉ + 43
bits = O(log n) bits, W24-RAG's bound. The controller of tasks.md needs only (top, prev, f,
r, count) ≈ 5·log2 n bits of information; the rest is the price of one layer of threshold
gates per token. The catalogue's width ``2·⌈⌈log2 n⌉/p⌉ + 1`` counts p-bit *numbers* holding
the information; this network spends one unit per bit (no packing). That is the deviation it
declares (``unit_bits=True`` in its registration): its width is a count of state bits, so its
curve is judged against W24-RAG's form in bits (log: O(log n) bits), not against the packed
width in numbers (constant at fixed p), which a one-bit-per-unit network cannot show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sepbench import tasks
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.rnn_weights import Readout, check_scale, code_bits, onehot_rnn
from sepbench.tasks.is_tree import BOS, DASH, END, EOS, FAILED, FALSE, START, TILDE, TRUE

GAIN = 100.0
"""Default gain L. The margins are ≥ L/2 = 50, so every sigmoid still returns exactly 0 or 1
(float16 included), while the largest pre-activation, about (4B + 8)·L, stays far inside
float16's range (L = 10⁴ overflows it: inf − inf = nan)."""

Lit = str | tuple[str, ...]
"""A literal: a unit name, or a group of unit names at most one of which is on (their sum)."""


@dataclass
class _Rule:
    units: dict[str, float] = field(default_factory=dict)
    tokens: dict[int, float] = field(default_factory=dict)
    bias: float = 0.0


class Circuit:
    """Threshold units over (previous state, current token), compiled to Elman weights.

    A unit's rule is ``pre = Σ coef·unit(t−1) + Σ coef·[token(t) = v] + bias``; the unit is
    σ(L·pre). Rules are written so that pre ≥ 1/2 when the unit must be 1 and ≤ −1/2 when it
    must be 0 on every reachable input.
    """

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.index: dict[str, int] = {}
        self.rules: dict[str, _Rule] = {}

    def declare(self, *names: str) -> None:
        for name in names:
            if name in self.index:
                raise AssertionError(f"unit {name} declared twice")
            self.index[name] = len(self.index)

    def _rule(self, name: str) -> _Rule:
        if name not in self.index:
            raise AssertionError(f"unit {name} not declared")
        if name in self.rules:
            raise AssertionError(f"unit {name} wired twice")
        rule = self.rules[name] = _Rule()
        return rule

    @staticmethod
    def _add(rule: _Rule, lit: Lit, coef: float) -> None:
        for name in (lit,) if isinstance(lit, str) else lit:
            rule.units[name] = rule.units.get(name, 0.0) + coef

    def gate(
        self,
        name: str,
        pos: Sequence[Lit] = (),
        neg: Sequence[Lit] = (),
        tok: Iterable[int] | None = None,
        at_least_one: Sequence[str] = (),
        none_of: Sequence[str] = (),
        or_else: Sequence[Lit] = (),
    ) -> None:
        """AND of the literals ``pos``, the negations of ``neg`` and "token ∈ tok"; optionally
        also "Σ at_least_one ≥ 1" or "Σ none_of = 0" (0/1 units). ``or_else`` lists positive
        literals that satisfy the sum clause by themselves (see the O_R masked copy)."""
        rule = self._rule(name)
        a = len(pos) + (tok is not None)  # A = Σpos − Σneg + [tok] − a ∈ {0, −1, −2, …}
        clause = list(at_least_one) + list(none_of)
        k = len(clause) + 1 if clause else 1
        for lit in pos:
            self._add(rule, lit, k)
        for lit in neg:
            self._add(rule, lit, -k)
        if tok is not None:
            for v in tok:
                rule.tokens[v] = rule.tokens.get(v, 0.0) + k
        rule.bias = -k * a
        if at_least_one:
            for name_ in at_least_one:
                self._add(rule, name_, 1.0)
            for lit in or_else:
                self._add(rule, lit, 1.0)
            rule.bias -= 0.5
        elif none_of:
            for name_ in none_of:
                self._add(rule, name_, -1.0)
            rule.bias += 0.5
        else:
            rule.bias += 0.5

    def latch(
        self,
        name: str,
        clear: Lit | None = None,
        clear_tok: Iterable[int] | None = None,
        load: Sequence[Lit] = (),
        load_tok: Iterable[int] | None = None,
    ) -> None:
        """A register bit: kept, cleared when ``clear`` (a literal) or ``clear_tok`` holds,
        OR-loaded when all of ``load`` (and the token condition) hold. Never both at once.
        pre = M·self − (M + 1)·clear + (A_load + 1/2), M = #load literals + 1."""
        rule = self._rule(name)
        a = len(load) + (load_tok is not None)
        m = a + 1
        self._add(rule, name, m)
        if clear is not None:
            self._add(rule, clear, -(m + 1))
        if clear_tok is not None:
            for v in clear_tok:
                rule.tokens[v] = rule.tokens.get(v, 0.0) - (m + 1)
        for lit in load:
            self._add(rule, lit, 1.0)
        if load_tok is not None:
            for v in load_tok:
                rule.tokens[v] = rule.tokens.get(v, 0.0) + 1.0
        rule.bias = -a + 0.5

    def raw(self, name: str, units: dict[str, float], bias: float) -> None:
        rule = self._rule(name)
        rule.units.update(units)
        rule.bias = bias

    def compile(self, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        missing = set(self.index) - set(self.rules)
        if missing:
            raise AssertionError(f"units without a rule: {sorted(missing)}")
        n = len(self.index)
        w_ih, w_hh, bias = np.zeros((n, self.vocab)), np.zeros((n, n)), np.zeros(n)
        for name, rule in self.rules.items():
            i = self.index[name]
            for src, coef in rule.units.items():
                w_hh[i, self.index[src]] += scale * coef
            for v, coef in rule.tokens.items():
                w_ih[i, v] += scale * coef
            bias[i] = scale * rule.bias
        return w_ih, w_hh, bias


def rag_width(length: int) -> int:
    """33·B + 43 units, B = ⌈log2 n⌉ (see the module docstring)."""
    return 33 * code_bits(length) + 43


PC_STATES = (
    *("start", "H", "Q1s", "Q1n", "Q1t", "Q1e", "Q1r", "Q2s_eq", "Q2s_ne", "Q2n_eq", "Q2n_ne"),
    *("Q2d_eq", "Q2d_ne", "Q2p", "Q2e", "Q2r_end", "up", "Q2r_node", "Q4r_node", "Q3s", "Q3n"),
    *("Q3d", "Q3f", "Q4e", "Q5s_a", "Q5s_b", "Q5n", "Q5t", "Q5e", "Fr0", "cyc_a", "cyc_b", "Fr"),
    *("Ft", "Fn"),
)
"""The program counter's states (one-hot; "after reading …", see is_tree_retrieval)."""


def node_code(v: int, bits: int) -> np.ndarray:
    """The double-rail code [β(v), 1 − β(v)] of node v with ``bits`` bits."""
    beta = np.array([(v >> (bits - 1 - j)) & 1 for j in range(bits)], dtype=np.float64)
    return np.concatenate([beta, 1.0 - beta])


COPIES = ("O_TOP", "O_LAST", "O_PREV", "O_F1", "O_F2", "O_R1", "O_R2")
"""The masked-copy unit blocks (2B units each) the readout turns into node tokens."""


def controller(task: tasks.Task, n: int) -> Circuit:
    """The controller's threshold circuit for graphs of n nodes (see is_tree_retrieval)."""
    b = code_bits(n)
    ids = task.token_to_id
    nodes = [ids[str(v)] for v in range(n)]

    bit1 = [[ids[str(v)] for v in range(n) if node_code(v, b)[u] == 1] for u in range(2 * b)]
    bit0 = [[ids[str(v)] for v in range(n) if node_code(v, b)[u] == 0] for u in range(2 * b)]
    fail, eos, bos = [ids[FAILED]], [ids[EOS]], [ids[BOS]]
    start_t, end_t, til_t, dash_t = [ids[START]], [ids[END]], [ids[TILDE]], [ids[DASH]]

    c = Circuit(len(task.vocab))
    regs = ["LAST", "TOP", "PREV", "F", "R"]
    copies = list(COPIES)
    u2 = range(2 * b)
    c.declare(*PC_STATES, "pF", "fF", "PROMPT", "ansT", "ansF1", "ansF2")
    for block in regs + copies:
        c.declare(*(f"{block}{u}" for u in u2))
    c.declare(*(f"mp{u}" for u in u2), "mpA", *(f"mr{u}" for u in u2), "mrC")
    c.declare(*(f"cnt{j}" for j in range(b)))
    for j in range(b):
        c.declare(f"inc_a{j}", f"inc_d{j}", f"dec_a{j}", f"dec_e{j}")
    if len(c.index) != rag_width(n):
        raise AssertionError(f"width {len(c.index)} != {rag_width(n)}")

    def reg(name: str) -> list[str]:
        return [f"{name}{u}" for u in u2]

    mp, mr = [*reg("mp"), "mpA"], [*reg("mr"), "mrC"]
    node_or_fail = nodes + fail
    heads = ("start", "up", "Fn")

    # ------------------------------------------------------------------ program counter
    c.gate("start", pos=["PROMPT"], tok=eos)
    c.gate("H", pos=[heads], tok=nodes)
    c.gate("Q1s", pos=["H"], tok=start_t)
    c.gate("Q1n", pos=["Q1s"], tok=nodes)
    c.gate("Q1t", pos=["Q1n"], tok=til_t)
    c.gate("Q1e", pos=["Q1t"], tok=end_t)
    c.gate("Q1r", pos=["Q1e"], tok=node_or_fail)
    c.gate("Q2s_eq", pos=["Q1r"], tok=start_t, none_of=mp)
    c.gate("Q2s_ne", pos=["Q1r"], tok=start_t, at_least_one=mp)
    c.gate("Q2n_eq", pos=["Q2s_eq"], tok=nodes)
    c.gate("Q2n_ne", pos=["Q2s_ne"], tok=nodes)
    c.gate("Q2d_eq", pos=["Q2n_eq"], tok=dash_t)
    c.gate("Q2d_ne", pos=["Q2n_ne"], tok=dash_t)
    c.gate("Q2p", pos=["Q2d_ne"], tok=nodes)
    c.gate("Q2e", pos=[("Q2d_eq", "Q2p")], tok=end_t)
    c.gate("Q2r_end", pos=[("Q2e", "Q4e"), "fF"], tok=fail)
    c.gate("up", pos=[("Q2e", "Q4e")], neg=["fF"], tok=fail)
    c.gate("Q2r_node", pos=["Q2e"], tok=nodes)
    c.gate("Q4r_node", pos=["Q4e"], tok=nodes)
    c.gate("Q3s", pos=["Q2r_node"], tok=start_t, none_of=mr)
    c.gate("Q3n", pos=["Q3s"], tok=nodes)
    c.gate("Q3d", pos=["Q3n"], tok=dash_t)
    c.gate("Q3f", pos=["Q3d"], tok=nodes)
    c.gate("Q4e", pos=["Q3f"], tok=end_t)
    c.gate("Q5s_a", pos=["Q2r_node"], tok=start_t, at_least_one=mr)
    c.gate("Q5s_b", pos=["Q4r_node"], tok=start_t)
    c.gate("Q5n", pos=[("Q5s_a", "Q5s_b")], tok=nodes)
    c.gate("Q5t", pos=["Q5n"], tok=til_t)
    c.gate("Q5e", pos=["Q5t"], tok=end_t)
    r_first = [f"R{u}" for u in range(b)]  # β(r): all zero iff r = node 0
    c.gate("Fr0", pos=["Q5e"], tok=fail, at_least_one=r_first)
    c.gate("cyc_a", pos=["Q5e"], tok=nodes)
    c.gate("cyc_b", pos=["Q5e"], tok=fail, none_of=r_first)
    c.gate("Fr", pos=["Fr0"], tok=nodes)
    c.gate("Ft", pos=["Fr"], tok=til_t)
    c.gate("Fn", pos=["Ft"], tok=nodes)
    counter = [f"cnt{j}" for j in range(b)]
    c.gate("ansT", pos=["Q2r_end"], tok=eos, none_of=counter)
    c.gate("ansF1", pos=["Q2r_end"], tok=eos, at_least_one=counter)
    c.gate("ansF2", pos=[("cyc_a", "cyc_b")], tok=eos)

    # ------------------------------------------------------------------ registers and flags
    c.latch("PROMPT", clear_tok=eos, load_tok=bos)
    c.latch("pF", clear=("Q2d_eq", "Q2p"), load_tok=bos)
    c.latch("fF", clear=heads, load=["Q1e"], load_tok=fail)
    for u in u2:
        c.gate(f"LAST{u}", tok=bit1[u])
        c.latch(f"TOP{u}", clear=heads, load=["H", f"LAST{u}"])
        c.latch(f"PREV{u}", clear=("Q2d_eq", "Q2p"), load=[("up", "Fn"), f"TOP{u}"])
        c.latch(f"F{u}", clear=heads, load=["Q1e"], load_tok=bit1[u])
        c.latch(f"R{u}", clear=(*heads, "Q3s"), load=[("Q2e", "Q4e")], load_tok=bit1[u])
        # comparators: prev = f (read at Q1r), r = f (read at Q2r)
        c.gate(f"mp{u}", pos=["Q1e", f"PREV{u}"], tok=bit0[u] + fail)
        c.gate(f"mr{u}", pos=["Q2e", f"F{u}"], tok=bit0[u])
        # masked copies: what the readout emits as a node
        c.gate(
            f"O_TOP{u}", pos=[("Q1r", "Fr", "Q2r_node"), f"TOP{u}"], none_of=mr
        )  # mr is 0 unless just after Q2e
        c.gate(f"O_LAST{u}", pos=["H", f"LAST{u}"])
        c.gate(f"O_PREV{u}", pos=["Q2n_ne", f"PREV{u}"])
        c.gate(f"O_F1{u}", pos=["Q3n", f"F{u}"])
        c.gate(f"O_F2{u}", pos=[("Q2e", "Q4e"), f"F{u}"], neg=["fF"], tok=fail)
        c.gate(
            f"O_R1{u}",
            pos=[("Q2r_node", "Q4r_node", "Ft"), f"R{u}"],
            at_least_one=mr,
            or_else=[("Q4r_node", "Ft")],
        )
        c.gate(f"O_R2{u}", pos=["Q5e", f"R{u}"], tok=fail, at_least_one=r_first)
    c.gate("mpA", pos=["Q1e", "pF"], tok=nodes)
    c.gate("mrC", pos=["Q2e", "fF"], tok=nodes)

    # ------------------------------------------------------------------ the up/down counter
    # +1 on a prompt edge ("-" while PROMPT), −1 on a fact (the "~" after Fr). Bit j flips
    # when all lower bits are 1 (increment) / 0 (decrement): cnt_j' = [cnt_j + a_j − 2d_j ≥ 1]
    # with a_j = event ∧ lower bits, d_j = a_j ∧ cnt_j — two layers, so events must be ≥ 2
    # steps apart (edges are 3 tokens apart, facts far more).
    for j in range(b):
        lower = [f"cnt{i}" for i in range(j)]
        c.gate(f"inc_a{j}", pos=["PROMPT", *lower], tok=dash_t)
        c.gate(f"inc_d{j}", pos=["PROMPT", *lower, f"cnt{j}"], tok=dash_t)
        c.gate(f"dec_a{j}", pos=["Fr"], neg=lower, tok=til_t)
        c.gate(f"dec_e{j}", pos=["Fr", f"cnt{j}"], neg=lower, tok=til_t)
        c.raw(
            f"cnt{j}",
            {f"cnt{j}": 1.0, f"inc_a{j}": 1.0, f"inc_d{j}": -2.0, f"dec_a{j}": 1.0},
            -0.5,
        )
        c.rules[f"cnt{j}"].units[f"dec_e{j}"] = -2.0

    return c


@register(
    "is_tree_retrieval",
    task="is_tree",
    result_id="W24-RAG",
    form="log",
    summary="sigmoid Elman controller (O(log n) bits) that writes the DFS retrieval trace",
    unit_bits=True,
)
def is_tree_retrieval(
    length: int, graph: str = "binary", max_length: int | None = None, scale: float = GAIN
) -> HandBuilt:
    """W24-RAG: the retrieval controller of tasks.md as a ``rag`` (sigmoid Elman) network.

    **Program** (PC state = "after reading …"; what the readout emits next):

    ========  ======================================  ===================================
    state     entered on                              emits
    ========  ======================================  ===================================
    start     the prompt's [EOS]                      node 0 (the first head)
    H         a head (from start / up / Fn)           [STARTSEARCH]
    Q1s…Q1t   [STARTSEARCH], top, ~                   top (from LAST), ~, [ENDSEARCH]
    Q1e/Q1r   [ENDSEARCH] / the retrieved f           — / [STARTSEARCH]; F ← f
    Q2s_*     [STARTSEARCH], split on prev = f        top
    Q2n_*     top                                     -
    Q2d_eq    -                                       [ENDSEARCH]   (query "top -")
    Q2d_ne    -                                       prev          (query "top - prev")
    Q2p       prev                                    [ENDSEARCH]
    Q2e       [ENDSEARCH]                             — (retrieval); R ← r next
    Q2r_end   r = [FAILED] and f = [FAILED]           [EOS]  (root finished)
    up        r = [FAILED], f a node                  f (the next head: go up)
    Q2r_node  r a node                                [STARTSEARCH]
    Q3s…Q3f   [STARTSEARCH] (r = f), top, -, f        top, -, f, [ENDSEARCH]  ("top - f")
    Q4e       [ENDSEARCH]                             —; the result is handled as at Q2e
    Q5s…Q5t   [STARTSEARCH] (r ≠ f), r, ~             r, ~, [ENDSEARCH]      ("r ~")
    Q5e       [ENDSEARCH]                             — (retrieval of g)
    Fr0       g = [FAILED] and r ≠ 0                  r      (the fact "r ~ top")
    cyc_*     g a node, or r = 0                      [EOS]  (a cycle)
    Fr/Ft/Fn  r, ~, top                               ~, top, r (the next head: go down)
    ========  ======================================  ===================================

    After the final [EOS]: ``[TRUE]`` iff the root finished and the counter is 0, else
    ``[FALSE]``. Register schedule: TOP, F, R are cleared at the step reading a head; TOP is
    loaded from LAST on the next step; PREV (and pF) are cleared at the [ENDSEARCH] of the
    second query and loaded from the old TOP at the next non-initial head; F, fF on the
    retrieved f; R on each retrieved r (R is cleared again inside "top - f"). The counter
    counts +1 per input edge (a "-" in the prompt) and −1 per fact; "visited all n nodes"
    is "n − 1 facts", i.e. counter = 0.

    **Width** 33·⌈log2 n⌉ + 43 (module docstring), every unit one bit: O(log n) bits of state,
    W24-RAG. Built for n = ``length``: node codes have ⌈log2 n⌉ bits, so node names ≥ n (which
    never occur in a graph of n nodes) are not represented.
    """
    scale = check_scale(scale)
    extra = {} if max_length is None else {"max_length": max_length}
    task = tasks.make("is_tree", graph=graph, trace="retrieval", **extra)
    task.check_length(length)
    n = length
    b = code_bits(n)
    ids = task.token_to_id
    c = controller(task, n)
    u2 = range(2 * b)
    w_ih, w_hh, bias = c.compile(scale)
    width = len(c.index)

    # ------------------------------------------------------------------ readout
    ro = Readout(len(task.vocab), width)
    idx = c.index
    emits = {
        START: ["H", "Q1r", "Q2r_node", "Q4r_node"],
        TILDE: ["Q1n", "Q5n", "Fr"],
        END: ["Q1t", "Q2d_eq", "Q2p", "Q3f", "Q5t"],
        DASH: ["Q2n_eq", "Q2n_ne", "Q3n"],
        EOS: ["Q2r_end", "cyc_a", "cyc_b"],
        TRUE: ["ansT"],
        FALSE: ["ansF1", "ansF2"],
    }
    for tok, states in emits.items():
        ro.weight[ids[tok], [idx[s] for s in states]] = 2.0
    for v in range(n):
        row = ids[str(v)]
        ro.bias[row] = -(b - 1.0)
        for cp in COPIES:
            ro.weight[row, [idx[f"{cp}{u}"] for u in u2]] = node_code(v, b)
    ro.weight[ids["0"], idx["start"]] = float(b)
    model = onehot_rnn("rag", len(task.vocab), width, w_ih, w_hh, bias, ro, cell="elman")
    return HandBuilt(
        module=model,
        width=width,
        result_id="W24-RAG",
        width_formula="33·⌈log2 n⌉ + 43 (one bit per unit: O(log n) bits)",
        task=task,
        length=length,
        width_params={},
        generate=True,
        notes="Every weight hand-set (a compiled threshold circuit); registers are "
        "clear-then-load, comparisons go through mismatch units, emissions through masked "
        "copies — the extra units over (top, prev, f, r, count) are one-layer wiring costs.",
    )
