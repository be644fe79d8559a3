"""The width-scaling report: plots beside the theorems, and a verdict per (task, model).

>>> from sepbench import report
>>> report.write_report("runs/lookup.sqlite", "runs/lookup-report")   # doctest: +SKIP
PosixPath('runs/lookup-report/report.md')

:func:`write_report` reads a results store, fits each curve's growth law
(:func:`sepbench.theory.fit_growth`), sets it beside every theorem of the model's class
(:func:`sepbench.theory.verdict`) and writes ``report.md``, ``report.json`` and
``figures/*.png|svg`` into the output directory — atomically: an interrupted report leaves the
previous one intact. :func:`collect` gives the same content as data, and :func:`write_data`
writes data already collected. The conventions (model
classes, width vs state, precision, censored widths) are stated in
:mod:`sepbench.report.data` and in every report.

The report only reads: model facts come from the trials (or the family cards,
:mod:`sepbench.models.cards`), theorem facts from the catalogue (:mod:`sepbench.theory`).
Modules by concern: ``collect`` (a store in, :class:`ReportData` out), ``facts`` (a pair's
model facts), ``fits`` (growth fits), ``bounds`` (bound curves in width units), ``verdicts``
(a theorem beside a curve, in words), ``constructions`` (construction curves), ``lengths``
(length generalisation), ``bits`` (the state-bits axis of a bounded-precision study), ``data``
(the plain records), ``plots``, ``bits_plots``, ``markdown``, ``writer``.
"""

from sepbench.report.bounds import BoundCurve
from sepbench.report.collect import collect
from sepbench.report.constructions import ConstructionCurve, construction_curves
from sepbench.report.data import DEFAULT_PRECISION_BITS, PairData, ReportData
from sepbench.report.lengths import LENGTH_EVAL_KEY
from sepbench.report.verdicts import ResultVerdict
from sepbench.report.writer import MARKER, REPORT_NAME, write_data, write_report

__all__ = [
    "DEFAULT_PRECISION_BITS",
    "LENGTH_EVAL_KEY",
    "MARKER",
    "REPORT_NAME",
    "BoundCurve",
    "ConstructionCurve",
    "PairData",
    "ReportData",
    "ResultVerdict",
    "collect",
    "construction_curves",
    "write_data",
    "write_report",
]
