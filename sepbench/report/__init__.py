"""The width-scaling report: plots beside the theorems, and a verdict per (task, model).

>>> from sepbench import report
>>> report.write_report("runs/lookup.sqlite", "runs/lookup-report")   # doctest: +SKIP
PosixPath('runs/lookup-report/report.md')

:func:`write_report` reads a results store (or a study summary), fits each curve's growth law
(:func:`sepbench.theory.fit_growth`), sets it beside every theorem of the model's class
(:func:`sepbench.theory.verdict`) and writes ``report.md``, ``report.json`` and
``figures/*.png|svg`` into the output directory — atomically: an interrupted report leaves the
previous one intact. :func:`collect` gives the same content as data. The conventions (model
classes, width vs state, precision, censored widths) are stated in
:mod:`sepbench.report.data` and in every report.
"""

from sepbench.report.data import (
    DEFAULT_PRECISION_BITS,
    LENGTH_EVAL_KEY,
    BoundCurve,
    ConstructionCurve,
    PairData,
    ReportData,
    ResultVerdict,
    collect,
    construction_curves,
    model_class,
    resolve_store,
    state_per_width,
)
from sepbench.report.writer import MARKER, REPORT_NAME, write_report

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
    "model_class",
    "resolve_store",
    "state_per_width",
    "write_report",
]
