"""B24-T1: index lookup with a one-layer Transformer of width O(log N).

Task ``index_lookup`` (tasks.md): ``s{x1} … s{xN} @{p}`` → ``s{x_p}`` at the last position.
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
from sepbench.errors import UserError
from sepbench.theory import address_dim

READOUT_SCALE = 4.0
"""Logit units per averaged bit: a bit on the right side of 1/2 by 1/4 adds 1 to the gap."""


@register(
    "index_lookup_1layer",
    task="index_lookup",
    result_id="B24-T1",
    form="log",
    summary="one attention layer looks up position p by nearly orthogonal addresses",
    width_knob="addr_dim",
    admissible=lambda length, start=1, gamma=0.25, seed=0, **_: margin_dim(
        _length(length), check_gamma(gamma), seed, 0, start
    ),
)
def index_lookup_1layer(
    length: int,
    alphabet: int = 4,
    max_length: int | None = None,
    addr_dim: int | None = None,
    gamma: float = 0.25,
    seed: int = 0,
) -> HandBuilt:
    """B24 Theorem 1: a one-layer, one-head Transformer solving ``index_lookup`` at N = length.

    **Layout** of the residual stream (width m), with B = ⌈log2 k⌉ code bits and K = ``addr_dim``:

    ==============  =================  ======================  ===================
    block           units              data token s at i       query token @p
    ==============  =================  ======================  ===================
    code ρ          [0, B)             ρ(s) (binary code)       0
    query address   [B, B + K)         0                        T(p)
    key address     [B + K, B + 2K)    T(i) (position table)    0 (position N+1)
    ==============  =================  ======================  ===================

    ``embed`` holds the ρ and T(p) blocks, the learned position table ``pos_emb[i-1] = T(i)``
    for i = 1..N and 0 at the query slot (row N). T(1..N) are random sign addresses
    (:mod:`~sepbench.constructions.addresses`).

    **Hypothesis** (B24 Lemma 2 at margin γ, checked on the draw: ``hypotheses_hold``): every
    |⟨T(i),T(j)⟩| ≤ γ for i ≠ j. The proof below uses nothing else about the addresses.

    **Attention** (one head, head dimension K, no 1/√d): W_Q = η·(query block), W_K = (key
    block), W_V = (ρ block), W_O writes the head's first B coordinates back into the ρ block,
    which is empty at the query position. The query's logit is η⟨T(p),T(p)⟩ = η at position p,
    at most ηγ at any other data position and 0 at its own slot. With η = ln(3(N + 1))/(1 − γ)
    — from γ alone, never from the drawn addresses — the weight off p is at most
    N·e^(−η(1−γ))/(1 + N·e^(−η(1−γ))) = N/(4N + 3) < 1/4, so every averaged bit
    r_b = Σ_j a_j ρ_b(x_j) is > 3/4 when ρ_b(x_p) = 1 and < 1/4 when it is 0 (the attention
    weights depend on p only, never on the symbols). Shorter inputs (n < N) only remove
    distractors.

    **Readout.** logit(s) = 4·Σ_b (2ρ_b(s) − 1)(r_b − 1/2): the centred code of s against the
    averaged bits. Every bit on the right side of 1/2 contributes ≥ +1 for the true symbol,
    and any other symbol differs in some bit, which then contributes ≤ −1: the true symbol wins
    by ≥ 2, and beats the non-symbol tokens (logit 0) by ≥ B. *Fix to theory.md:* the ReLU MLP
    that thresholds the bits is not needed — the centred linear readout already ranks the
    symbols — but the centring −1/2 needs a constant, which the readout **bias** supplies (the
    model is built with ``bias=True``; every other bias is zero). No residual unit is added.

    **Width** m = B + 2K = ⌈log2 k⌉ + 2·k_addr, theory.md's formula; by default k_addr is the
    union-bound dimension ⌈(8/γ²)·ln 2N⌉ (:func:`sepbench.theory.address_dim`), O(log N),
    which satisfies the margin with probability ≥ 1 − 1/(16N²). ``addr_dim`` overrides it:
    the width knob, searched as the smallest k whose draw satisfies the margin
    (:func:`~sepbench.constructions.addresses.margin_dim`) — *our deviation from the lemma*,
    named: the lemma's union-bound k is the sufficient width, the curve measures the smallest
    k at which this seed's draw has the lemma's property. Precision: the logits are at most
    η = (4/3)·ln(3(N+1)) = O(log N) at γ = 1/4 and the decision margins are constants, so
    p = O(log N) bits suffice (B24's assumption).
    """
    n = _length(length)
    k = int(alphabet)
    task = tasks.make(
        "index_lookup", alphabet=k, max_length=n if max_length is None else max_length
    )
    task.check_length(n)
    gamma = check_gamma(gamma)
    dim = address_dim(n, gamma) if addr_dim is None else int(addr_dim)
    addr = random_addresses(n, dim, seed)
    bits = code_bits(k)
    width = bits + 2 * dim
    eta = math.log(3 * (n + 1)) / (1.0 - gamma)

    model = transformer(
        len(task.vocab),
        width,
        layers=1,
        heads=1,
        head_dim=max(dim, bits),
        pos="learned",
        max_len=n + 1,
        mlp_width=0,
    )
    rho, qry, key = slice(0, bits), slice(bits, bits + dim), slice(bits + dim, width)
    sym0 = task.token_to_id["s0"]
    at1 = task.token_to_id["@1"]
    codes = binary_codes(k)[:k]
    put(model.embed.weight, slice(sym0, sym0 + k), rho, value=codes)
    put(model.embed.weight, slice(at1, at1 + n), qry, value=addr.vectors)
    assert model.pos_emb is not None
    put(model.pos_emb, slice(0, n), key, value=addr.vectors)
    attn = attention(model, 0)
    eye = np.eye(dim)
    put(attn.W_Q.weight, slice(0, dim), qry, value=eta * eye)
    put(attn.W_K.weight, slice(0, dim), key, value=eye)
    put(attn.W_V.weight, slice(0, bits), rho, value=np.eye(bits))
    put(attn.W_O.weight, rho, slice(0, bits), value=np.eye(bits))
    centred = 2.0 * codes - 1.0  # [k, B]
    put(model.readout.weight, slice(sym0, sym0 + k), rho, value=READOUT_SCALE * centred)
    put(bias(model.readout), slice(sym0, sym0 + k), value=-READOUT_SCALE * centred.sum(1) / 2)
    notes = f"eta = {eta:.4g} from gamma; readout bias centres the bits (no threshold MLP)"
    return HandBuilt(
        module=model,
        width=width,
        result_id="B24-T1",
        width_formula="ceil(log2 k) + 2*k_addr",
        task=task,
        length=n,
        width_params={"addr_dim": dim},
        notes=notes,
        hypotheses=addr.margin_text(gamma, "position addresses"),
        hypotheses_hold=addr.margin_holds(gamma),
    )


def _length(length: int) -> int:
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 1:
        raise UserError(f"length must be an integer >= 1, got {length!r}")
    return int(length)
