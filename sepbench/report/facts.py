"""A pair's model facts — theory class, state numbers per unit of width, parameter counts —
read from its stored trials, or for stores written before trials recorded them, from the
family cards.

Every trial a :class:`~sepbench.sweep.TrainingProbe` runs records the facts of the model it
trained (:class:`sepbench.models.cards.ModelFacts`). The report uses those. Only where no trial
of a pair holds them (stores written before sepbench recorded them, or stores of a probe that
builds no model) does it take them from the family cards, the one owner of the rules, and
the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sepbench import theory
from sepbench.models import cards
from sepbench.report.infos import ModelInfo, TaskInfo

if TYPE_CHECKING:
    from sepbench.sweep.store import TrialRecord

STORED = "stored"
CARDS = "cards"


@dataclass(frozen=True)
class PairFacts:
    """What the report knows of a pair's model."""

    model_class: str | None
    """The theory class (None: the family has none, so no theorem concerns it)."""
    state_factor: float
    """Numbers per unit of width the theorems of the class bound: the recurrent state per
    width unit for :data:`sepbench.theory.STATE_CLASSES`, else 1 (the width itself)."""
    state_note: str
    """The state rule in words ("" when the factor is 1)."""
    source: str
    """:data:`STORED` (the trials' records) or :data:`CARDS` (the family cards)."""
    parameters: dict[int, int] = field(default_factory=dict)
    """Trainable parameters per trained width (stored trials only)."""
    problems: tuple[str, ...] = ()
    """Stored facts that disagree with each other or with the cards."""
    number_bits: int | None = None
    """p, the bits per carried number of the pair's model (its ``state_bits`` /
    ``precision_bits`` option: :meth:`sepbench.models.cards.FamilyCard.number_bits`); None
    for unbounded floats. From the trials' records where they hold it, else from the cards."""
    state_bits: dict[int, int] = field(default_factory=dict)
    """Bits carried per trained width at the trials' token length (stored trials only; at
    several lengths the largest — a cache grows with the length)."""


def pair_facts(task: TaskInfo, model: ModelInfo, trials: Sequence[TrialRecord]) -> PairFacts:
    """The facts of ``model`` on ``task`` from ``trials`` (see the module docstring)."""
    recorded = [
        f
        for f in (cards.ModelFacts.from_details(t.outcome.get("details")) for t in trials)
        if f is not None
    ]
    card_class = cards.model_class(model.family, model.options, task.name, task.params)
    card_state = cards.state_per_width(model.family, model.options)
    card_bits = cards.number_bits(model.family, model.options)
    note = card_state[1] if card_state is not None else ""
    if not recorded:
        cls = card_class
        s = card_state[0] if card_state is not None else 1.0
        return _facts(cls, s, note, CARDS, {}, [], card_bits, {})
    problems = []
    classes = sorted({str(f.model_class) for f in recorded})
    cls = recorded[0].model_class
    if len(classes) > 1 or cls != card_class:
        problems.append(
            f"{task.label} / {model.label}: stored trials name the theory class(es) "
            f"{', '.join(classes)}, the family card {card_class}; the report uses "
            f"{cls} (the first trial's)"
        )
    ratios = sorted({f.state_size / f.width for f in recorded if f.width > 0})
    s = ratios[0] if ratios else 0.0
    if cls in theory.STATE_CLASSES and (
        len(ratios) != 1 or card_state is None or s != card_state[0]
    ):
        problems.append(
            f"{task.label} / {model.label}: stored state sizes give "
            f"{', '.join(f'{r:g}' for r in ratios)} numbers per unit of width, the family card "
            f"{card_state[0] if card_state else 'none'}; the report uses {s:g}"
        )
    params = {f.width: f.parameters for f in sorted(recorded, key=lambda f: f.width)}
    p, bits = _stored_bits(recorded, card_bits, f"{task.label} / {model.label}", problems)
    return _facts(cls, s, note, STORED, params, problems, p, bits)


def _stored_bits(
    recorded: Sequence[cards.ModelFacts],
    card_bits: int | None,
    pair: str,
    problems: list[str],
) -> tuple[int | None, dict[int, int]]:
    """(p, bits carried per width) from the trials that record them; the cards' p where no
    trial does (stores written before trials recorded their bits), and a problem where the
    trials disagree with each other or with the cards (the report then uses the largest p,
    with which every recorded model's bound stays valid: :meth:`FamilyCard.number_bits`)."""
    with_bits = [f for f in recorded if f.state_bits is not None]
    if not with_bits:
        return card_bits, {}
    ps = {f.number_bits for f in with_bits}
    p = None if None in ps else max(int(q) for q in ps if q is not None)
    if len(ps) > 1 or p != card_bits:
        shown = ", ".join("float" if q is None else str(q) for q in sorted(ps, key=str))
        problems.append(
            f"{pair}: stored trials record p = {shown} bits per number, the family card "
            f"{'float' if card_bits is None else card_bits}; the report uses "
            f"{'float' if p is None else p}"
        )
    bits: dict[int, int] = {}
    for f in sorted(with_bits, key=lambda f: f.width):
        bits[f.width] = max(bits.get(f.width, 0), int(f.state_bits or 0))
    return p, bits


def _facts(
    cls: str | None,
    s: float,
    note: str,
    source: str,
    params: dict[int, int],
    problems: list[str],
    p: int | None,
    bits: dict[int, int],
) -> PairFacts:
    if cls not in theory.STATE_CLASSES:
        s, note = 1.0, ""
    return PairFacts(cls, float(s), note, source, params, tuple(problems), p, bits)
