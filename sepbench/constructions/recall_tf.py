"""Associative recall with a two-layer Transformer (induction heads), width O(log N).

Task ``associative_recall`` (tasks.md): ``k{a1} v{b1} … k{aN} v{bN} k{aj}`` → ``v{bj}``.
Positions t = 0 … 2N: key i at t = 2i − 2, its value at 2i − 1, the query key at 2N.
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
    put,
    random_addresses,
    transformer,
)
from sepbench.constructions.base import HandBuilt, register
from sepbench.constructions.index_lookup_tf import READOUT_SCALE, _length
from sepbench.theory import address_dim

VALUE_BONUS = 2.0
"""β: layer 2's extra logit for value tokens (beats every key token, see the docstring)."""


@register(
    "associative_recall_2layer",
    task="associative_recall",
    result_id="IND",
    form="log",
    summary="induction: each value copies its key (layer 1), the query matches the copies "
    "(layer 2)",
    width_knob="addr_dim",
    admissible=lambda *a, **p: admissible_dim(*a, **p),
)
def associative_recall_2layer(
    length: int,
    keys: int | None = None,
    values: int = 16,
    addr_dim: int | None = None,
    gamma: float = 0.25,
    seed: int = 0,
) -> HandBuilt:
    """Associative recall by an induction head: two layers, one head each, width O(log N).

    The upper bound facing B24-P9 / W24-R (an RNN needs m·p ≥ N bits): theory.md's
    "Associative recall, 2 layers (induction)". ``keys`` defaults to N, the smallest key
    vocabulary the task allows, so that the width grows with log N alone (pass ``keys=1024``
    for the task's default vocabulary: the width then grows with log max(N, keys)).

    **Layout** (K = ``addr_dim``, V = ⌈log2 values⌉, T = 2N + 1 positions):
    key content E [0, K) (a random sign vector E(a) per key *token*, from ``embed``; 0 on value
    tokens), value code ρ [K, K + V) (binary code of a value token), own address T(t) and
    previous address T(t − 1) (K units each, position table; T(−1) = 0), and one flag g = 1
    on value tokens. Width m = 3K + V + 1 (in general K_keys + V + 2·K_pos + 1).

    **Layer 1** (previous token). Query η₁·T(t − 1), key T(t), value E: every position adds the
    previous token's E to its own E block. A value token (E = 0) thereby carries a copy of its
    key's content; a key token adds the (empty) E of the value before it; position 0 has no
    predecessor, attends to itself and doubles its E.

    **Hypotheses** (B24 Lemma 2 at margin γ, checked on both draws: ``hypotheses_hold``):
    every |⟨T(t), T(t')⟩| ≤ γ over the T position addresses and every |⟨E(a), E(a')⟩| ≤ γ
    over the key contents. Then the previous token's logit beats every other by η₁(1 − γ),
    and η₁ = ln(8T/(1 − γ))/(1 − γ) leaves at most ε₁ ≤ (1 − γ)/8 of the attention off it.

    **Layer 2** (match). Query η₂·[E(q), β] (β = 2 from the W_Q **bias**), key [E, g], value ρ.
    The value token of the queried key scores ≥ η₂(1 + β − 2ε₁); other value tokens
    ≤ η₂(γ + β + 2ε₁); key tokens (g = 0) ≤ η₂(2 + 2ε₁) (2 for the doubled first key) —
    so the target wins by ≥ η₂(1 − γ − 4ε₁) ≥ η₂(1 − γ)/2, and η₂ = 2·ln(3T)/(1 − γ) puts
    > 3/4 of the attention on it. Both scales come from γ alone, never from the draws. The averaged
    value code lands in the query's (empty) ρ block; the **readout** is B24-T1's centred code with
    the centring in its bias.

    *Fixes to theory.md's sketch*: theory.md copies *addresses* ("each value token copies the
    address of the key before it"); copying the key's *content* is the standard induction
    head and needs no content-to-address step. The value flag g keeps the query from settling
    on the key tokens themselves (which hold the same content). Width 3K + V + 1 with the
    default K = ⌈(8/γ²)·ln 2·max(T, keys)⌉ (the lemma's union-bound width): O(log N) for
    keys = O(poly N). The width knob is searched as the smallest K at which *both* draws
    satisfy the margin (:func:`admissible_dim`; the named deviation of B24-T1's docstring).
    """
    n = _length(length)
    nkeys = n if keys is None else int(keys)
    task = tasks.make("associative_recall", keys=nkeys, values=values)
    task.check_length(n)
    tokens = 2 * n + 1
    gamma = check_gamma(gamma)
    dim = address_dim(max(tokens, nkeys), gamma) if addr_dim is None else int(addr_dim)
    pos = random_addresses(tokens, dim, seed, stream=0)
    content = random_addresses(nkeys, dim, seed, stream=1)
    vb = code_bits(values)
    width = 3 * dim + vb + 1
    ec, rho = slice(0, dim), slice(dim, dim + vb)
    own, prev, flag = slice(dim + vb, 2 * dim + vb), slice(2 * dim + vb, 3 * dim + vb), width - 1
    sep = 1.0 - gamma
    eta1 = math.log(8.0 * tokens / sep) / sep
    eta2 = 2.0 * math.log(3.0 * tokens) / sep

    model = transformer(
        len(task.vocab),
        width,
        layers=2,
        heads=1,
        head_dim=max(dim + 1, vb),
        pos="learned",
        max_len=tokens,
        mlp_width=0,
    )
    k0, v0 = task.token_to_id["k0"], task.token_to_id["v0"]
    put(model.embed.weight, slice(k0, k0 + nkeys), ec, value=content.vectors)
    codes = binary_codes(values)[:values]
    put(model.embed.weight, slice(v0, v0 + values), rho, value=codes)
    put(model.embed.weight, slice(v0, v0 + values), flag, value=1.0)
    assert model.pos_emb is not None
    put(model.pos_emb, slice(None), own, value=pos.vectors)
    put(model.pos_emb, slice(1, None), prev, value=pos.vectors[:-1])
    eye = np.eye(dim)
    a1 = attention(model, 0)
    put(a1.W_Q.weight, slice(0, dim), prev, value=eta1 * eye)
    put(a1.W_K.weight, slice(0, dim), own, value=eye)
    put(a1.W_V.weight, slice(0, dim), ec, value=eye)
    put(a1.W_O.weight, ec, slice(0, dim), value=eye)
    a2 = attention(model, 1)
    put(a2.W_Q.weight, slice(0, dim), ec, value=eta2 * eye)
    put(bias(a2.W_Q), dim, value=eta2 * VALUE_BONUS)
    put(a2.W_K.weight, slice(0, dim), ec, value=eye)
    put(a2.W_K.weight, dim, flag, value=1.0)
    put(a2.W_V.weight, slice(0, vb), rho, value=np.eye(vb))
    put(a2.W_O.weight, rho, slice(0, vb), value=np.eye(vb))
    centred = 2.0 * codes - 1.0
    put(model.readout.weight, slice(v0, v0 + values), rho, value=READOUT_SCALE * centred)
    put(bias(model.readout), slice(v0, v0 + values), value=-READOUT_SCALE * centred.sum(1) / 2)
    notes = f"keys = {nkeys}, eta1 = {eta1:.4g}, eta2 = {eta2:.4g} (from gamma)"
    return HandBuilt(
        module=model,
        width=width,
        result_id="IND",
        width_formula="3*k_addr + ceil(log2 values) + 1",
        task=task,
        length=n,
        width_params={"addr_dim": dim},
        notes=notes,
        hypotheses=pos.margin_text(gamma, "position addresses")
        + "; "
        + content.margin_text(gamma, "key contents"),
        hypotheses_hold=pos.margin_holds(gamma) and content.margin_holds(gamma),
    )


def admissible_dim(
    length: int,
    start: int = 1,
    keys: int | None = None,
    gamma: float = 0.25,
    seed: int = 0,
    **_: Any,
) -> int | None:
    """The smallest ``addr_dim`` ≥ ``start`` at which both draws (2N + 1 positions, stream 0;
    the keys' contents, stream 1) satisfy the margin: alternate the two scans until they agree."""
    n = _length(length)
    gamma = check_gamma(gamma)
    families = ((2 * n + 1, 0), (n if keys is None else int(keys), 1))
    k: int | None = int(start)
    while k is not None:
        found = [margin_dim(count, gamma, seed, stream, k) for count, stream in families]
        if any(f is None for f in found):
            return None
        top = max(f for f in found if f is not None)
        if top == k:
            return k
        k = top
    return None
