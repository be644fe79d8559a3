"""The catalogue of results: one :class:`Result` record per row of theory.md's table.

>>> from sepbench import theory
>>> r = theory.get("B24-T3")
>>> r.direction, r.form, r.model_class
('lower', 'linear', 'rnn')
>>> r.width_bound(256, 16)   # m >= N·log2(k)/p with the task's default k = 4
32.0

Conventions fixed here (and rendered into docs/theory.md):

* ``length`` is the task's problem size N as tasks.md defines it. Where a paper counts
  differently the formula is translated and the record says so (B24-T11, B24-T8 on mqar).
* ``direction`` is ``"upper"`` (a construction: the width suffices), ``"lower"`` (no smaller
  width can work) or ``"tight"``. H20 is the only tight result: one record with direction
  ``"tight"``, whose :meth:`Result.width_bound` is the construction's width (the upper side) and
  whose :meth:`Result.lower_width` is the matching lower bound. One record keeps theory.md's ids
  one-to-one with the catalogue and lets :func:`~sepbench.theory.verdict` check both sides.
* ``form`` is the growth in N of ``quantity`` (what the theorem constrains: the width, the
  state bits m·p, m·H or m·p·H) at fixed precision, the setting of every measurement. Where a
  theorem counts bits at p = Θ(log N) (W24-RAG, W24-H: "O(log n) bits of state") the record's
  quantity is the width in numbers, constant at fixed p, and its assumptions say so.
* ``exact`` says whether :meth:`Result.width_bound` carries the result's (or the
  construction's) own constants. When False only the shape is meaningful: the function is the
  form with unit constant (Y21, W24-C, W24-H, and B24-T7 whose construction is only sketched).
* Parameters default to the task defaults of tasks.md, so bounds match what the testbed runs.
* ``error_fn`` (lower and tight results): the bound when answers need only be right on
  average, with error ε, under the task's own sampler — derived where the argument survives
  errors (B24-T3, B24-P9, W24-R: Fano per coordinate, :func:`~.formulas.index_error_bound`),
  with ``error_note`` saying why not elsewhere. A verdict on a measurement whose success
  criterion is an average accuracy uses it, or says "not applicable".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sepbench.errors import UserError
from sepbench.params import Param
from sepbench.theory import formulas as f
from sepbench.theory.formulas import default_precision

Direction = Literal["upper", "lower", "tight"]

PAPERS: dict[str, str] = {
    "B24": "Bhattamishra, Hahn, Blunsom, Kanade. Separations in the Representational "
    "Capabilities of Transformers and Recurrent Architectures. NeurIPS 2024 (arXiv 2406.09347).",
    "W24": "Wen, Dang, Lyu. RNNs are not Transformers (Yet): The Key Bottleneck on In-context "
    "Retrieval. ICLR 2025 (arXiv 2402.18510).",
    "H20": "Hewitt, Hahn, Ganguli, Liang, Manning. RNNs can generate bounded hierarchical "
    "languages with optimal memory. EMNLP 2020.",
    "Y21": "Yao, Peng, Papadimitriou, Narasimhan. Self-Attention Networks Can Process Bounded "
    "Hierarchical Languages. ACL 2021.",
    "OL22": "Olsson, Elhage, Nanda, Joseph, et al. In-context Learning and Induction Heads. "
    "Transformer Circuits Thread, 2022 (arXiv 2209.11895).",
}

MODEL_CLASSES: dict[str, str] = {
    "transformer-1": "one-layer Transformer",
    "transformer-2": "two-layer Transformer",
    "transformer+cot": "Transformer generating a chain of thought",
    "rnn": "any recurrent model (state of m numbers of p bits; Elman, LSTM, GRU, SSMs, ...)",
    "rnn+cot": "recurrent model generating a chain of thought",
    "rnn+retrieval": "recurrent model with in-context retrieval",
    "hybrid": "recurrent model followed by one attention layer",
}

STATE_CLASSES = ("rnn", "rnn+cot", "rnn+retrieval")
"""Classes whose results bound m, the numbers in the recurrent state, not the width: a
measured width w is set beside them as the state s·w, with s the model's state numbers per
unit of width (:mod:`sepbench.models.cards`)."""

FORMS = ("constant", "log", "linear", "D log k", "log k")


def BoundParam(
    name: str,
    default: Any,
    doc: str,
    kind: type = int,
    minimum: float | None = None,
    choices: tuple[str, ...] | None = None,
    exclusive_max: float | None = None,
) -> Param:
    """A parameter of a bound: a :class:`sepbench.params.Param` (the declaration shared with
    task parameters and model options) whose ``default`` may be a function of the length."""
    return Param(
        name, kind, default, doc, choices=choices, minimum=minimum, exclusive_max=exclusive_max
    )


WidthFn = Callable[..., float]
ErrorWidthFn = Callable[..., float]
"""``(n, p, error, **params) -> width``: a lower bound allowing average error ``error``."""


@dataclass(frozen=True)
class TaskLength:
    """How a task's parameters fix a theorem's N (instead of the study's length)."""

    symbol: str
    """The rule in the task's symbols, e.g. ``"2P"``."""
    of: Callable[[Mapping[str, Any]], int]
    """The task's full parameters → N."""


@dataclass(frozen=True)
class Result:
    """One result of theory.md's table, with its bound as a function.

    ``width_bound(length, precision_bits, **params)`` is, for a lower bound, the smallest width
    (numbers per state / embedding dimension) the bound allows; for an upper bound (and the
    upper side of a tight one), the width of the construction. See the module docstring for the
    meaning of ``form``, ``quantity`` and ``exact``.
    """

    id: str
    source: str
    """Paper id and theorem, e.g. ``"B24 Theorem 3"``."""
    tasks: tuple[str, ...]
    model_class: str
    direction: Direction
    form: str
    quantity: str
    statement: str
    """The bound as theory.md's table states it."""
    formula: str
    """What :meth:`width_bound` computes, in symbols."""
    assumptions: str
    constructions: tuple[str, ...]
    """Names of the ``sepbench.constructions`` entries built for it: realisations of an
    upper/tight result, or tightness witnesses of a lower bound (e.g. the prefix-storing RNNs
    for B24-T3/T11). A test checks each name against the constructions registry."""
    argument: str | None
    """One paragraph: why the lower bound holds (lower/tight), or None."""
    width_fn: WidthFn = field(repr=False, compare=False)
    """``(n, p, **params) -> width``: the formula behind :meth:`width_bound`."""
    params: tuple[Param, ...] = ()
    covers: tuple[str, ...] = ()
    """Further model classes the result applies to (W24-R: plain RNNs as well as RNN + CoT)."""
    exact: bool = True
    lower_fn: WidthFn | None = field(default=None, repr=False, compare=False)
    """Tight results only: the lower-bound formula, same signature as ``width_fn``."""
    lower_formula: str = ""
    """Tight results only: what :meth:`lower_width` computes, in symbols (``formula`` is then
    the upper side's)."""
    task_lengths: Mapping[str, TaskLength] = field(default_factory=dict, compare=False)
    """Tasks on which the theorem's N is set by the task's parameters, not by the study's
    length: task → function of the task's full parameters giving that N (B24-T8 on mqar:
    N = 2P). See :meth:`theorem_length`."""
    error_fn: ErrorWidthFn | None = field(default=None, repr=False, compare=False)
    """Lower/tight results whose argument survives errors: the smallest width when a fraction
    ``error`` of inputs drawn from the task's sampler may be answered wrongly (the derivation
    and the sampler it needs are in the formula's docstring); None where none is derived."""
    error_formula: str = ""
    """``error_fn`` in symbols (ε = the allowed average error)."""
    error_note: str = ""
    """Lower/tight results without ``error_fn``: why no error-allowed form is given."""
    bits_form: str = ""
    """Upper results stated in *bits* at p = Θ(log N) whose ``form`` (numbers at fixed p)
    differs: the growth in N of the state bits the theorem counts (W24-RAG, W24-H: ``log``,
    their O(log n) bits). A measurement whose every unit holds one bit — a construction of
    exact 0/1 or ±1 units, which spends one unit per bit instead of packing p bits into a
    number — counts bits, and is judged against this form
    (:func:`~sepbench.theory.verdict` with ``units="bits"``). Empty: no statement in bits."""

    @property
    def paper(self) -> str:
        """The paper id (a key of :data:`PAPERS`): the first word of ``source``."""
        return self.source.split()[0]

    def formula_of(self, side: Literal["upper", "lower"]) -> str:
        """The formula text of one side: ``"upper"`` (what :meth:`width_bound` computes) or
        ``"lower"`` (what :meth:`lower_width` computes; the same text for lower results)."""
        if side == "lower" and self.lower_formula:
            return self.lower_formula
        return self.formula

    def theorem_length(self, task: str, length: int, task_params: Mapping[str, Any]) -> int:
        """The N this result's formulas take for ``task`` studied at problem size ``length``
        (``task_params``: the task's full parameters). ``length`` itself, unless the task is in
        :attr:`task_lengths`; then the bound is one number at every study length."""
        fixed = self.task_lengths.get(task)
        return int(length) if fixed is None else int(fixed.of(task_params))

    @property
    def model_classes(self) -> tuple[str, ...]:
        return (self.model_class, *self.covers)

    def resolve(self, length: int, **params: Any) -> dict[str, Any]:
        """Validated parameters with defaults filled in (UserError on unknown/invalid ones)."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            allowed = ", ".join(known) if known else "none"
            raise UserError(
                f"result '{self.id}': unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in params:
                value = params[p.name]
            else:
                value = p.default(length) if callable(p.default) else p.default
            out[p.name] = p.parse(value, f"result '{self.id}'")
        return out

    @staticmethod
    def _checked(length: int, precision_bits: int | None) -> tuple[int, int]:
        """(N, p) as plain ints; p defaults to default_precision(N). UserError if invalid."""
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 2:
            raise UserError(f"length must be an integer >= 2, got {length!r}")
        n = int(length)
        if precision_bits is None:
            return n, default_precision(n)
        if (
            isinstance(precision_bits, bool)
            or not isinstance(precision_bits, numbers.Integral)
            or precision_bits < 1
        ):
            raise UserError(f"precision must be an integer >= 1 bits, got {precision_bits!r}")
        return n, int(precision_bits)

    def width_bound(self, length: int, precision_bits: int | None = None, **params: Any) -> float:
        """The concrete width the result implies at N = ``length`` and p = ``precision_bits``.

        ``precision_bits=None`` uses :func:`~sepbench.theory.formulas.default_precision`.
        """
        n, p = self._checked(length, precision_bits)
        return float(self.width_fn(n, p, **self.resolve(n, **params)))

    def lower_width(
        self, length: int, precision_bits: int | None = None, **params: Any
    ) -> float | None:
        """The lower bound on the width: ``width_bound`` for lower results, the matching lower
        bound for tight ones, None for upper bounds."""
        if self.direction == "lower":
            return self.width_bound(length, precision_bits, **params)
        if self.lower_fn is None:
            return None
        n, p = self._checked(length, precision_bits)
        return float(self.lower_fn(n, p, **self.resolve(n, **params)))

    def error_lower_width(
        self, length: int, precision_bits: int | None = None, *, error: float, **params: Any
    ) -> float | None:
        """The lower bound on the width when answers may be wrong with average probability
        ``error`` under the task's sampler (:attr:`error_fn`); None where no such form exists
        (upper bounds, and lower bounds whose ``error_note`` says why)."""
        if self.error_fn is None:
            return None
        if isinstance(error, bool) or not isinstance(error, numbers.Real) or not 0 <= error < 1:
            raise UserError(f"error must be a number in [0, 1), got {error!r}")
        n, p = self._checked(length, precision_bits)
        return float(self.error_fn(n, p, float(error), **self.resolve(n, **params)))

    def state_bits(self, length: int, precision_bits: int | None = None, **params: Any) -> float:
        """width_bound × p: the bits a state (or an embedding) of that width carries."""
        n, p = self._checked(length, precision_bits)
        return self.width_bound(n, p, **params) * p

    def lower_state_bits(
        self, length: int, precision_bits: int | None = None, **params: Any
    ) -> float | None:
        """lower_width × p (None for upper bounds)."""
        n, p = self._checked(length, precision_bits)
        low = self.lower_width(n, p, **params)
        return None if low is None else low * p


# --------------------------------------------------------------------------------------------
# parameters shared by several results (defaults = the task defaults of tasks.md)
# --------------------------------------------------------------------------------------------

_GAMMA = BoundParam(
    "gamma",
    f.ADDRESS_GAMMA,
    "cross-product bound of the address vectors",
    kind=float,
    minimum=1e-6,
    exclusive_max=0.5,
)


def _alphabet(default: int) -> Param:
    return BoundParam("alphabet", default, "alphabet size k", minimum=2)


def _default_bits(length: int) -> int:
    """nearest_neighbor's default code length 8, raised until N points and a query fit."""
    return max(8, math.ceil(math.log2(length + 1)))


def _fewest_keys(length: int) -> int:
    """associative_recall's smallest key vocabulary at N pairs (distinct keys): N."""
    return length


def _mqar_stored_tokens(task_params: Mapping[str, Any]) -> int:
    """B24-T8's N on mqar: 2P, the tokens of the P stored pairs (not the task's length L,
    which also counts the query region)."""
    return 2 * int(task_params["pairs"])


_HEADS = BoundParam("heads", 1, "attention heads H", minimum=1)
_INDEX_ERROR_FORMULA = "m ≥ N·(log2 k − h(ε) − ε·log2(k − 1))/p"
_TYPES = BoundParam("types", 2, "bracket types k", minimum=2)
_DEPTH = BoundParam("depth", 2, "depth bound D", minimum=1)

_CATALOGUE: tuple[Result, ...] = (
    Result(
        id="B24-T1",
        source="B24 Theorem 1",
        tasks=("index_lookup",),
        model_class="transformer-1",
        direction="upper",
        form="log",
        quantity="width",
        statement="width O(log N), precision O(log N)",
        formula="m = ceil(log2 k) + 2·ceil((8/γ²)·ln 2N)",
        assumptions="p = O(log N); random sign addresses with all cross products below γ "
        "(B24 Lemma 2; the union-bound width succeeds with probability ≥ 1 − 1/(16N²)).",
        constructions=("index_lookup_1layer",),
        argument=None,
        params=(_alphabet(4), _GAMMA),
        width_fn=f.b24_t1_index_lookup_tf1,
    ),
    Result(
        id="B24-T3",
        source="B24 Theorem 3",
        tasks=("index_lookup",),
        model_class="rnn",
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="m·p ≥ N (binary alphabet; N·log2 k for k symbols)",
        formula="m ≥ N·log2(k)/p",
        assumptions="Any recurrent update; exact answers on every input of length N.",
        constructions=("index_lookup_prefix_rnn",),
        argument="After the N symbols the state must determine the whole string: two strings "
        "that differ at i are told apart by the query @i, and everything after the string is a "
        "function of the state and the query. So 2^(m·p) ≥ k^N (the one-way communication "
        "complexity of INDEX). Tight up to constants: a state that stores the prefix, "
        "⌊p/log2 k⌋ symbols per unit, has width ≈ N·log2(k)/p.",
        params=(_alphabet(4),),
        width_fn=f.index_information_bound,
        error_fn=f.index_error_bound,
        error_formula=_INDEX_ERROR_FORMULA,
    ),
    Result(
        id="B24-P9",
        source="B24 Proposition 9",
        tasks=("associative_recall",),
        model_class="rnn",
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="m·p ≥ N",
        formula="m ≥ N·log2(v)/p",
        assumptions="N key-value pairs with distinct keys, v possible values; one final query.",
        constructions=(),
        argument="Fix the keys; the N values range over [v]^N and a query on any key must "
        "return its value, so the state after the pairs determines all values: "
        "m·p ≥ N·log2 v (≥ N, theory.md's form, for v ≥ 2).",
        params=(BoundParam("values", 16, "number of possible values v", minimum=2),),
        width_fn=f.b24_p9_associative_recall_rnn,
        error_fn=f.b24_p9_error_bound,
        error_formula="m ≥ N·(log2 v − h(ε) − ε·log2(v − 1))/p",
    ),
    Result(
        id="B24-T5",
        source="B24 Theorem 5",
        tasks=("dyck",),
        model_class="transformer-1",
        direction="lower",
        form="linear",
        quantity="width·heads",
        statement="m·H ≥ (N − 1)/(3(p + log2 N)) — linear in N",
        formula="m ≥ (N − 1)/(3H(p + log2 N))",
        assumptions="Dyck-(2, 2) recognition; any positional encoding, layer norm, residuals. "
        "Linear in N up to the log2 N term: Θ(N/log N) when p = Θ(log N).",
        constructions=(),
        argument="A one-layer Transformer under any split of the positions between two players "
        "is simulated by a protocol of 3m(p + log2 N)H bits; Dyck-(2, 2) under the odd/even "
        "split needs N − 1 bits (fooling set). theory.md notes that B24's printed inequality is "
        "damaged in the available text; this form follows from those two facts.",
        params=(_HEADS,),
        width_fn=f.b24_t5_dyck_tf1,
        error_note="no error-allowed form derived: B24's fooling set for Dyck-(2, 2) is a "
        "worst-case argument, and the dyck sampler (random positives, negatives with 1..N/10 "
        "corruptions) is not the distribution a distributional version would need",
    ),
    Result(
        id="B24-E",
        source="B24 (Dyck-(2, 2) automaton)",
        tasks=("dyck",),
        model_class="rnn",
        direction="upper",
        form="constant",
        quantity="width",
        statement="constant: a 7-state automaton",
        formula="m = Σ_{d=1}^{D} k^d + Σ_{d=2}^{D} k^d + k + 1 (13 for k = D = 2)",
        assumptions="The automaton has 7 live states for Dyck-(2, 2), but a one-hot Elman RNN "
        "cannot give each live state one unit (a state entered by two different pops needs "
        "contradictory thresholds) and must start from the zero vector: one unit per (state, "
        "entry) plus k + 1 dead units, 13 for Dyck-(2, 2). Still constant in N.",
        constructions=("dyck22_automaton",),
        argument=None,
        params=(_TYPES, _DEPTH),
        width_fn=f.b24_e_dyck_automaton,
    ),
    Result(
        id="B24-T11",
        source="B24 Theorem 11",
        tasks=("string_equality",),
        model_class="rnn",
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="m·p ≥ N/2",
        formula="m ≥ N·log2(k)/p  (N = length of each half)",
        assumptions="theory.md's N/2 counts B24's N = total length of both halves; with the "
        "task's N (length of each half) the same argument gives N·log2 k bits.",
        constructions=("string_equality_prefix_rnn",),
        argument="After x and the separator the state must determine x: x|x is equal and "
        "x'|x is not for any x' ≠ x. So 2^(m·p) ≥ k^N. Tight up to constants (store the first "
        "half, width ≈ N·log2(k)/p).",
        params=(_alphabet(2),),
        width_fn=f.string_equality_rnn,
        error_note="no error-allowed form exists: against the sampler's negatives (y differs "
        "from x in one position or by one swap) a b-bit linear hash of x ⊕ y, accumulated in "
        "the state, errs only on hash collisions (about 2^−b of negatives), so O(log 1/ε) "
        "bits reach error ε at every N",
    ),
    Result(
        id="B24-T12",
        source="B24 Theorem 12",
        tasks=("string_equality", "disjointness"),
        model_class="transformer-1",
        direction="lower",
        form="linear",
        quantity="width·heads·bits",
        statement="m·p·H = Ω(N): 3m(p + log2 N)H ≥ N",
        formula="m ≥ N/(3H(p + log2 N))",
        assumptions="N = length of each half (bits for disjointness); deterministic model.",
        constructions=(),
        argument="Alice holds x, Bob holds y; the one-layer protocol of B24-T5 computes the "
        "output with 3m(p + log2 N)H bits, and EQ and DISJ on N-bit strings need N bits of "
        "deterministic communication.",
        params=(_HEADS,),
        width_fn=f.b24_t12_pair_tf1,
        error_note="no error-allowed form derived: equality has O(log 1/ε) distributional "
        "communication complexity at error ε (a hash), so the protocol argument gives nothing "
        "linear; for disjointness an Ω(N) distributional bound exists for Razborov's "
        "distribution (1992), not for the task's sampler",
    ),
    Result(
        id="B24-T6",
        source="B24 Theorem 6",
        tasks=("string_equality",),
        model_class="transformer-2",
        direction="upper",
        form="log",
        quantity="width",
        statement="width O(log N), precision O(log N)",
        formula="m = 2·ceil(log2 k) + 2·ceil((8/γ²)·ln(2(2N + 1))) + 1",
        assumptions="p = O(log N); η ≥ log N + K·log 2N makes layer 1's softmax one-hot.",
        constructions=("string_equality_2layer",),
        argument=None,
        params=(_alphabet(2), _GAMMA),
        width_fn=f.b24_t6_string_equality_tf2,
    ),
    Result(
        id="B24-T13",
        source="B24 Theorem 13",
        tasks=("disjointness",),
        model_class="transformer-2",
        direction="upper",
        form="log",
        quantity="width",
        statement="width O(log N), k heads (k-sparse thresholds)",
        formula="m = 2 + 2·ceil((8/γ²)·ln(2(2N + 1))) + 1",
        assumptions="p = O(log N); B24-T6's layout with AND in place of XOR; thresholds on "
        "k-sparse intersections use k heads (width unchanged).",
        constructions=("disjointness_2layer",),
        argument=None,
        params=(_GAMMA,),
        width_fn=f.b24_t13_disjointness_tf2,
    ),
    Result(
        id="B24-T7",
        source="B24 Theorem 7",
        tasks=("nearest_neighbor",),
        model_class="transformer-2",
        direction="upper",
        form="log",
        quantity="width",
        statement="width O(log N), margin γ ≥ N^(−c)",
        formula="m = b + ceil(log2 L) + 2·ceil((8/γ²)·ln(2(2N + 1))) + 2",
        assumptions="Unit-vector points with nearest-neighbour margin ≥ N^(−c); p = O(log N). "
        "Block count of theory.md's sketch (exact=False). Default b = max(8, ceil(log2(N+1))).",
        constructions=("nearest_neighbor_2layer",),
        argument=None,
        params=(
            BoundParam(
                "bits", _default_bits, "code length b (default max(8, ceil(log2(N+1))))", minimum=1
            ),
            BoundParam("labels", 2, "number of labels L", minimum=2),
            _GAMMA,
        ),
        exact=False,
        width_fn=f.b24_t7_nearest_neighbor_tf2,
    ),
    Result(
        id="B24-T8",
        source="B24 Theorem 8",
        tasks=("nearest_neighbor", "mqar"),
        model_class="rnn",
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="m·p ≥ N/2",
        formula="m ≥ N/(2p)",
        assumptions="nearest_neighbor: N points, N ≤ 2^(b−1) so every point can be a query's "
        "unique nearest neighbour. mqar: pass N = 2P (the tokens of the P stored pairs), not "
        "the task's total length L.",
        constructions=(),
        argument="The state after the stored points (pairs) must determine every label (value) "
        "a later query can ask for: ≥ N label bits for nearest neighbour, ≥ P value bits for "
        "mqar; theory.md's N/2 is the weaker, convention-independent statement.",
        width_fn=f.b24_t8_nearest_neighbor_rnn,
        task_lengths={"mqar": TaskLength("2P", _mqar_stored_tokens)},
        error_note="no error-allowed form derived for the nearest_neighbor or mqar samplers",
    ),
    Result(
        id="H20",
        source="H20 Theorems (construction and lower bound)",
        tasks=("dyck_next",),
        model_class="rnn",
        direction="tight",
        form="D log k",
        quantity="width",
        statement="Θ(D log k): Elman 6D·log2 k − 2D units, LSTM 3D·log2 k − D units; "
        "o(D log k) impossible",
        formula="m = 6D·ceil(log2 k) − 2D (elman) or 3D·ceil(log2 k) − D (lstm)",
        lower_formula="m ≥ log2(Σ_{d≤D} k^d)/p",
        assumptions="Finite precision; sigmoid weights scaled (~10⁴) so gates act as steps. "
        "Constant in N. Recognition (the dyck task) adds an error latch and an empty-stack test.",
        constructions=("dyck_next_elman", "dyck_next_lstm", "dyck_recognize_rnn"),
        argument="Two different stacks are told apart by popping their common top: the next "
        "closer then differs. So the state takes Σ_{d≤D} k^d values: m·p ≥ D·log2 k.",
        params=(
            _TYPES,
            _DEPTH,
            BoundParam("cell", "elman", "H20 construction", kind=str, choices=("elman", "lstm")),
        ),
        width_fn=f.h20_stack_rnn,
        lower_fn=f.h20_lower,
        error_note="no error-allowed form derived for next-closer prediction averaged over "
        "positions and samples",
    ),
    Result(
        id="Y21",
        source="Y21 (soft-attention generator; hard-attention recogniser)",
        tasks=("dyck_next",),
        model_class="transformer-2",
        direction="upper",
        form="log k",
        quantity="width",
        statement="O(log k) width per position (soft attention); recognition with D + 1 "
        "hard-attention layers",
        formula="m ∝ ceil(log2 k) (form only)",
        assumptions="Two soft-attention layers generate Dyck-(k, D); D + 1 hard-attention layers "
        "recognise it. Constant in N; the constant is not fixed (exact=False).",
        constructions=(),
        argument=None,
        params=(_TYPES,),
        exact=False,
        width_fn=f.y21_dyck_tf2,
    ),
    Result(
        id="W24-R",
        source="W24 (retrieval lower bounds: Index, associative recall)",
        tasks=("index_lookup", "associative_recall"),
        model_class="rnn+cot",
        covers=("rnn",),
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="o(N) bits of state impossible (with or without CoT)",
        formula="m ≥ N·log2(k)/p (k = 2: N bits)",
        assumptions="Deterministic decoding; a chain of thought of any length. On "
        "associative recall k is the number of values (pass alphabet = values; the default 2 "
        "gives a weaker bound, still valid).",
        constructions=(),
        argument="Any chain of thought generated after the context is a function of the state "
        "after the context and the query, so B24-T3's fooling set applies unchanged: the state "
        "must determine all N symbols (values). W24 state Ω(N); the constant is the counting "
        "bound with alphabet k (default 2).",
        params=(_alphabet(2),),
        width_fn=f.index_information_bound,
        error_fn=f.index_error_bound,
        error_formula=_INDEX_ERROR_FORMULA,
    ),
    Result(
        id="W24-T",
        source="W24 (IsTree lower bound with CoT)",
        tasks=("is_tree",),
        model_class="rnn+cot",
        covers=("rnn",),
        direction="lower",
        form="linear",
        quantity="state bits",
        statement="o(n) bits of state impossible, CoT of any length",
        formula="m ≥ (n − 3)/p",
        assumptions="Deterministic decoding; the task's binary graph family (tasks.md).",
        constructions=(),
        argument="Fooling set on binary graphs: nodes 2..n−1 hang from hub 0 or 1 (bits x_i), "
        "the extra edge (i, i+1) comes last and the graph is a tree iff x_i ≠ x_(i+1). "
        "Everything after the hub edges is a function of the state and the last edge, so the "
        "state determines all x_i ⊕ x_(i+1): 2^(n−3) values, m·p ≥ n − 3. W24 state Ω(n).",
        width_fn=f.w24_t_is_tree_rnn_cot,
        error_note="no error-allowed form derived: the fooling set puts the extra edge last, "
        "but the is_tree sampler writes the edges in random order, so the argument does not "
        "carry over to an average over its distribution",
    ),
    Result(
        id="W24-C",
        source="W24 (IsTree with CoT, Transformer)",
        tasks=("is_tree",),
        model_class="transformer+cot",
        direction="upper",
        form="constant",
        quantity="width",
        statement="constant size, O(log n) precision, DFS trace of O(n) tokens",
        formula="m ∝ 1 (form only)",
        assumptions="CoT = the DFS trace of tasks.md (O(n) tokens); p = O(log n). The constant "
        "is not fixed (exact=False).",
        constructions=(),
        argument=None,
        exact=False,
        width_fn=f.w24_c_is_tree_tf_cot,
    ),
    Result(
        id="W24-RAG",
        source="W24 (RNN with in-context retrieval)",
        tasks=("is_tree",),
        model_class="rnn+retrieval",
        direction="upper",
        form="constant",
        quantity="width",
        statement="O(log n) bits of state (IsTree, and all of P with CoT)",
        formula="m = 2·ceil(ceil(log2 n)/p) + 1 numbers (3 once p ≥ log2 n)",
        assumptions="The retrieval trace of tasks.md; the retriever answers every query "
        "exactly. W24's O(log n) bits are 3 numbers of p ≥ log2 n bits: the width in numbers "
        "is constant at fixed p (the form a measured width is checked against); the state "
        "bits 3p grow like log n only at p = Θ(log n). A network that keeps one bit per unit "
        "(the sigmoid controller is_tree_retrieval) needs Θ(log n) units: it realises the bit "
        "count, not this packed width, and is judged against the bit form (log).",
        constructions=("is_tree_retrieval",),
        argument=None,
        width_fn=f.w24_rag_controller,
        bits_form="log",
    ),
    Result(
        id="W24-H",
        source="W24 (§5: an RNN followed by one Transformer layer)",
        tasks=("is_tree", "index_lookup", "associative_recall"),
        model_class="hybrid",
        direction="upper",
        form="constant",
        quantity="width",
        statement="O(log n) bits of state (IsTree, and all of P with CoT)",
        formula="m ∝ 1 number at p ≥ log2 n (form only)",
        assumptions="W24's hybrid keeps O(log n) bits of recurrent state at O(log n) "
        "precision and adds one attention layer that retrieves (a p-bit number can carry a "
        "position): at fixed p ≥ log2 n a constant number of numbers. W24 fix no width "
        "constant (exact=False); the text available here (the abstract of arXiv 2402.18510) "
        "states the claim, not the theorem's constants. The testbed's hybrid constructions use "
        "exact binary codes, one bit per unit: index_lookup_hybrid has width "
        "b + 2·ceil(log2 N) (grows like log N), associative_recall_hybrid 2·ceil(log2 K) + b_v "
        "(constant in N): bit counts, judged against the bit form (log).",
        constructions=("index_lookup_hybrid", "associative_recall_hybrid"),
        argument=None,
        exact=False,
        width_fn=f.w24_h_hybrid,
        bits_form="log",
    ),
    Result(
        id="IND",
        source="OL22 (the induction head) with B24 Lemma 2's nearly orthogonal addresses: "
        "theory.md's construction 'Associative recall, 2 layers (induction)'. B24 sets "
        "associative recall's RNN lower bound (B24-P9) against two-layer Transformers; its text "
        "could not be consulted here to cite a B24 theorem for this side, so none is claimed",
        tasks=("associative_recall",),
        model_class="transformer-2",
        direction="upper",
        form="log",
        quantity="width",
        statement="width O(log N): two layers, one head each (an induction head)",
        formula="m = 3·ceil((8/γ²)·ln(2·max(2N + 1, K))) + ceil(log2 v) + 1",
        assumptions="N pairs with distinct keys from K (K = O(poly N) for O(log N)), v values; "
        "p = O(log N). Layer 1 copies each key's content onto the value token after it, layer "
        "2 matches the query key against those copies; the width is the construction's at its "
        "default address dimension.",
        constructions=("associative_recall_2layer",),
        argument=None,
        params=(
            BoundParam(
                "keys",
                _fewest_keys,
                "key vocabulary size K (default N, the fewest the task allows; a study passes "
                "its task's)",
                minimum=1,
            ),
            BoundParam("values", 16, "number of possible values v", minimum=1),
            _GAMMA,
        ),
        width_fn=f.ind_associative_recall_tf2,
    ),
)

_BY_ID: dict[str, Result] = {r.id: r for r in _CATALOGUE}


def results() -> list[Result]:
    """Every result, in theory.md's table order."""
    return list(_CATALOGUE)


def ids() -> list[str]:
    """The result ids, in table order."""
    return list(_BY_ID)


def get(result_id: str) -> Result:
    """The result with this id; UserError listing the known ids otherwise."""
    try:
        return _BY_ID[result_id]
    except KeyError:
        raise UserError(
            f"unknown result '{result_id}'; known results: {', '.join(_BY_ID)}"
        ) from None


def tasks_covered() -> list[str]:
    """Every task some result is about, in first-mention order."""
    seen: dict[str, None] = {}
    for r in _CATALOGUE:
        for t in r.tasks:
            seen.setdefault(t, None)
    return list(seen)


def for_task(task: str, model_class: str | None = None) -> list[Result]:
    """Results about ``task`` (optionally only those applying to ``model_class``)."""
    if task not in tasks_covered():
        raise UserError(
            f"no results for task '{task}'; tasks with results: {', '.join(tasks_covered())}"
        )
    if model_class is not None and model_class not in MODEL_CLASSES:
        raise UserError(
            f"unknown model class '{model_class}'; known classes: {', '.join(MODEL_CLASSES)}"
        )
    return [
        r
        for r in _CATALOGUE
        if task in r.tasks and (model_class is None or model_class in r.model_classes)
    ]
