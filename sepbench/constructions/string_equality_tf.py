"""B24-T6 (string equality) and B24-T13 (disjointness): two-layer Transformers of width O(log N).

Tasks (tasks.md): ``x1 … xN | y1 … yN`` → ``eq``/``neq`` (symbols ``s{i}``) or
``disjoint``/``intersect`` (bits ``b0``/``b1``), answered at the last position. Token positions
t = 0 … 2N (0-indexed): x_i at t = i − 1, the separator at t = N, y_i at t = N + i. The
*partner* of a second-half position t is t − N − 1 (where the matching x sits); every other
position is its own partner.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sepbench import tasks
from sepbench.constructions.addresses import (
    attention,
    bias,
    binary_codes,
    check_gamma,
    code_bits,
    margin_dim,
    mlp,
    put,
    random_addresses,
    transformer,
)
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.index_lookup_tf import _length
from sepbench.theory import address_dim

FIRST_HALF_OFFSET = -2.0
"""Disjointness: added to the bit unit at positions ≤ N (so a first-half AND can never fire)."""


def _admissible(
    length: int, start: int = 1, gamma: float = 0.25, seed: int = 0, **_: Any
) -> int | None:
    """The smallest ``addr_dim`` ≥ ``start`` whose 2N + 1 position addresses satisfy the
    margin (both pair networks draw the same family)."""
    return margin_dim(2 * _length(length) + 1, check_gamma(gamma), seed, 0, start)


def partners(n: int) -> np.ndarray:
    """Partner position of every token position t = 0 … 2N (see the module docstring)."""
    t = np.arange(2 * n + 1)
    return np.where(t > n, t - n - 1, t)


def _pair_network(
    task: tasks.Task, n: int, addr_dim: int | None, gamma: float, seed: int, conjunction: bool
) -> tuple[HandBuilt, float]:
    """The common two-layer network; ``conjunction`` selects AND (disjointness) over XOR."""
    tokens = 2 * n + 1
    gamma = check_gamma(gamma)
    dim = address_dim(tokens, gamma) if addr_dim is None else int(addr_dim)
    addr = random_addresses(tokens, dim, seed)
    if conjunction:
        bits, codes, sym0 = 1, np.array([[0.0], [1.0]]), task.token_to_id["b0"]
        yes, no = task.token_to_id["disjoint"], task.token_to_id["intersect"]
    else:
        k = task.params["alphabet"]
        bits, codes, sym0 = code_bits(k), binary_codes(k)[:k], task.token_to_id["s0"]
        yes, no = task.token_to_id["eq"], task.token_to_id["neq"]
    width = bits + 2 * dim + 1
    code, own, other, flag = (
        slice(0, bits),
        slice(bits, bits + dim),
        slice(bits + dim, bits + 2 * dim),
        bits + 2 * dim,
    )
    # layer 1 must leave at most eps of attention off the partner: eps <= 1/(C·T) with C = 16B
    # (XOR) or 24 (AND, values spread over 3) — see the docstrings
    const = 24.0 if conjunction else 16.0 * bits
    eta = math.log(const * tokens * tokens) / (1.0 - gamma)  # from gamma, not from the draw
    threshold = 1.0 / (2 * tokens)
    model = transformer(
        len(task.vocab),
        width,
        layers=2,
        heads=1,
        head_dim=max(dim, bits),
        pos="learned",
        max_len=tokens,
        mlp_width=2 * bits if not conjunction else 1,
    )
    put(model.embed.weight, slice(sym0, sym0 + codes.shape[0]), code, value=codes)
    assert model.pos_emb is not None
    put(model.pos_emb, slice(None), own, value=addr.vectors)
    put(model.pos_emb, slice(None), other, value=addr.vectors[partners(n)])
    if conjunction:
        put(model.pos_emb, slice(0, n + 1), code, value=FIRST_HALF_OFFSET)
    # layer 1: fetch the partner's code by address
    a1 = attention(model, 0)
    eye = np.eye(dim)
    put(a1.W_Q.weight, slice(0, dim), other, value=eta * eye)
    put(a1.W_K.weight, slice(0, dim), own, value=eye)
    put(a1.W_V.weight, slice(0, bits), code, value=np.eye(bits))
    sign = 1.0 if conjunction else -1.0  # AND: c = u + v̂; XOR: d = u − v̂
    put(a1.W_O.weight, code, slice(0, bits), value=sign * np.eye(bits))
    m1 = mlp(model, 0)
    if conjunction:  # flag = relu(c + 1) = x ∧ y on the second half, 0 elsewhere
        put(m1.fc1.weight, 0, code, value=1.0)
        put(bias(m1.fc1), 0, value=1.0)
        put(m1.fc2.weight, flag, 0, value=1.0)
    else:  # flag = Σ_b |d_b| = Σ_b relu(d_b) + relu(−d_b)
        for b in range(bits):
            put(m1.fc1.weight, 2 * b, b, value=1.0)
            put(m1.fc1.weight, 2 * b + 1, b, value=-1.0)
        put(m1.fc2.weight, flag, slice(0, 2 * bits), value=1.0)
    # layer 2: zero query = uniform average of the flags, added to the last position's flag
    a2 = attention(model, 1)
    put(a2.W_V.weight, 0, flag, value=1.0)
    put(a2.W_O.weight, flag, 0, value=1.0)
    # readout: ±S·(flag − θ) for the two answers, S = 1/θ; every other token 0
    scale = 1.0 / threshold
    put(model.readout.weight, no, flag, value=scale)
    put(model.readout.weight, yes, flag, value=-scale)
    put(bias(model.readout), no, value=-1.0)
    put(bias(model.readout), yes, value=1.0)
    notes = f"eta = {eta:.4g} (from gamma), threshold = 1/(2(2N+1)) = {threshold:.3g}"
    hb = HandBuilt(
        module=model,
        width=width,
        result_id="B24-T13" if conjunction else "B24-T6",
        width_formula="2*k_addr + 2" if conjunction else "ceil(log2 k) + 2*k_addr + 1",
        task=task,
        length=n,
        width_params={"addr_dim": dim},
        notes=notes,
        hypotheses=addr.margin_text(gamma, "position addresses"),
        hypotheses_hold=addr.margin_holds(gamma),
    )
    return hb, eta


@register(
    "string_equality_2layer",
    task="string_equality",
    result_id="B24-T6",
    form="log",
    summary="layer 1 fetches each y_i's partner x_i by address, layer 2 averages mismatch flags",
    width_knob="addr_dim",
    admissible=_admissible,
)
def string_equality_2layer(
    length: int,
    alphabet: int = 2,
    negatives: str = "mixed",
    addr_dim: int | None = None,
    gamma: float = 0.25,
    seed: int = 0,
) -> HandBuilt:
    """B24 Theorem 6: string equality with two layers, one head each, width O(log N).

    **Layout** (B = ⌈log2 k⌉ code bits, K = ``addr_dim``, T = 2N + 1 positions):
    code c [0, B) (the symbol's binary code, from ``embed``; 0 for ``|``), own address T(t)
    [B, B+K) and partner address T(partner(t)) [B+K, B+2K) (both from the position table),
    and one flag unit f at B + 2K. Width m = B + 2K + 1.

    **Hypothesis** (B24 Lemma 2 at margin γ over the T position addresses, checked on the
    draw: ``hypotheses_hold``): every |⟨T(t), T(t')⟩| ≤ γ for t ≠ t'.

    **Layer 1** (fetch): query η·T(partner(t)), key T(t'), value c(t'); W_O *subtracts* the
    fetched code from c, leaving d = c(t) − ĉ(partner). The partner's logit is η, every other
    one ≤ ηγ, so at most ε ≤ (T − 1)e^(−η(1−γ)) of the attention is elsewhere and every
    |d_b| ≤ ε when the symbols agree, ≥ 1 − ε in a bit where they differ.
    η = ln(16·B·T²)/(1 − γ) — from γ alone, never from the draw — makes ε ≤ 1/(16·B·T).
    The MLP (2B hidden units) writes f = Σ_b relu(d_b) + relu(−d_b) = Σ_b |d_b|: ≈ 0 on the
    first half and the separator (their partner is themselves) and on matching second-half
    positions, ≥ 1 − ε on a mismatch.

    **Layer 2** (average): zero query and key, so the last position attends uniformly to all T
    positions; W_V/W_O add the average of f to the last position's own f. Equal strings: the
    final f ≤ 2Bε ≤ 1/(8T); unequal: ≥ (1 − ε)/T. **Readout**: ``neq`` = S(f − θ), ``eq`` =
    −S(f − θ) with θ = 1/(2T) and S = 1/θ, all other tokens 0 — the right answer has logit
    ≥ 3/4 − small, the wrong one the negative of it. The threshold 1/(2T) is where B24's
    Θ(log N) precision enters: f must be resolved to ~1/N.

    *Fixes to theory.md's sketch*: no separate "fetched" block — W_O writes −ĉ onto the code
    block, and |c − ĉ| is what the MLP needs; theory.md's constant unit (for the key's −1/2,
    which only shifts all logits equally and so does nothing, and for the thresholds) is
    replaced by the readout **bias** (``bias=True``; all other biases zero); one unit is
    added for the flag. Width B + 2K + 1 (catalogue: 2B + 2K + 1), with K = ⌈(8/γ²)·ln 2T⌉
    by default (union bound over all T = 2N + 1 positions): O(log N). The width knob is
    searched as the smallest K whose draw satisfies the margin (the named deviation of
    B24-T1's docstring, :func:`~sepbench.constructions.addresses.margin_dim`).
    """
    n = _length(length)
    task = tasks.make("string_equality", alphabet=alphabet, negatives=negatives)
    task.check_length(n)
    return _pair_network(task, n, addr_dim, gamma, seed, conjunction=False)[0]


@register(
    "disjointness_2layer",
    task="disjointness",
    result_id="B24-T13",
    form="log",
    summary="B24-T6's two layers with AND in place of XOR: average the common-element flags",
    width_knob="addr_dim",
    admissible=_admissible,
)
def disjointness_2layer(
    length: int, addr_dim: int | None = None, gamma: float = 0.25, seed: int = 0
) -> HandBuilt:
    """B24 Theorem 13 (the plain, 1-sparse case): disjointness with two layers, width O(log N).

    The network of :func:`string_equality_2layer` over bits (B = 1): units c, T(t),
    T(partner(t)), f; width m = 2K + 2. Differences:

    * the position table adds −2 to c at every position ≤ N (first half and separator), so
      there c = x − 2 ∈ {−2, −1} and on the second half c = y ∈ {0, 1};
    * layer 1's W_O *adds* the fetched value: on the second half c = y + (x_partner − 2) =
      x + y − 2; on the first half c ≈ 2x − 4 ≤ −2, at the separator ≈ −4;
    * the MLP has one hidden unit, f = relu(c + 1) (the fc1 **bias** +1): x ∧ y on the second
      half, exactly 0 elsewhere. Values lie in [−2, 1], so a leak ε of attention moves c by
      ≤ 3ε; η = ln(24·T²)/(1 − γ) gives ε ≤ 1/(24T) under the same margin hypothesis, and
      the final f (own flag + average) is ≤ 6ε ≤ 1/(4T) for disjoint sets and ≥ (1 − 3ε)/T when they
      intersect, against the threshold 1/(2T).

    B24-T13 proper thresholds k-sparse intersections with k heads; the task here (tasks.md) is
    plain disjointness (any common element), i.e. k = 1 and one head per layer. *Fixes to
    theory.md*: as for B24-T6 (no fetched block, biases for the constants), plus the first-half
    offset that keeps the AND silent where a position is its own partner. Width 2K + 2
    (catalogue: 2K + 3), K = ⌈(8/γ²)·ln 2(2N + 1)⌉ by default: O(log N).
    """
    n = _length(length)
    task = tasks.make("disjointness")
    task.check_length(n)
    return _pair_network(task, n, addr_dim, gamma, seed, conjunction=True)[0]
