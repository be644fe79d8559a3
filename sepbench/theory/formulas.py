"""The bound formulas, one pure function per result, each with its derivation.

Every function takes the problem size ``n`` (the task's ``length``, see tasks.md), the precision
``p`` in bits per number (B24 §2: every number of the model lives on a p-bit grid) and the
result's parameters, and returns a width in *numbers* (hidden units, embedding dimensions) as a
float. Lower bounds return the smallest width the bound allows; upper bounds return the width
of the construction. No rounding is applied to lower bounds (the caller may take ``ceil``);
construction widths are integers already.

The recurring ingredients:

* **State bits.** An RNN whose state is m numbers of p bits can be in at most 2^(m·p) states,
  so if a fooling set forces S distinguishable states after some prefix, m·p ≥ log2 S and
  m ≥ log2(S)/p. Every RNN lower bound below is of this form (B24 §2, "Model of computation").
* **Nearly orthogonal addresses** (B24 Lemma 2), :func:`address_dim`.

Plain scalar formulas: no numpy needed.
"""

from __future__ import annotations

import math

from sepbench.errors import UserError

PRECISION_SLACK = 8
"""Bits added to ceil(log2 N) by :func:`default_precision`."""

ADDRESS_GAMMA = 0.25
"""Default cross-product bound γ for the address vectors of the B24 constructions."""


def default_precision(length: int) -> int:
    """The precision used when none is given: p(N) = ceil(log2 N) + 8 bits.

    B24's theorems take p = Θ(log N): a grid of step N^(−K) clipped at ±N^K. Positions alone need
    ceil(log2 N) bits; the 8 extra bits stand for the constant K (roughly two decimal digits of
    fraction on top of the integer part). At N = 16, 256, 4096 this gives p = 12, 16, 20 bits.
    Measurements of trained float32 models should pass p = 32 explicitly.
    """
    return math.ceil(math.log2(max(length, 2))) + PRECISION_SLACK


def code_bits(symbols: int) -> int:
    """Width of a binary code for ``symbols`` distinct values: ceil(log2 symbols), at least 1."""
    return max(1, math.ceil(math.log2(symbols)))


def address_dim(count: int, gamma: float = ADDRESS_GAMMA) -> int:
    """Dimension k of ``count`` random sign vectors whose cross products all stay below γ.

    B24 Lemma 2 (as theory.md states it): T(i) ∈ {±1/√k}^k with i.i.d. signs has ⟨T(i),T(i)⟩ = 1
    and ⟨T(i),T(j)⟩ = (1/k)·Σ of k independent ±1, so by Hoeffding
    P(|⟨T(i),T(j)⟩| ≥ γ) ≤ 2·exp(−kγ²/2). A union bound over fewer than count²/2 pairs gives a
    failure probability below count²·exp(−kγ²/2); at k = (8/γ²)·ln(2·count) that is
    count²·(2·count)^(−4) = 1/(16·count²). So k = ceil((8/γ²)·ln 2N) succeeds with probability
    at least 1 − 1/(16N²): a *sufficient* width. (The bare existence bound is (4/γ²)·ln N; random
    draws that verify typically need still less, which is what the testbed's constructive width
    measures.) At γ = 1/4: k = ceil(128·ln 2N).
    """
    return math.ceil((8.0 / gamma**2) * math.log(2 * count))


# --------------------------------------------------------------------------------------------
# B24: Bhattamishra, Hahn, Blunsom, Kanade 2024
# --------------------------------------------------------------------------------------------


def b24_t1_index_lookup_tf1(n: int, p: int, *, alphabet: int, gamma: float) -> float:
    """B24-T1 construction width: ceil(log2 k) + 2·address_dim(N, γ).

    Embedding blocks (theory.md, Constructions): a data token at position i is
    [ρ(s) | 0_kaddr | T(i)] and the query @p is [0 | T(p) | 0_kaddr], with ρ the binary code of
    the symbol (ceil(log2 k) units) and T the nearly orthogonal addresses of the N positions.
    W_Q = η·(middle block), W_K = (last block), W_V = (ρ block): the query's logit is ≥ 3η/4 at
    p and ≤ η/4 elsewhere (cross products < γ = 1/4), so η > 2·ln(3(N+1)) puts more than 3/4 of
    the attention on p and a ReLU threshold at 1/2 per bit recovers ρ(x_p). Width
    ceil(log2 k) + 2·k_addr = O(log N); p enters only as the requirement p = O(log N).
    """
    del p
    return float(code_bits(alphabet) + 2 * address_dim(n, gamma))


