"""Declared parameters: one record type for task parameters, model options and bound parameters.

A task (``sepbench.tasks``), a model family (``sepbench.models``) and a theorem
(``sepbench.theory``) each declare what they accept as a tuple of :class:`Param` records; the
three owners differ only in what the ``default`` means (a value; or a function of the width
and earlier options for a model option; or a function of the length for a bound parameter)
and in the words of their error messages, which the owner passes to :meth:`Param.parse`.
Values are coerced by the one rule of :func:`sepbench.coerce.coerce` (CLI strings, integral
floats, no booleans for numbers, finite numbers only).

Plain Python only: importing this module never imports numpy or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sepbench.coerce import coerce
from sepbench.errors import UserError

KIND_WORDS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
}


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str``. Constraints, all optional:
    ``choices`` restricts strings; ``minimum`` (inclusive) and ``exclusive_max`` bound numbers;
    ``check`` is any further predicate on the parsed value, with ``rule`` its statement (the
    rule then replaces the generated "an integer >= 2" text in error messages); ``words`` are
    strings a numeric parameter also accepts (a model's ``attn_scale="sqrt"``).

    ``examples``: a few valid values property tests draw from (task parameters).
    ``default_doc`` states a derived default in words. ``applies`` says, from the values parsed
    so far, whether the parameter is meaningful at all (a model's ``state_dim`` only for an SSM
    base), ``applies_doc`` in words; an inapplicable parameter is an error when given.
    """

    name: str
    kind: type
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    examples: tuple[Any, ...] = ()
    words: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_max: float | None = None
    default_doc: str = ""
    applies: Callable[[Mapping[str, Any]], bool] | None = None
    applies_doc: str = ""

    def allowed(self) -> str:
        """What is allowed, in words ("an integer >= 2", "one of elman, lstm", ...)."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        base = self.rule or self._limits()
        if self.words:
            return " or ".join([*(repr(w) for w in self.words), base])
        return base

    def _limits(self) -> str:
        limits = []
        if self.minimum is not None:
            limits.append(f">= {_number(self.minimum)}")
        if self.exclusive_max is not None:
            limits.append(f"< {_number(self.exclusive_max)}")
        return " ".join([KIND_WORDS[self.kind], " and ".join(limits)]).strip()

    def describe_default(self) -> str:
        return self.default_doc or repr(self.default)

    def parse(self, value: Any, owner: str, noun: str = "parameter") -> Any:
        """``value`` (possibly a CLI string) coerced to ``kind`` and checked; else a UserError
        ``"<owner>: <noun> '<name>' must be <allowed>, got <value>"`` (owner e.g.
        ``"task 'dyck'"``, noun ``"parameter"`` or ``"option"``)."""
        err = UserError(f"{owner}: {noun} '{self.name}' must be {self.allowed()}, got {value!r}")
        if isinstance(value, str) and value in self.words:
            return value
        out = coerce(self.kind, value, err)
        if self.choices is not None and out not in self.choices:
            raise err
        if self.minimum is not None and out < self.minimum:
            raise err
        if self.exclusive_max is not None and out >= self.exclusive_max:
            raise err
        if self.check is not None and not self.check(out):
            raise err
        return out


def int_param(
    name: str,
    default: Any,
    doc: str,
    minimum: int = 1,
    examples: tuple[int, ...] = (),
    **more: Any,
) -> Param:
    """An integer parameter with a lower bound (the common case)."""
    return Param(name, int, default, doc, minimum=minimum, examples=examples, **more)


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"
