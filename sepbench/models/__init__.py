"""The architectures: RNN family, SSM, Transformer, hybrid, retrieval-augmented — and ensembles.

>>> from sepbench import models
>>> model = models.build("lstm", vocab_size=10, width=32, layers=1, seed=0)
>>> import torch
>>> model(torch.zeros(2, 5, dtype=torch.long)).shape
torch.Size([2, 5, 10])

Public API
----------
``build(family, vocab_size, width, *, seed=None, options=None, **options) -> SeqModel``
    Validates the options against the family's declaration (unknown option, bad value, or an
    option that does not apply → :class:`~sepbench.errors.UserError` naming it and what is
    allowed). With ``seed`` the initial weights are those of ``torch.manual_seed(seed)``
    followed by construction, drawn in a forked RNG (the global torch RNG is untouched);
    without, construction draws from the global RNG. ``options`` (a dict) may be given instead
    of / besides keywords, so ``build(**model.config())`` rebuilds a model.
``build_ensemble(family, vocab_size, width, seeds, **options) -> Ensemble``
    E = len(seeds) independent models run as one; member e starts exactly as
    ``build(family, vocab_size, width, seed=seeds[e], **options)``.
``families()``, ``describe(family)``, ``get_class(family)``, ``from_config(config)``.
``card(family) -> FamilyCard``
    The family's card (:mod:`sepbench.models.cards`): its option declarations, theory class
    rule and state numbers, without building a model. ``card``, ``families`` and ``describe``
    never import torch; ``build`` and the model classes import it on first use.

Every model (``SeqModel``, a ``torch.nn.Module``):

* ``forward(inputs: LongTensor[B, T]) -> logits[B, T, V]``, causal: position t sees tokens ≤ t;
* ``family``, ``vocab_size``, ``width``, ``options`` (the validated dict, every applicable
  option present), ``seed``, ``uses_retrieval`` (True only for ``rag``);
* ``state_size(length) -> int``: floats carried from one step to the next after ``length``
  tokens — the recurrent state (RNN: layers·width, LSTM: layers·2·width incl. the cell, SSM:
  layers·width·state_dim), the key/value cache for attention (layers·2·heads·head_dim·length),
  both for hybrids;
* ``state_bits(length) -> int``: the bits those numbers hold — ``state_bits`` p per recurrent
  number, ``precision_bits`` p per cached attention number, 32 per unbounded float32 number
  (B24's m·p; the card's :meth:`~sepbench.models.cards.FamilyCard.state_bits`);
* ``init_state(batch)``, ``step(tokens[B], state) -> (logits[B, V], state)``: incremental
  decoding whose state tensors hold exactly ``state_size`` floats per row;
* ``num_parameters()``; ``config() -> dict`` = ``{family, vocab_size, width, options, seed}``
  (plain JSON; ``build(**config)`` rebuilds the architecture and, given the seed, its initial
  weights);
* ``with_inference(**options) -> SeqModel``: a weight-sharing copy with inference-time
  options — only ``ssm`` has any (the state-collapse mitigations,
  ``sepbench.models.ssm_inference``; the SSM's ``state_trace`` feeds
  ``sepbench.models.collapse``); for other families any option is a UserError.

An ``Ensemble`` (``torch.nn.Module``): ``forward(inputs[E, B, T]) -> logits[E, B, T, V]``
(member e reads ``inputs[e]``); ``member(i) -> SeqModel`` (a standalone copy of member i's
current weights, for checkpoints and evaluation); ``stacked()``, ``seeds``, ``size``,
``state_size``, ``num_parameters()`` (per member), ``config()`` (with ``seeds``),
``clip_grad_norm_(max_norm)`` (per member) and ``member_grad_norms()``. Train it with the sum
of the members' mean losses: each member then gets exactly its own gradient, and AdamW (an
elementwise optimiser) over the stacked parameters trains E independent models. How it
batches, and what speed-up to expect, is in ``sepbench.models.ensemble``.

Families (options and defaults: ``describe(family)``; parameter names and shapes: the module
docstrings, which the hand-built constructions rely on):

=============  ==================================================================  ============
family         architecture                                                        module
=============  ==================================================================  ============
elman          embedding → Elman RNN (tanh / relu / sigmoid) → readout             rnn
lstm           embedding → LSTM → readout                                          rnn
gru            embedding → GRU → readout                                           rnn
rag            an elman/lstm/gru RNN with ``uses_retrieval = True`` (W24-RAG)      rnn
ssm            embedding → selective SSM layers (Mamba style) → readout            ssm
transformer    embedding + positions → L pre-norm attention/MLP layers → readout   transformer
hybrid         RNN or SSM stack → exactly one attention layer → readout (W24-H)    hybrid
looped         one causal Transformer block applied R times, shared weights        looped
dtnet          causal width-3 conv block applied R times with recall (BA22)        dtnet
grc            embedding → leaves → GRC cell as a causal RNN → head MLP (RC23)     rvnn
bbt            leaves → balanced binary tree of GRC cells → head (an encoder)      rvnn
beam_tree      leaves → beam search over adjacent merges (BT23, EBT23) → head      rvnn
rir            leaves → k-ary tree of inner beam searches (RC23) → head            rvnn
=============  ==================================================================  ============

Input encodings: Transformers and SSMs embed tokens into their residual stream
(``embed.weight : [vocab, width]``). RNNs read a learned embedding ``[vocab, embed_dim]``
(``embed_dim`` defaults to width) or, with ``embedding="onehot"``, the one-hot token itself, so
that column v of ``rnn.weight_ih_l0`` is token v's input weight (natural for hand-set weights).

Bounded precision (docs/precision.md, :mod:`sepbench.models.precision`): ``state_bits=p``
(1 … 32; elman, lstm, gru, rag, ssm, hybrid) quantises every number carried from one step to
the next to 2^p levels after each step — h, an LSTM's c, an SSM's state, a hybrid's recurrent
part — with straight-through gradients; ``precision_bits=p`` (transformer, hybrid) quantises
the residual stream, queries, keys and values to B24's fixed-point grid. Unset (the default),
a model is exactly the unbounded one. Either on a family without those numbers is a
UserError. ``step``, ensembles and training honour both.

Retrieval (``rag``): the model is only the RNN. The generation loop in ``sepbench.training``
checks ``model.uses_retrieval``; when the model has just emitted ``task.retrieval_trigger``, the
next token is ``task.retrieval_result(tokens_so_far)``, fed to the model as its next input.

Determinism: with a seed, construction is deterministic; forward passes on CPU are deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sepbench import lazy
from sepbench.models.cards import card, families
from sepbench.models.options import describe as _describe_options

_EXPORTS = {
    "Ensemble": "ensemble",
    "Option": "options",
    "SeqModel": "base",
    "State": "base",
    "build": "builder",
    "build_ensemble": "builder",
    "from_config": "builder",
    "get_class": "builder",
}
"""Names imported on first use: they need torch, and the cards, :func:`families` and
:func:`describe` must stay importable without it (the report and the sweep's planning read
them)."""
_MODULES = frozenset(
    {"access", "base", "builder", "cards", "ensemble", "hybrid", "options", "precision"}
    | {"recurrence"}
    | {"rnn", "ssm", "transformer"}
)

if TYPE_CHECKING:
    from sepbench.models.base import SeqModel, State
    from sepbench.models.builder import build, build_ensemble, from_config, get_class
    from sepbench.models.ensemble import Ensemble
    from sepbench.models.options import Option

__all__ = [
    "Ensemble",
    "Option",
    "SeqModel",
    "State",
    "build",
    "build_ensemble",
    "card",
    "describe",
    "families",
    "from_config",
    "get_class",
]


def describe(family: str) -> dict[str, Any]:
    """Plain-data description of a family (from its card): summary and options (default,
    allowed, doc)."""
    c = card(family)
    return {
        "family": family,
        "summary": c.summary,
        "uses_retrieval": c.uses_retrieval,
        "options": _describe_options(c.options),
    }


__getattr__, __dir__ = lazy.attributes(__name__, _EXPORTS, _MODULES, __all__)