def index_information_bound(n: int, p: int, *, alphabet: int) -> float:
    """B24-T3 (and W24-R): m ≥ N·log2(k)/p.

    Fooling set: after reading x ∈ [k]^N the state must determine x, since for x ≠ x' some
    query @i (x_i ≠ x'_i) gives different answers and everything after the string is a
    function of the state and the query. So 2^(m·p) ≥ k^N, i.e. m·p ≥ N·log2 k (the
    deterministic one-way communication complexity of INDEX). For k = 2 this is B24's m·p ≥ N.
    Linear in N at fixed p. The same count holds with chain of thought (W24-R): the generated
    tokens are functions of the state too.
    """
    return n * math.log2(alphabet) / p


# --------------------------------------------------------------------------------------------
# error-allowed forms (answers right on average under the task's sampler)
# --------------------------------------------------------------------------------------------


def binary_entropy(e: float) -> float:
    """h(ε) = −ε·log2 ε − (1 − ε)·log2(1 − ε), with h(0) = h(1) = 0."""
    if e <= 0.0 or e >= 1.0:
        return 0.0
    return -e * math.log2(e) - (1.0 - e) * math.log2(1.0 - e)


def fano_bits(symbols: int, error: float) -> float:
    """log2 k − h(ε) − ε·log2(k − 1), floored at 0: the bits per symbol a state must keep to
    recover each of k equally likely symbols with error probability ε (Fano's inequality,
    Cover & Thomas, *Elements of Information Theory*, 2nd ed., Theorem 2.10.1). 0 from
    ε = 1 − 1/k (chance) on."""
    if not 0.0 <= error < 1.0:
        raise UserError(f"error must be in [0, 1), got {error!r}")
    if error >= 1.0 - 1.0 / symbols:
        return 0.0
    return max(0.0, math.log2(symbols) - binary_entropy(error) - error * math.log2(symbols - 1))


def index_error_bound(n: int, p: int, error: float, *, alphabet: int) -> float:
    """B24-T3 and W24-R allowing errors: m ≥ N·(log2 k − h(ε) − ε·log2(k − 1))/p.

    Hypotheses — the task's sampler, checked in sepbench/tasks/index_lookup.py and by
    tests/theory/test_error_forms.py: the symbols x_1..x_N are i.i.d. uniform over the k
    symbols and the queried position i is uniform over 1..N, independent of x. The model
    answers correctly with probability ≥ 1 − ε over that distribution (its *average*
    accuracy, what a study's threshold measures), deterministically.

    Derivation (per-coordinate Fano). Let S = s(x) be the recurrent state after the N
    symbols: a function of x taking at most 2^(m·p) values. Everything after the string — the
    query token, a chain of thought, the answer — is a function of S and i, so the answer is
    g(S, i). Let ε_i = P(g(S, i) ≠ x_i); the average error is ε̄ = (1/N)·Σ ε_i ≤ ε. Fano's
    inequality for estimating x_i from S gives H(x_i | S) ≤ φ(ε_i) with
    φ(e) = h(e) + e·log2(k − 1); subadditivity gives H(x | S) ≤ Σ_i H(x_i | S). φ is concave
    (Jensen: Σ φ(ε_i) ≤ N·φ(ε̄)) and increasing on [0, 1 − 1/k], so H(x | S) ≤ N·φ(ε) for
    ε ≤ 1 − 1/k. Hence m·p ≥ H(S) ≥ I(x; S) = H(x) − H(x | S) ≥ N·(log2 k − φ(ε)). At ε = 0
    this is B24-T3's N·log2 k; for k = 2 and ε = 0.1 it is 0.531·N bits — about half (issue
    9); for ε ≥ 1 − 1/k it is 0. (The same information argument gives INDEX its Ω(N)
    distributional one-way communication complexity, Kremer, Nisan & Ron 1999; this
    per-coordinate form is derived here.)
    """
    return n * fano_bits(alphabet, error) / p


