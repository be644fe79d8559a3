"""B24-T7: nearest neighbour with a two-layer Transformer of width O(log N).

Task ``nearest_neighbor`` (tasks.md): ``p{c1} y{l1} … p{cN} y{lN} p{q}`` → the label of the
point nearest to q in Hamming distance (unique by construction of the task). Positions
t = 0 … 2N: point i at t = 2i − 2, its label at 2i − 1, the query at 2N.
"""

from __future__ import annotations

import math

import numpy as np

from sepbench import tasks
from sepbench.constructions.addresses import (
    attention,
    bias,
    binary_codes,
    check_gamma,
    code_bits,
    margin_dim,
    put,
    random_addresses,
    transformer,
)
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.index_lookup_tf import READOUT_SCALE, _length
from sepbench.errors import UserError
from sepbench.tasks.nearest_neighbor import MAX_BITS
from sepbench.theory import address_dim


def default_bits(length: int) -> int:
    """The task's default code length 8, raised until N points leave a unique nearest point
    (N ≤ 2^b − b, the task's rule)."""
    b = 8
    while length > 2**b - b:
        b += 1
    return b


@register(
    "nearest_neighbor_2layer",
    task="nearest_neighbor",
    result_id="B24-T7",
    form="log",
    summary="layer 1 finds the nearest point by content and fetches its label's address, "
    "layer 2 reads the label there",
    width_knob="addr_dim",
    admissible=lambda length, start=1, gamma=0.25, seed=0, **_: margin_dim(
        2 * _length(length) + 1, check_gamma(gamma), seed, 0, start
    ),
)
def nearest_neighbor_2layer(
    length: int,
    bits: int | None = None,
    labels: int = 2,
    addr_dim: int | None = None,
    gamma: float = 0.25,
    seed: int = 0,
) -> HandBuilt:
    """B24 Theorem 7: nearest neighbour (Hamming, b-bit codes) with two one-head layers.

    **Layout** (b code bits, L = ⌈log2 labels⌉, K = ``addr_dim``, T = 2N + 1 positions):

    ============  ===============  ============================================================
    block         units            content
    ============  ===============  ============================================================
    point e       [0, b)           (2c − 1)/√b for a point token ``p{c}`` (a unit vector)
    label ρ       [b, b + L)       binary code of a label token ``y{l}``
    address A     next K units     T(t), every position (position table)
    next N        next K units     T(t + 1) at the point slots t = 0, 2, …, 2N − 2, else 0
    slot s        1 unit           1 at the point slots (not at the query slot 2N), else 0
    ============  ===============  ============================================================

    Width m = b + L + 2K + 1.

    **Layer 1** (content). ⟨e(c), e(q)⟩ = 1 − 2·d(c, q)/b, so the nearest point has the largest
    product and every other point is ≥ 2/b below it. Query η₁·[e, β] (the β coordinate from
    the W_Q **bias**), key [e, s]: a point slot scores η₁(1 − 2d/b + β), a label token 0, the
    query's own slot η₁ (its s is 0). With β = 2 + 2/b the nearest point beats every other
    point, the query itself and every label by ≥ 2η₁/b. η₁ = (b/2)·ln(6T/(1 − γ)) leaves at
    most ε₁ ≤ (1 − γ)/6 of the attention elsewhere. The value is the N block: the query's
    (empty) N block receives f ≈ T(p + 1), the address of the nearest point's label token.

    **Hypothesis** (B24 Lemma 2 at margin γ over all T position addresses, checked on the
    draw: ``hypotheses_hold``): every |⟨T(t), T(t')⟩| ≤ γ for t ≠ t'.

    **Layer 2** (address). Query η₂·f, key T(t): the label token p + 1 scores ≥ η₂(1 − 2ε₁),
    any other position ≤ η₂(γ + ε₁) (the margin), a gap ≥ η₂(1 − γ)/2; η₂ = 2·ln(3T)/(1 − γ)
    puts > 3/4 of the attention on it. Both scales come from γ and b alone, never from the
    drawn addresses. The value is ρ, written into the query's (empty) ρ block: each averaged
    bit is > 3/4 or < 1/4. **Readout** as in B24-T1: logit(y) = 4·Σ_b (2ρ_b(y) − 1)(r_b − 1/2)
    with the centring in the readout bias.

    *Fixes to theory.md's sketch*: the "large negative bias on label tokens and on the query"
    becomes a *positive* bonus β on point slots, carried by one position-table unit s (0 at the
    query slot, so the query is excluded without a second flag) and the W_Q bias; the label
    token's address is stored at its point (the N block) rather than computed. Width
    b + L + 2K + 1 (catalogue: b + L + 2K + 2). With b = ⌈log2(N + b)⌉ at least and
    K = ⌈(8/γ²)·ln 2T⌉ by default (the lemma's union-bound width), O(log N). B24's content
    margin γ ≥ N^(−c) is 2/b here. The width knob ``addr_dim`` is searched as the smallest K
    whose draw satisfies the address margin (:func:`~sepbench.constructions.addresses.margin_dim`,
    the same named deviation as B24-T1's).
    """
    n = _length(length)
    b = default_bits(n) if bits is None else int(bits)
    if not 1 <= b <= MAX_BITS:
        raise UserError(f"nearest_neighbor_2layer: bits must be in 1..{MAX_BITS}, got {b}")
    task = tasks.make("nearest_neighbor", bits=b, labels=labels)
    task.check_length(n)
    tokens = 2 * n + 1
    gamma = check_gamma(gamma)
    dim = address_dim(tokens, gamma) if addr_dim is None else int(addr_dim)
    addr = random_addresses(tokens, dim, seed)
    lab = code_bits(labels)
    width = b + lab + 2 * dim + 1
    e, rho = slice(0, b), slice(b, b + lab)
    own, nxt, slot = (
        slice(b + lab, b + lab + dim),
        slice(b + lab + dim, b + lab + 2 * dim),
        width - 1,
    )
    d1 = 1.0 - gamma
    beta = 2.0 + 2.0 / b
    eta1 = (b / 2.0) * math.log(6.0 * tokens / d1)
    eta2 = 2.0 * math.log(3.0 * tokens) / d1

    model = transformer(
        len(task.vocab),
        width,
        layers=2,
        heads=1,
        head_dim=max(b + 1, dim, lab),
        pos="learned",
        max_len=tokens,
        mlp_width=0,
    )
    p0, y0 = task.token_to_id["p0"], task.token_to_id["y0"]
    codes = binary_codes(2**b)[: 2**b]
    put(model.embed.weight, slice(p0, p0 + 2**b), e, value=(2.0 * codes - 1.0) / math.sqrt(b))
    label_codes = binary_codes(labels)[:labels]
    put(model.embed.weight, slice(y0, y0 + labels), rho, value=label_codes)
    assert model.pos_emb is not None
    points = slice(0, 2 * n, 2)
    put(model.pos_emb, slice(None), own, value=addr.vectors)
    put(model.pos_emb, points, nxt, value=addr.vectors[1 : 2 * n : 2])
    put(model.pos_emb, points, slot, value=1.0)
    # layer 1: content attention, value = the next-address block
    a1 = attention(model, 0)
    put(a1.W_Q.weight, slice(0, b), e, value=eta1 * np.eye(b))
    put(bias(a1.W_Q), b, value=eta1 * beta)
    put(a1.W_K.weight, slice(0, b), e, value=np.eye(b))
    put(a1.W_K.weight, b, slot, value=1.0)
    put(a1.W_V.weight, slice(0, dim), nxt, value=np.eye(dim))
    put(a1.W_O.weight, nxt, slice(0, dim), value=np.eye(dim))
    # layer 2: address attention, value = the label code
    a2 = attention(model, 1)
    put(a2.W_Q.weight, slice(0, dim), nxt, value=eta2 * np.eye(dim))
    put(a2.W_K.weight, slice(0, dim), own, value=np.eye(dim))
    put(a2.W_V.weight, slice(0, lab), rho, value=np.eye(lab))
    put(a2.W_O.weight, rho, slice(0, lab), value=np.eye(lab))
    centred = 2.0 * label_codes - 1.0
    put(model.readout.weight, slice(y0, y0 + labels), rho, value=READOUT_SCALE * centred)
    put(bias(model.readout), slice(y0, y0 + labels), value=-READOUT_SCALE * centred.sum(1) / 2)
    notes = f"bits = {b}, eta1 = {eta1:.4g}, eta2 = {eta2:.4g} (from gamma), beta = {beta:.4g}"
    return HandBuilt(
        module=model,
        width=width,
        result_id="B24-T7",
        width_formula="b + ceil(log2 labels) + 2*k_addr + 1",
        task=task,
        length=n,
        width_params={"addr_dim": dim},
        notes=notes,
        hypotheses=addr.margin_text(gamma, "position addresses"),
        hypotheses_hold=addr.margin_holds(gamma),
    )
