"""Building models: :func:`build`, :func:`build_ensemble`, :func:`from_config`,
:func:`get_class` (see :mod:`sepbench.models` for the contract). Options are validated against
the family's card (:mod:`sepbench.models.cards`)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from sepbench import coerce
from sepbench.errors import UserError
from sepbench.models.base import SeqModel
from sepbench.models.cards import card
from sepbench.models.ensemble import Ensemble


def get_class(family: str) -> type[SeqModel]:
    """The ``SeqModel`` subclass of ``family``."""
    module, name = card(family).implementation.split(":")
    cls: type[SeqModel] = getattr(importlib.import_module(module), name)
    return cls


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
    vocab_size = coerce.integer("vocab_size", vocab_size)
    width = coerce.integer("width", width)
    given = dict(options or {})
    for key, value in kwargs.items():
        if key in given and given[key] != value:
            raise UserError(
                f"model '{family}': option '{key}' given twice ({given[key]!r}, {value!r})"
            )
        given[key] = value
    opts = card(family).validate(width, given)
    if seed is None:
        model = cls(vocab_size, width, opts)
    else:
        seed = coerce.seed(seed)
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
    clean = [coerce.seed(s) for s in seeds]
    members = [build(family, vocab_size, width, seed=s, options=options, **kwargs) for s in clean]
    return Ensemble(members, clean)
