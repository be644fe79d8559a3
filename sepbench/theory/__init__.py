"""The catalogue of separation results, their bounds, growth-law fits and verdicts.

>>> from sepbench import theory
>>> [r.id for r in theory.for_task("index_lookup", "rnn")]
['B24-T3', 'W24-R']
>>> theory.min_width("B24-T1", 256)   # log2 4 + 2·ceil(128·ln 512)
1600.0

* :mod:`~sepbench.theory.catalogue` — :class:`Result` records, :func:`results`, :func:`get`,
  :func:`for_task` (sources: B24, W24, H20, Y21; see docs/theory.md).
* :mod:`~sepbench.theory.formulas` — every bound as a formula, with its derivation.
* :mod:`~sepbench.theory.bounds` — :func:`min_width`, :func:`min_state_bits`, :func:`lower_bound`.
* :mod:`~sepbench.theory.fits` — :func:`fit_growth` (constant / log / linear / power on exact
  points or grid intervals with censoring, AICc, a profile-likelihood CI for the exponent),
  :func:`interval_from_grid`; the likelihood itself is :mod:`~sepbench.theory.censored`.
* :mod:`~sepbench.theory.verdicts` — :func:`verdict` and :class:`Success`: consistent /
  inconsistent / undecided / vacuous / not applicable.
* :mod:`~sepbench.theory.coverage` — the simulation that measures the CI's coverage.

numpy only: nothing here imports torch. docs/theory.md is rendered from this catalogue by
:mod:`sepbench.docgen.theory`.
"""

from sepbench.theory.bounds import lower_bound, min_state_bits, min_width
from sepbench.theory.catalogue import (
    MODEL_CLASSES,
    PAPERS,
    STATE_CLASSES,
    BoundParam,
    Result,
    TaskLength,
    for_task,
    get,
    ids,
    results,
    tasks_covered,
)
from sepbench.theory.fits import (
    LAWS,
    Exponent,
    GrowthFit,
    LawFit,
    exponent,
    fit_growth,
    interval_from_grid,
)
from sepbench.theory.formulas import address_dim, default_precision
from sepbench.theory.verdicts import OUTCOMES, Success, Verdict, lower_verdict, verdict

__all__ = [
    "LAWS",
    "MODEL_CLASSES",
    "OUTCOMES",
    "PAPERS",
    "STATE_CLASSES",
    "BoundParam",
    "Exponent",
    "GrowthFit",
    "LawFit",
    "Result",
    "Success",
    "TaskLength",
    "Verdict",
    "address_dim",
    "default_precision",
    "exponent",
    "fit_growth",
    "for_task",
    "get",
    "ids",
    "interval_from_grid",
    "lower_bound",
    "lower_verdict",
    "min_state_bits",
    "min_width",
    "results",
    "tasks_covered",
    "verdict",
]