def b24_p9_error_bound(n: int, p: int, error: float, *, values: int) -> float:
    """B24-P9 allowing errors: m ≥ N·(log2 v − h(ε) − ε·log2(v − 1))/p.

    Hypotheses — the associative_recall sampler (sepbench/tasks/recall.py, checked by
    tests/theory/test_error_forms.py): N distinct keys K, values V_1..V_N i.i.d. uniform over
    the v values and independent of the keys, the queried pair j uniform over 1..N and
    independent of both; correct with probability ≥ 1 − ε over that distribution.

    Derivation: the state after the pairs is S = s(K, V) and the answer g(S, K_j) (the query
    token is the key K_j). Conditioned on the keys, Fano gives H(V_j | S, K) ≤ φ(ε_j) with
    ε_j = P(g(S, K_j) ≠ V_j) and φ as in :func:`index_error_bound`, so as there
    m·p ≥ H(S | K) ≥ I(V; S | K) = H(V | K) − H(V | S, K) ≥ N·(log2 v − φ(ε)).
    """
    return n * fano_bits(values, error) / p


def b24_p9_associative_recall_rnn(n: int, p: int, *, values: int) -> float:
    """B24-P9: m ≥ N·log2(v)/p for N key–value pairs with v possible values.

    Fix the N distinct keys; the values range over [v]^N and a final query on key j must return
    v_j, so the state after the pairs must determine all N values: m·p ≥ N·log2 v. For binary
    values this is theory.md's m·p ≥ N.
    """
    return n * math.log2(values) / p


def ind_associative_recall_tf2(n: int, p: int, *, keys: int, values: int, gamma: float) -> float:
    """IND construction width: 3·address_dim(max(2N + 1, K), γ) + ceil(log2 v) + 1.

    The induction head of theory.md ("Associative recall, 2 layers"), as
    ``sepbench.constructions.associative_recall_2layer`` builds it at its default address
    dimension: three address blocks of k = address_dim(max(T, K)) units (the key content E,
    the own position T(t), the previous position T(t − 1); T = 2N + 1 tokens, K keys), the
    binary value code (ceil(log2 v) units) and one value flag. Layer 1 attends from T(t − 1)
    to T(t) and copies the previous token's content, so each value carries its key; layer 2
    matches the query's content against those copies and returns the value code. O(log N) for
    K = O(poly N); p enters only as the requirement p = O(log N).
    """
    del p
    return float(3 * address_dim(max(2 * n + 1, keys), gamma) + code_bits(values) + 1)


def b24_t5_dyck_tf1(n: int, p: int, *, heads: int) -> float:
    """B24-T5: m·H ≥ (N − 1)/(3(p + log2 N)), returned as m ≥ (N − 1)/(3H(p + log2 N)).

    B24's one-layer protocol: for any split of the positions between two players, a one-layer
    Transformer's output can be computed by exchanging 3m(p + log2 N)·H bits (per head, a
    constant number of m-dimensional partial attention sums, each entry a p-bit number that may
    grow by log2 N bits when N terms are added). Dyck-(2, 2) under the odd/even split of
    positions needs N − 1 bits (B24's fooling-set lemma). Hence 3m(p + log2 N)H ≥ N − 1.
    Linear in N up to the log2 N in the denominator: Θ(N/log N) when p = Θ(log N).
    """
    return max(0.0, (n - 1) / (3.0 * heads * (p + math.log2(n))))


def dyck_stack_states(types: int, depth: int) -> int:
    """Number of stacks of depth ≤ D over k types: Σ_{d=0}^{D} k^d."""
    return sum(types**d for d in range(depth + 1))


def b24_e_dyck_automaton(n: int, p: int, *, types: int, depth: int) -> float:
    """B24-E: the Elman width of the Dyck-(k, D) automaton, constant in N (13 for (2, 2)).

    The minimal DFA of Dyck-(k, D) has Σ_{d=0}^{D} k^d live states (7 for k = D = 2, theory.md's
    "7-state automaton") plus a dead state. One unit per live state does not work in an Elman
    RNN with a monotone activation (a state entered by two different pops needs
    contradictory thresholds), and the model starts from the zero vector, which must be the
    start state. ``sepbench.constructions.dyck22_automaton`` therefore uses one unit per
    (non-empty stack, entry kind): Σ_{d=1}^{D} k^d units entered by a push and Σ_{d=2}^{D} k^d
    entered by a pop, plus k + 1 dead units — 6 + 4 + 3 = 13 for k = D = 2 (derived in its
    docstring). This fixes theory.md's count; the constant-width claim stands.
    """
    del n, p
    pushed = sum(types**d for d in range(1, depth + 1))
    popped = sum(types**d for d in range(2, depth + 1))
    return float(pushed + popped + types + 1)


