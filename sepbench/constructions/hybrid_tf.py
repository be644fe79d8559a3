"""W24-H: an RNN that only tags tokens, followed by exactly one attention layer that retrieves.

Two registered constructions on the ``hybrid`` family (``base="elman"`` with tanh units and
one-hot inputs, then one attention layer; no LayerNorm, no MLP, no biases, ``attn_scale=1``):

* ``index_lookup_hybrid`` — ``s{x1} … s{xN} @{p}`` → ``s{x_p}``; width b + 2⌈log2 N⌉;
* ``associative_recall_hybrid`` — ``k{a1} v{b1} … k{aN} v{bN} k{aj}`` → ``v{bj}``; width
  2⌈log2 K⌉ + b_v (K = the key vocabulary, b_v = ⌈log2 values⌉).

**Codes.** Everything is a ±1 code: ``signs(i, B)`` = 2·(binary code of i) − 1, so
⟨signs(i), signs(j)⟩ = B − 2·Hamming(i, j): B on a match, ≤ B − 2 otherwise, and 0 against a
zero vector. Exact binary addresses replace B24's random nearly-orthogonal ones: the match
margin is 2 (1 when B = 1) instead of γ, at dimension ⌈log2 N⌉ instead of O(log N / γ²).

**Attention** (one head, head dimension max(address bits, value bits)): the query block times
η goes to W_Q, the key block to W_K, the value block to W_V, and W_O writes the head's output
back into the value block, which is zero at the query position. With margin μ ≥ 1 and
η = ln(T) + 12 (T = token length), the weight off the target is ≤ T·e^(−η) = e^(−12), so the
averaged value code is within 10⁻⁵ of the target's ±1 code. **Readout**: logit(s) =
⟨signs(s), value block⟩: the target gets ≈ b, any other symbol ≤ b − 2 (+ 10⁻⁴), every
non-answer token 0.

**Precision.** The tanh units saturate (gain L = 10⁴) to exactly ±1 or sit at exactly 0; the
attention logits are at most η·B = O(log N · log N) and the decision margins are constants, so
p = O(log N) bits suffice (the softmax must resolve e^(−η) = 1/(e¹² T)).

**Bits, not numbers.** Every unit carries one ±1 (or 0) code symbol, so the width counts bits
(``unit_bits=True`` in both registrations). W24-H's O(log n) bits are, at fixed p ≥ log2 n, a
constant number of p-bit numbers — the catalogue's ``form`` — which a one-bit-per-unit network
cannot show: ``index_lookup_hybrid``'s b + 2⌈log2 N⌉ units grow like log N. Its curve is
therefore judged against W24-H's form in bits (log), the same O(log N)-bit statement.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sepbench import models, tasks
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.rnn_weights import SCALE, assign, check_scale, code_bits, signs

SHARPNESS = 12.0
"""η = ln(T) + SHARPNESS: the attention weight off the target is at most e^(−SHARPNESS)."""


def index_hybrid_width(length: int, alphabet: int) -> int:
    """b + 2A: symbol code b = ⌈log2 k⌉, query address A and key address A = ⌈log2 N⌉."""
    return code_bits(alphabet) + 2 * code_bits(length)


def recall_hybrid_width(keys: int, values: int) -> int:
    """2B + b_v: current-key code B = ⌈log2 K⌉, previous-key code B, value code b_v."""
    return 2 * code_bits(keys) + code_bits(values)


def _hybrid(vocab: int, width: int, head_dim: int, **extra: Any) -> models.SeqModel:
    return models.build(
        "hybrid",
        vocab,
        width,
        base="elman",
        nonlinearity="tanh",
        embedding="onehot",
        heads=1,
        head_dim=head_dim,
        attn_scale=1.0,
        layer_norm=False,
        mlp_width=0,
        bias=False,
        seed=0,
        **extra,
    )


@register(
    "index_lookup_hybrid",
    task="index_lookup",
    result_id="W24-H",
    form="log",
    summary="memoryless tanh RNN tags symbols/queries; one attention layer looks up position p",
    unit_bits=True,
)
def index_lookup_hybrid(
    length: int, alphabet: int = 4, max_length: int | None = None, scale: float = SCALE
) -> HandBuilt:
    """W24-H for ``index_lookup``: a token-tagging RNN + one attention layer, width b + 2⌈log2 N⌉.

    **Stream** (width m = b + 2A, b = ⌈log2 k⌉, A = ⌈log2 N⌉):

    ==============  ===========  ============================  ======================
    block           units        data token s at position i    query token @p (i = N)
    ==============  ===========  ============================  ======================
    symbol ρ        [0, b)       signs(s, b)      (RNN)        0 → attention output
    query address   [b, b + A)   0                             signs(p − 1, A)  (RNN)
    key address     [b + A, m)   signs(i, A) (position table)  0 (position table)
    ==============  ===========  ============================  ======================

    The RNN (tanh, gain L) writes ρ and the query address from the token's ``W_ih`` column;
    ``W_hh = 0``. The key addresses are the learned position table ``positions.pos_emb``,
    set by hand (``pos="learned"``, ``max_len = N + 1``). The query's logit is ηA at position
    p − 1 (0-based), ≤ η(A − 2) at other data positions and 0 at itself.

    **What is constant, what grows.** The recurrence carries nothing (W_hh = 0): the RNN is a
    per-token tagger whose work and state content do not depend on N — W24-H's "constant RNN".
    What grows is the address: A = ⌈log2 N⌉ units for the query address (written by the RNN
    from the ``@p`` token) and A for the key addresses (position table). Because the ``hybrid``
    family gives the RNN and the attention one shared stream width, the network's width is
    b + 2⌈log2 N⌉ = O(log N), and the attention layer's key/value cache grows as
    2·max(A, b) floats per position. Same form as B24-T1 (log2 k + 2·k_addr) with exact
    binary addresses, k_addr = ⌈log2 N⌉.
    """
    scale = check_scale(scale)
    task = tasks.make(
        "index_lookup",
        alphabet=alphabet,
        **({} if max_length is None else {"max_length": max_length}),
    )
    task.check_length(length)
    n = length
    b, a = code_bits(alphabet), code_bits(n)
    width = index_hybrid_width(n, alphabet)
    head = max(a, b)
    vocab = len(task.vocab)
    rho, qa, ka = np.arange(b), b + np.arange(a), b + a + np.arange(a)
    w_ih = np.zeros((width, vocab))
    for c in range(alphabet):
        w_ih[rho, task.token_to_id[f"s{c}"]] = scale * signs(c, b)
    for p in range(1, n + 1):
        w_ih[qa, task.token_to_id[f"@{p}"]] = scale * signs(p - 1, a)
    pos = np.zeros((n + 1, width))
    for i in range(n):
        pos[i, ka] = signs(i, a)
    eta = math.log(n + 1) + SHARPNESS
    w_q, w_k, w_v = (np.zeros((head, width)) for _ in range(3))
    w_o = np.zeros((width, head))
    w_q[np.arange(a), qa] = eta
    w_k[np.arange(a), ka] = 1.0
    w_v[np.arange(b), rho] = 1.0
    w_o[rho, np.arange(b)] = 1.0
    readout = np.zeros((vocab, width))
    for c in range(alphabet):
        readout[task.token_to_id[f"s{c}"], rho] = signs(c, b)
    model = _hybrid(vocab, width, head, pos="learned", max_len=n + 1)
    assign(
        model,
        {
            "rnn.weight_ih_l0": w_ih,
            "positions.pos_emb": pos,
            "block.attn.W_Q.weight": w_q,
            "block.attn.W_K.weight": w_k,
            "block.attn.W_V.weight": w_v,
            "block.attn.W_O.weight": w_o,
            "readout.weight": readout,
        },
    )
    return HandBuilt(
        module=model,
        width=width,
        result_id="W24-H",
        width_formula="⌈log2 k⌉ + 2⌈log2 N⌉ (RNN recurrence: none; addresses: ⌈log2 N⌉ each)",
        task=task,
        length=length,
        width_params={"alphabet": alphabet},
        notes="Exact ±1 binary addresses (margin 2) instead of random ones; the position table "
        "holds the key addresses; the RNN's W_hh is zero (a tagger).",
    )


@register(
    "associative_recall_hybrid",
    task="associative_recall",
    result_id="W24-H",
    form="log",
    summary="tanh RNN tags each value with the key before it; one attention layer matches keys",
    unit_bits=True,
)
def associative_recall_hybrid(
    length: int, keys: int = 1024, values: int = 16, scale: float = SCALE
) -> HandBuilt:
    """W24-H for ``associative_recall``: an RNN that tags each value with its key + one
    attention layer; width 2⌈log2 K⌉ + ⌈log2 values⌉, independent of N at a fixed key
    vocabulary K (K ≥ N, so ≥ 2⌈log2 N⌉ + ⌈log2 values⌉ in general).

    **Stream** (B = ⌈log2 K⌉, b_v = ⌈log2 values⌉; m = 2B + b_v), no positions (``pos="none"``):

    =================  ===============  ====================  ====================
    block              units            key token k{a}        value token after k{a}
    =================  ===============  ====================  ====================
    current key  Q     [0, B)           signs(a, B)           0
    previous key K     [B, 2B)          0                     signs(a, B)
    value        V     [2B, m)          0 → attention out     signs(b, b_v)
    =================  ===============  ====================  ====================

    **RNN** (tanh, gain L): Q and V from the token's ``W_ih`` column; K = tanh(L·Q_{t−1})
    through ``W_hh`` (an L·identity from Q to K). Keys and values alternate, so the step
    before a key is a value (Q = 0, hence K = 0 at every key, the final query included) and the
    step before a value is its key (K = that key's code): the recurrence is a one-token shift
    register — its state depends on the last token only, never on N.

    **Attention** from the final key k{a_j}: query η·Q = η·signs(a_j), keys K. Logit ηB at the
    value after a_j, ≤ η(B − 2) at other values (keys are distinct), 0 at every key token:
    margin ≥ 1. The averaged V is ≈ signs(b_j), written by W_O into the V block (zero at the
    query) and read out as in the module docstring.

    **What is constant, what grows.** The RNN's recurrence is a one-step copy of B numbers,
    the same at every N; the attention does all retrieval. The width 2B + b_v depends on the
    key vocabulary only: constant in N at fixed K, and since N distinct keys need K ≥ N it is
    ≥ 2⌈log2 N⌉ + b_v — O(log N), W24-H's form. The key/value cache grows by 2·max(B, b_v)
    floats per token.
    """
    scale = check_scale(scale)
    task = tasks.make("associative_recall", keys=keys, values=values)
    task.check_length(length)
    big_b, bv = code_bits(keys), code_bits(values)
    width = recall_hybrid_width(keys, values)
    head = max(big_b, bv)
    vocab = len(task.vocab)
    q_blk, k_blk, v_blk = np.arange(big_b), big_b + np.arange(big_b), 2 * big_b + np.arange(bv)
    w_ih = np.zeros((width, vocab))
    for a in range(keys):
        w_ih[q_blk, task.token_to_id[f"k{a}"]] = scale * signs(a, big_b)
    for v in range(values):
        w_ih[v_blk, task.token_to_id[f"v{v}"]] = scale * signs(v, bv)
    w_hh = np.zeros((width, width))
    w_hh[k_blk, q_blk] = scale
    eta = math.log(2 * length + 1) + SHARPNESS
    w_q, w_k, w_v = (np.zeros((head, width)) for _ in range(3))
    w_o = np.zeros((width, head))
    w_q[np.arange(big_b), q_blk] = eta
    w_k[np.arange(big_b), k_blk] = 1.0
    w_v[np.arange(bv), v_blk] = 1.0
    w_o[v_blk, np.arange(bv)] = 1.0
    readout = np.zeros((vocab, width))
    for v in range(values):
        readout[task.token_to_id[f"v{v}"], v_blk] = signs(v, bv)
    model = _hybrid(vocab, width, head, pos="none")
    assign(
        model,
        {
            "rnn.weight_ih_l0": w_ih,
            "rnn.weight_hh_l0": w_hh,
            "block.attn.W_Q.weight": w_q,
            "block.attn.W_K.weight": w_k,
            "block.attn.W_V.weight": w_v,
            "block.attn.W_O.weight": w_o,
            "readout.weight": readout,
        },
    )
    return HandBuilt(
        module=model,
        width=width,
        result_id="W24-H",
        width_formula="2⌈log2 keys⌉ + ⌈log2 values⌉ (constant in N at fixed keys ≥ N)",
        task=task,
        length=length,
        width_params={"keys": keys, "values": values},
        notes="The RNN is a one-token shift register (previous key's code onto each value); "
        "exact ±1 key codes, no positions.",
    )
