"""Declared model options: one :class:`Option` record per option, validated like task parameters.

Each model family lists its options once, as a tuple of :class:`Option` on its class
(``options_spec``). :func:`validate` turns the keyword arguments given to ``models.build`` into a
complete, plain dict (every applicable option present, derived defaults resolved), or raises
:class:`~sepbench.errors.UserError` naming the option and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sepbench.coerce import coerce
from sepbench.errors import UserError


@dataclass(frozen=True)
class Option:
    """One declared model option.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str``. ``choices`` restricts strings;
    ``words`` are strings that a numeric option also accepts (``attn_scale="sqrt"``);
    ``check`` is an extra predicate on the parsed value with ``rule`` its statement.
    ``default`` may be a callable ``(width, options_so_far) -> value`` for defaults derived from
    the width or from earlier options (``mlp_width = 4 * width``); ``default_doc`` states it.
    ``applies`` says, from the options parsed so far, whether the option is meaningful at all
    (``state_dim`` only for an SSM base); an inapplicable option is absent from the validated
    dict and giving it is an error.
    """

    name: str
    kind: type
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    words: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    default_doc: str = ""
    applies: Callable[[Mapping[str, Any]], bool] | None = None
    applies_doc: str = ""

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        base = (
            self.rule
            or {
                int: "an integer",
                float: "a number",
                bool: "true or false",
                str: "a string",
            }[self.kind]
        )
        if self.words:
            return " or ".join([*(repr(w) for w in self.words), base])
        return base

    def describe_default(self) -> str:
        return self.default_doc or repr(self.default)

    def parse(self, value: Any, family: str) -> Any:
        """Coerce ``value`` (possibly a CLI string) to this option's type and check it."""
        err = UserError(
            f"model '{family}': option '{self.name}' must be {self.allowed()}, got {value!r}"
        )
        if isinstance(value, str) and value in self.words:
            return value
        out = coerce(self.kind, value, err, integral_floats=True)
        if self.choices is not None and out not in self.choices:
            raise err
        if self.check is not None and not self.check(out):
            raise err
        return out


def int_option(
    name: str,
    default: Any,
    doc: str,
    minimum: int = 1,
    default_doc: str = "",
    applies: Callable[[Mapping[str, Any]], bool] | None = None,
    applies_doc: str = "",
) -> Option:
    """An integer option with a lower bound (the common case)."""
    return Option(
        name,
        int,
        default,
        doc,
        check=lambda v: v >= minimum,
        rule=f"an integer >= {minimum}",
        default_doc=default_doc,
        applies=applies,
        applies_doc=applies_doc,
    )


def validate(
    family: str, spec: tuple[Option, ...], width: int, given: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate ``given`` against ``spec``; return every applicable option with its value.

    Options are processed in declaration order, so ``default`` callables and ``applies``
    predicates may look at the options declared before them.
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
            out[opt.name] = opt.parse(given[opt.name], family)
        elif callable(opt.default):
            out[opt.name] = opt.default(width, out)
        else:
            out[opt.name] = opt.default
    return out


def describe(spec: tuple[Option, ...]) -> dict[str, dict[str, str]]:
    """Plain-data description of a family's options (for the CLI and docs)."""
    return {
        o.name: {
            "default": o.describe_default(),
            "allowed": o.allowed(),
            "doc": o.doc + (f" (only {o.applies_doc})" if o.applies_doc else ""),
        }
        for o in spec
    }