def string_equality_rnn(n: int, p: int, *, alphabet: int) -> float:
    """B24-T11 in the task's N: m ≥ N·log2(k)/p for two halves of length N.

    Fooling set: after reading x and the separator the state must determine x ∈ [k]^N, since
    x|x is "eq" and x'|x is "neq" for any x' ≠ x. So m·p ≥ N·log2 k. theory.md writes
    m·p ≥ N/2 with B24's N = the total length of both halves; in the task's convention
    (N = the length of each half, tasks.md) the same bound reads m·p ≥ N for k = 2.
    """
    return n * math.log2(alphabet) / p


def b24_t12_pair_tf1(n: int, p: int, *, heads: int) -> float:
    """B24-T12: 3m(p + log2 N)H ≥ N, returned as m ≥ N/(3H(p + log2 N)).

    The one-layer protocol of B24-T5 with Alice holding x and Bob y: EQ and DISJ on N-bit
    strings need N bits of deterministic communication, so 3m(p + log2 N)H ≥ N (N = the length
    of each half, the strings of the communication problem).
    """
    return n / (3.0 * heads * (p + math.log2(n)))


def b24_t6_string_equality_tf2(n: int, p: int, *, alphabet: int, gamma: float) -> float:
    """B24-T6 construction width: 2·ceil(log2 k) + 2·address_dim(2N + 1, γ) + 1.

    Embedding [x_i | 0 | T(i) | T(partner) | 1] (theory.md): the symbol code, an equally wide
    empty block that layer 1 fills with the partner's symbol, the position's address, the
    partner's address (second-half positions point at i − N − 1, first-half ones at
    themselves) and a constant unit; addresses cover all 2N + 1 positions. Layer 1's query
    [T(partner), 1] against key [T(j), −1/2] has logit 1/2 at the partner and < γ − 1/2 < 0
    elsewhere, made one-hot by a large η; the MLP writes the mismatch flag; layer 2 averages the
    flags and says "neq" iff the average ≥ 1/(2N). O(log N) width.
    """
    del p
    return float(2 * code_bits(alphabet) + 2 * address_dim(2 * n + 1, gamma) + 1)


def b24_t13_disjointness_tf2(n: int, p: int, *, gamma: float) -> float:
    """B24-T13 construction width: B24-T6's layout over bits, 2 + 2·address_dim(2N + 1, γ) + 1.

    The same two layers as B24-T6 with AND in place of XOR in layer 1's MLP: layer 2 averages
    the flags x_i ∧ y_i and answers "intersect" iff the average ≥ 1/(2N).
    """
    return b24_t6_string_equality_tf2(n, p, alphabet=2, gamma=gamma)


def b24_t7_nearest_neighbor_tf2(n: int, p: int, *, bits: int, labels: int, gamma: float) -> float:
    """B24-T7 construction width (block count of theory.md's sketch):
    b + ceil(log2 L) + 2·address_dim(2N + 1, γ) + 2.

    Blocks: the point (b coordinates, the ±1/√b embedding of its code), the label code, the
    token's address, the fetched address of the nearest point's label token, and two flags
    (label token, query token) that carry the large negative attention biases. Layer 1 attends
    by content ⟨x_q, x_i⟩ (η ≈ (5/(4γ))·ln 18N for margin γ) and fetches the next position's
    address; layer 2 looks it up. With b = ceil(log2(N + 1)) at least, the width is O(log N).
    """
    del p
    if 2**bits < n + 1:
        raise UserError(
            f"result 'B24-T7': {n} points and a query need bits >= "
            f"{math.ceil(math.log2(n + 1))}, got bits={bits}"
        )
    return float(bits + code_bits(labels) + 2 * address_dim(2 * n + 1, gamma) + 2)


def b24_t8_nearest_neighbor_rnn(n: int, p: int) -> float:
    """B24-T8: m ≥ N/(2p).

    A fooling set over the labels of the stored points: if every point is the unique nearest
    neighbour of some possible query (true for b-bit codes whenever N ≤ 2^(b−1): points with a
    0 last bit, queries with it flipped), the state after the points must determine all N
    labels, N·log2 L ≥ N bits. theory.md's N/2 is the weaker statement, valid under either
    counting convention, and is what is returned. For mqar read N as 2P, the tokens of the P
    stored pairs: the state must hold all P values (≥ P bits); the query region adds nothing.
    """
    return n / (2.0 * p)


# --------------------------------------------------------------------------------------------
# H20 (Hewitt et al. 2020) and Y21 (Yao et al. 2021)
# --------------------------------------------------------------------------------------------


