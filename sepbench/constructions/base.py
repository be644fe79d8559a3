"""What every construction returns, and the registry that `verify` walks.

A construction is a function ``build(length, **params) -> HandBuilt`` that sets, by hand, the
weights of a model made by ``sepbench.models.build`` — the same classes used for training —
so that it solves ``task`` at problem size ``length``. It never subclasses a model to cheat.

Checking is uniform: run the module on task inputs and compare the argmax of the logits at
every supervised position with the target (``check_batch``); constructions whose task needs
generation (retrieval traces) say so with ``generate=True`` and are checked by greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from sepbench import tasks, theory
from sepbench.errors import UserError
from sepbench.tasks import IGNORE


@dataclass
class HandBuilt:
    """A hand-set network: the module, its width, the result it realises, its width formula.

    ``task`` is the task (with parameters) it solves at ``length``; ``width_params`` are the
    knobs that set its width (e.g. the address dimension), so a width search can call the
    builder again with smaller values; ``notes`` records fixes to the spec's construction.
    ``hypotheses`` states the structural facts its correctness proof assumes of this build
    (e.g. B24 Lemma 2's address margin, measured on the draw) and ``hypotheses_hold`` whether
    they hold: a network whose hypotheses fail is not certified, whatever inputs it passes.
    """

    module: nn.Module
    width: int
    result_id: str
    width_formula: str
    task: tasks.Task
    length: int
    width_params: dict[str, Any] = field(default_factory=dict)
    generate: bool = False
    notes: str = ""
    hypotheses: str = ""
    hypotheses_hold: bool = True


@dataclass(frozen=True)
class Construction:
    """A registered construction: its name, builder, task and the result it realises."""

    name: str
    build: Callable[..., HandBuilt]
    task: str
    result_id: str
    form: str
    """Growth of its width in N: "log", "constant", "D log k", "linear"."""
    summary: str
    width_knob: str | None = None
    """Name of the builder keyword that sets the width (for the smallest-width search)."""
    admissible: Callable[..., int | None] | None = None
    """``admissible(length, start, **params)``: the smallest knob value ≥ ``start`` at which the
    build's structural hypotheses hold (None: none up to the search's maximum). Every
    construction with a width knob has one: the width search only tries these values."""
    unit_bits: bool = False
    """Every unit of the width holds one bit (exact 0/1 or ±1 threshold units), so the width
    counts state *bits*, not p-bit numbers. Declared by constructions of results stated in
    bits at p = Θ(log N) (W24-RAG, W24-H): such a result's ``form`` is the packed width in
    numbers (constant at fixed p), while one bit per unit makes the width grow like the bit
    count (log N) — the same O(log N)-bit statement. :meth:`judge` then compares the width
    with the result's ``bits_form``."""

    def judge(self, fit: theory.GrowthFit) -> theory.Verdict:
        """:func:`sepbench.theory.verdict` of this construction's result on a fit of its
        widths: success is exact (a construction is verified on every input it is checked
        on), and a ``unit_bits`` width is compared as a count of bits."""
        units = "bits" if self.unit_bits else "numbers"
        return theory.verdict(self.result_id, fit, success=theory.Success.exact(), units=units)


_REGISTRY: dict[str, Construction] = {}


def register(
    name: str,
    task: str,
    result_id: str,
    form: str,
    summary: str,
    width_knob: str | None = None,
    admissible: Callable[..., int | None] | None = None,
    unit_bits: bool = False,
) -> Callable[[Callable[..., HandBuilt]], Callable[..., HandBuilt]]:
    """Decorator: add a builder to the registry under ``name`` (a width knob needs its
    ``admissible`` rule)."""

    def wrap(fn: Callable[..., HandBuilt]) -> Callable[..., HandBuilt]:
        if name in _REGISTRY:
            raise AssertionError(f"construction {name!r} registered twice")
        if (width_knob is None) != (admissible is None):
            raise AssertionError(f"construction {name!r}: a width knob needs its admissible rule")
        _REGISTRY[name] = Construction(
            name,
            fn,
            task,
            result_id,
            form,
            summary,
            width_knob,
            admissible=admissible,
            unit_bits=unit_bits,
        )
        return fn

    return wrap


def registry() -> dict[str, Construction]:
    return dict(_REGISTRY)


def get(name: str) -> Construction:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UserError(f"unknown construction '{name}'; known: {known}") from None


@dataclass
class BatchCheck:
    """Outcome of running a construction on one batch (teacher forced)."""

    checked: int
    errors: int
    first_error: int | None
    """Row index of the first wrong row, or None."""
    min_gap: float
    """Smallest (correct logit - best other logit) over all supervised positions."""


@torch.no_grad()
def check_batch(hb: HandBuilt, inputs: np.ndarray, targets: np.ndarray) -> BatchCheck:
    """Run ``hb.module`` on ``inputs`` and compare argmax logits with ``targets`` row by row."""
    logits = hb.module(torch.from_numpy(np.ascontiguousarray(inputs))).double()
    tgt = torch.from_numpy(targets)
    sup = tgt != IGNORE
    safe = tgt.clamp(min=0)
    correct_logit = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, safe.unsqueeze(-1), float("-inf")).amax(-1)
    gap = (correct_logit - others).masked_fill(~sup, float("inf"))
    row_ok = (gap > 0).all(dim=1)
    bad = torch.nonzero(~row_ok).flatten()
    return BatchCheck(
        checked=int(inputs.shape[0]),
        errors=int((~row_ok).sum()),
        first_error=int(bad[0]) if bad.numel() else None,
        min_gap=float(gap.min()) if sup.any() else float("inf"),
    )
