"""Validating declared model options (torch-free).

Each model family declares its options once, in its card (:mod:`sepbench.models.cards`), as a
tuple of :class:`~sepbench.params.Param` records (``Option`` here). :func:`validate` turns the
keyword arguments given to ``models.build`` into a complete, plain dict (every applicable
option present, derived defaults resolved), or raises :class:`~sepbench.errors.UserError`
naming the option and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sepbench.errors import UserError
from sepbench.params import Param

Option = Param
"""A model option is a :class:`sepbench.params.Param` (the declaration shared with task
parameters and bound parameters); its ``default`` may be a callable ``(width, options_so_far)
-> value`` for defaults derived from the width or from earlier options (``mlp_width = 4 *
width``), stated in ``default_doc``."""


def validate(
    family: str, spec: tuple[Param, ...], width: int, given: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate ``given`` against ``spec``; return every applicable option with its value.

    Options are processed in declaration order, so ``default`` callables and ``applies``
    predicates may look at the options declared before them. An option whose default is None
    (``state_bits``, ``precision_bits``: unset means unbounded) is absent from the result
    unless given a value: a model built without it has exactly the options, ``config()`` and
    trial keys it had before the option existed.
    """
    by_name = {o.name: o for o in spec}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        allowed = ", ".join(by_name) if by_name else "none"
        raise UserError(f"model '{family}': unknown option '{unknown[0]}'; allowed: {allowed}")
    out: dict[str, Any] = {}
    for opt in spec:
        if opt.applies is not None and not opt.applies(out):
            if opt.name in given:
                raise UserError(
                    f"model '{family}': option '{opt.name}' applies only {opt.applies_doc}"
                )
            continue
        if opt.name in given and given[opt.name] is not None:
            out[opt.name] = opt.parse(given[opt.name], f"model '{family}'", "option")
        elif opt.default is None:
            continue  # an unset optional option (state_bits) is absent: see the docstring
        elif callable(opt.default):
            out[opt.name] = opt.default(width, out)
        else:
            out[opt.name] = opt.default
    return out


def describe(spec: tuple[Param, ...]) -> dict[str, dict[str, str]]:
    """Plain-data description of a family's options (for the CLI and docs)."""
    return {
        o.name: {
            "default": o.describe_default(),
            "allowed": o.allowed(),
            "doc": o.doc + (f" (only {o.applies_doc})" if o.applies_doc else ""),
        }
        for o in spec
    }