def h20_stack_rnn(n: int, p: int, *, types: int, depth: int, cell: str) -> float:
    """H20 construction width: Elman 6D·ceil(log2 k) − 2D, LSTM 3D·ceil(log2 k) − D.

    The stack has D slots, each a code of s = 3·ceil(log2 k) − 1 units (type i ↦
    [b(i), 1 − b(i), 1_(log2 k − 1)], readout r_i = [b(i), 1 − b(i), −1] with
    r_i·code_j = 1 − Hamming(i, j)). Elman needs a push half and a pop half: 2·D·s units; the
    LSTM keeps the stack in its cell: D·s units. Independent of N.
    """
    del n, p
    s = 3 * code_bits(types) - 1
    return float(2 * depth * s if cell == "elman" else depth * s)


def h20_lower(n: int, p: int, *, types: int, depth: int, cell: str = "elman") -> float:
    """H20 lower bound: m ≥ log2(Σ_{d=0}^{D} k^d)/p ≥ D·log2(k)/p.

    Any two different stacks must lead to different states: pop their common top; then their
    tops differ (or one is empty), so the next-closer target differs. The state must therefore
    take all Σ k^d values: m·p ≥ log2 Σ_{d≤D} k^d ≥ D·log2 k, H20's "o(D log k) impossible".
    """
    del n, cell  # the lower bound holds for every cell
    return math.log2(dyck_stack_states(types, depth)) / p


def y21_dyck_tf2(n: int, p: int, *, types: int) -> float:
    """Y21: O(log k) memory per position (form only): returned as ceil(log2 k).

    Y21 construct a two-layer soft-attention network generating Dyck-(k, D) with O(log k)
    memory size per token per layer (and a (D + 1)-layer hard-attention recogniser). The
    constant is not fixed here: only the growth (independent of N, logarithmic in k) is.
    """
    del n, p
    return float(code_bits(types))


# --------------------------------------------------------------------------------------------
# W24: Wen, Dang, Lyu 2024
# --------------------------------------------------------------------------------------------


def w24_t_is_tree_rnn_cot(n: int, p: int) -> float:
    """W24-T in concrete form: m ≥ (n − 3)/p for IsTree with any chain of thought.

    Our fooling set on the task's `binary` graphs (tasks.md): with π the identity, every node
    2..n−1 hangs from hub 0 or hub 1 (bits x_2..x_(n−1)) and the extra edge joins i, i + 1,
    i ∈ 2..n−2; the graph is a tree iff x_i ≠ x_(i+1). Feed the n − 2 hub edges first and the
    extra edge last: everything after the hub edges — the last edge, [EOS], any chain of
    thought, the answer — is a function of the state and the last edge, so the state must
    determine every x_i ⊕ x_(i+1): 2^(n−3) values, m·p ≥ n − 3. W24 state Ω(n) bits; the
    constant 1 is ours.
    """
    return max(0.0, (n - 3) / p)


def w24_c_is_tree_tf_cot(n: int, p: int) -> float:
    """W24-C: constant size (form only, unit constant): 1.

    W24 give a constant-size Transformer with O(log n) precision that emits the DFS trace of
    O(n) tokens and the answer. The constant is not fixed here.
    """
    del n, p
    return 1.0


def w24_rag_controller(n: int, p: int) -> float:
    """W24-RAG: the retrieval controller's state, 2·ceil(ceil(log2 n)/p) + 1 numbers.

    Between retrievals the DFS-with-retrieval trace (tasks.md) remembers only the current node,
    the previous node and a phase (theory.md): two node ids of ceil(log2 n) bits, each packed
    into ceil(ceil(log2 n)/p) numbers of p bits, and one number for the phase. At p ≥ log2 n
    this is 3 numbers — constant in n at fixed p (the record's form) — i.e. 3p = O(log n) bits
    of state at p = Θ(log n), W24's statement.
    """
    words = math.ceil(code_bits(n) / p)
    return float(2 * words + 1)


def w24_h_hybrid(n: int, p: int) -> float:
    """W24-H (form only, unit constant): 1 number at p ≥ log2 n.

    W24 (§5; the abstract of arXiv 2402.18510: "adding a single Transformer layer" to an RNN
    solves all polynomial-time problems with CoT) give an RNN followed by one Transformer
    layer whose recurrent state is O(log n) bits at O(log n) precision: a constant number of
    p-bit numbers once p ≥ log2 n, and an attention layer that needs no more (one p-bit number
    can carry a position). No constant is fixed here, only the form: constant in n at fixed p.
    """
    del n, p
    return 1.0
