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

Every model (``SeqModel``, a ``torch.nn.Module``):

* ``forward(inputs: LongTensor[B, T]) -> logits[B, T, V]``, causal: position t sees tokens ≤ t;
* ``family``, ``vocab_size``, ``width``, ``options`` (the validated dict, every applicable
  option present), ``seed``, ``uses_retrieval`` (True only for ``rag``);
* ``state_size(length) -> int``: floats carried from one step to the next after ``length``
  tokens — the recurrent state (RNN: layers·width, LSTM: layers·2·width incl. the cell, SSM:
  layers·width·state_dim), the key/value cache for attention (layers·2·heads·head_dim·length),
  both for hybrids;
* ``init_state(batch)``, ``step(tokens[B], state) -> (logits[B, V], state)``: incremental
  decoding whose state tensors hold exactly ``state_size`` floats per row;
* ``num_parameters()``; ``config() -> dict`` = ``{family, vocab_size, width, options, seed}``
  (plain JSON; ``build(**config)`` rebuilds the architecture and, given the seed, its initial
  weights).

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
=============  ==================================================================  ============

Input encodings: Transformers and SSMs embed tokens into their residual stream
(``embed.weight : [vocab, width]``). RNNs read a learned embedding ``[vocab, embed_dim]``
(``embed_dim`` defaults to width) or, with ``embedding="onehot"``, the one-hot token itself, so
that column v of ``rnn.weight_ih_l0`` is token v's input weight (natural for hand-set weights).

Retrieval (``rag``): the model is only the RNN. The generation loop in ``sepbench.training``
checks ``model.uses_retrieval``; when the model has just emitted ``task.retrieval_trigger``, the
next token is ``task.retrieval_result(tokens_so_far)``, fed to the model as its next input.

Determinism: with a seed, construction is deterministic; forward passes on CPU are deterministic.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from sepbench.errors import UserError
from sepbench.models.base import SeqModel, State
from sepbench.models.ensemble import Ensemble
from sepbench.models.options import Option
from sepbench.models.options import describe as _describe_options
from sepbench.models.options import validate as _validate

__all__ = [
    "Ensemble",
    "Option",
    "SeqModel",
    "State",
    "build",
    "build_ensemble",
    "describe",
    "families",
    "from_config",
    "get_class",
]

_REGISTRY: dict[str, tuple[str, str]] = {
    "elman": ("rnn", "ElmanModel"),
    "lstm": ("rnn", "LSTMModel"),
    "gru": ("rnn", "GRUModel"),
    "rag": ("rnn", "RAGModel"),
    "ssm": ("ssm", "SSMModel"),
    "transformer": ("transformer", "TransformerModel"),
    "hybrid": ("hybrid", "HybridModel"),
    "looped": ("looped", "LoopedModel"),
    "dtnet": ("dtnet", "DTNetModel"),
}


def families() -> list[str]:
    """The model family names, in a stable order."""
    return list(_REGISTRY)


def get_class(family: str) -> type[SeqModel]:
    """The ``SeqModel`` subclass of ``family``."""
    if not isinstance(family, str) or family not in _REGISTRY:
        raise UserError(f"unknown model family {family!r}; known families: {', '.join(_REGISTRY)}")
    module, name = _REGISTRY[family]
    cls: type[SeqModel] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls


def describe(family: str) -> dict[str, Any]:
    """Plain-data description of a family: summary and options (default, allowed, doc)."""
    cls = get_class(family)
    return {
        "family": family,
        "summary": cls.summary,
        "uses_retrieval": cls.uses_retrieval,
        "options": _describe_options(cls.options_spec),
    }


def _positive_int(what: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)
    except TypeError:
        raise UserError(f"{what} must be an integer >= 1, got {value!r}") from None
    if out < 1:
        raise UserError(f"{what} must be an integer >= 1, got {value!r}")
    return out


def _seed(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)
    except TypeError:
        raise UserError(f"seed must be a non-negative integer, got {value!r}") from None
    if out < 0:
        raise UserError(f"seed must be a non-negative integer, got {value!r}")
    return out


def build(
    family: str,
    vocab_size: int,
    width: int,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> SeqModel:
    """Build a model of ``family`` (see the module docstring)."""
    cls = get_class(family)
    vocab_size = _positive_int("vocab_size", vocab_size)
    width = _positive_int("width", width)
    given = dict(options or {})
    for key, value in kwargs.items():
        if key in given and given[key] != value:
            raise UserError(
                f"model '{family}': option '{key}' given twice ({given[key]!r}, {value!r})"
            )
        given[key] = value
    opts = _validate(family, cls.options_spec, width, given)
    cls.check_options(width, opts)
    if seed is None:
        model = cls(vocab_size, width, opts)
    else:
        seed = _seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(vocab_size, width, opts)
    model.seed = seed
    return model


def from_config(config: Mapping[str, Any]) -> SeqModel:
    """``build(**config)`` for a dict from ``SeqModel.config()``."""
    return build(**dict(config))


def build_ensemble(
    family: str,
    vocab_size: int,
    width: int,
    seeds: Sequence[int],
    *,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Ensemble:
    """E = len(seeds) models as one ``Ensemble``; member e starts as
    ``build(family, vocab_size, width, seed=seeds[e], **options)``."""
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise UserError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    clean = [_seed(s) for s in seeds]
    members = [build(family, vocab_size, width, seed=s, options=options, **kwargs) for s in clean]
    return Ensemble(members, clean)
