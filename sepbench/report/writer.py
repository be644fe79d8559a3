"""write_report: render a study into a report directory, atomically.

The directory is built under a temporary name beside ``out_dir`` and moved into place only
when every file is written: on Linux the two directories are swapped in one ``renameat2``
(RENAME_EXCHANGE) call; elsewhere the old directory is renamed aside, the new one renamed into
place and the old one deleted. An interrupted report (an exception, Ctrl-C, kill -9) therefore
leaves the previous report untouched; a killed run's temporary directory is removed by the next
report written to the same place.

A directory is only ever replaced if it is empty or holds a previous report (the marker file
:data:`MARKER`), so ``--out`` pointed at the wrong directory is an error, not a deletion.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepbench.errors import UserError
from sepbench.report import bits_plots, markdown, plots
from sepbench.report.collect import collect
from sepbench.report.data import DEFAULT_PRECISION_BITS, ReportData

if TYPE_CHECKING:
    from sepbench.report.bits import BitsAxis
    from sepbench.sweep.store import Store

MARKER = ".sepbench-report"
REPORT_NAME = "report.md"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_report(
    store: Store | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    constructions: Any = None,
    *,
    precision_bits: int = DEFAULT_PRECISION_BITS,
    formats: Sequence[str] = plots.FORMATS,
    n_boot: int | None = None,
) -> Path:
    """Write ``out_dir/report.md`` with its figures (``out_dir/figures/*.png|svg``) and
    ``report.json`` (the verdict table as data); return the path of report.md.

    ``store``: an open :class:`~sepbench.sweep.Store`, or the path of a store file (opened
    for reading; a study directory is resolved by ``sepbench report``, not here).
    ``constructions``: construction widths, ``{name: [(N, width), ...]}`` (see
    :func:`~sepbench.report.constructions.construction_curves` for the accepted forms).
    ``precision_bits``: p used to turn state-bit lower bounds into widths for models of
    unbounded precision (default 32); a bounded model is judged at its own p.
    :func:`collect` then :func:`write_data`; call those two to keep the data in memory.
    """
    _check_formats(formats)
    check_destination(Path(out_dir))
    data = _collect(store, constructions, precision_bits, n_boot)
    return write_data(data, out_dir, formats=formats)


def write_data(
    data: ReportData,
    out_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = plots.FORMATS,
) -> Path:
    """Write an already collected report (:func:`collect`) into ``out_dir``, atomically (the
    module docstring); return the path of report.md."""
    _check_formats(formats)
    dest = Path(out_dir)
    check_destination(dest)
    write_atomically(dest, lambda tmp: render_into(tmp, data, formats))
    return dest / REPORT_NAME


def write_atomically(dest: Path, render: Callable[[Path], None]) -> None:
    """Build a report directory with ``render(tmp)`` under a temporary name beside ``dest``
    and move it into place (module docstring); ``render`` writes :data:`MARKER` too.
    Call :func:`check_destination` first, before any expensive work."""
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {str(parent)!r}: {exc.strerror}") from None
    _remove_stale(parent, dest.name)
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=parent)
        )
    except OSError as exc:
        raise UserError(f"cannot write a report in {str(parent)!r}: {exc.strerror}") from None
    try:
        render(tmp)
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_formats(formats: Sequence[str]) -> None:
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise UserError(f"figure formats must be among png, svg, pdf; got {list(formats)}")


def _collect(
    store: Store | str | os.PathLike[str],
    constructions: Any,
    precision_bits: int,
    n_boot: int | None,
) -> ReportData:
    from sepbench.sweep.store import Store

    if isinstance(store, Store):
        return collect(store, constructions, precision_bits=precision_bits, n_boot=n_boot)
    if not isinstance(store, str | os.PathLike):
        raise UserError(
            f"write_report needs a results store or the path of a store file, got "
            f"{type(store).__name__}"
        )
    with Store.open(store) as opened:
        return collect(opened, constructions, precision_bits=precision_bits, n_boot=n_boot)


def check_destination(dest: Path) -> None:
    """UserError unless ``dest`` may hold a report: absent, empty or a previous report."""
    if dest.exists() and not dest.is_dir():
        raise UserError(f"report directory {str(dest)!r} exists and is not a directory")
    if dest.is_dir():
        try:
            entries = list(dest.iterdir())
        except OSError as exc:
            raise UserError(f"cannot read {str(dest)!r}: {exc.strerror}") from None
        if entries and not (dest / MARKER).exists():
            raise UserError(
                f"{str(dest)!r} exists and does not hold a sepbench report; choose another "
                "output directory (a report replaces its directory as a whole)"
            )
    for part in [dest, *dest.parents]:
        if part.exists():
            if not part.is_dir():
                raise UserError(f"cannot write a report under {str(part)!r}: not a directory")
            break


def _remove_stale(parent: Path, name: str) -> None:
    """Delete temporary report directories left by killed processes."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\..*\.(tmp|old)$")
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            m = pattern.match(entry.name)
            if m and entry.is_dir() and not _alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of this very process (an earlier, interrupted call)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_into_place(tmp: Path, dest: Path) -> None:
    try:
        if not dest.exists():
            os.rename(tmp, dest)
            return
        if _exchange(tmp, dest):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous report
            return
        old = dest.with_name(f".{dest.name}.{os.getpid()}.{tmp.name[-12:]}.old")
        os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise UserError(f"cannot move the report into {str(dest)!r}: {exc.strerror}") from None


def slug(text: str) -> str:
    """``text`` as a file-name part (letters, digits, '.', '_' and '-')."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return slug or "x"


def render_into(directory: Path, data: ReportData, formats: Sequence[str]) -> None:
    """Write the figures, report.md, report.json and the marker into ``directory``."""
    fig_dir = directory / "figures"
    fig_dir.mkdir()
    figures: dict[str, list[str]] = {}
    threshold = data.spec.threshold if data.spec is not None else None
    used: set[str] = set()

    def emit(key: str, fig: Any, *parts: str) -> None:
        if fig is None:
            return
        stem = "__".join(slug(p) for p in parts)
        while stem in used:
            stem += "_"
        used.add(stem)
        paths = plots.save(fig, fig_dir / stem, formats)
        figures[key] = [str(p.relative_to(directory)) for p in paths]

    for task in data.tasks:
        pairs = data.pairs_for(task.label)
        emit(
            f"separation/{task.label}",
            plots.separation_figure(task, pairs, data.precision_bits),
            "separation",
            task.label,
        )
        axis = data.bits_axis_for(task.label)
        if axis is not None:
            emit(f"bits/{task.label}", bits_plots.bits_figure(axis), "bits", task.label)
        for p in pairs:
            key = f"{p.task.label}/{p.model.label}"
            emit(
                f"width/{key}",
                plots.width_figure(p, p.precision_bits),
                "width",
                p.task.label,
                p.model.label,
            )
            emit(
                f"heatmap/{key}",
                plots.heatmap_figure(p, threshold),
                "heatmap",
                p.task.label,
                p.model.label,
            )
            emit(f"lengths/{key}", plots.length_figure(p), "lengths", p.task.label, p.model.label)
    (directory / REPORT_NAME).write_text(markdown.render(data, figures), encoding="utf-8")
    (directory / "report.json").write_text(
        json.dumps(report_json(data, figures), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (directory / MARKER).write_text(f"{data.study} {data.spec_hash}\n", encoding="utf-8")


def report_json(data: ReportData, figures: dict[str, list[str]]) -> dict[str, Any]:
    """The verdict table and the study's counts as plain data."""
    s = data.summary
    pairs = []
    for p in data.pairs:
        fit = p.fit
        pairs.append(
            {
                "task": p.task.label,
                "model": p.model.label,
                "family": p.model.family,
                "model_class": p.model_class,
                "state_per_width": p.state_factor,
                "model_facts": p.facts.source,
                "parameters": {str(w): n for w, n in p.facts.parameters.items()},
                "best_law": fit.best if fit else None,
                "law": fit.laws[fit.best].formula() if fit else None,
                "criterion": fit.criterion if fit else None,
                "alpha": fit.alpha if fit else None,
                "alpha_ci": list(fit.alpha_ci) if fit and fit.alpha_ci else None,
                "censored_in_fit": fit.n_censored if fit else 0,
                "rests_on_censored": fit.rests_on_censored if fit else None,
                "grid": list(p.model.grid),
                "outcome": p.outcome,
                "reason": p.reason,
                "fit_note": p.fit_note,
                "censored": len(p.censored),
                "violations": len(p.violations),
                "verdicts": [
                    {
                        "result_id": v.result_id,
                        "direction": v.direction,
                        "form": v.form,
                        "outcome": v.outcome,
                        "hypothesis": v.hypothesis,
                        "reason": v.reason,
                        "bound_at_max_length": v.bound_at_max,
                    }
                    for v in p.verdicts
                ],
            }
        )
        if p.bounded:  # the pair's own p (an unbounded pair uses the report's, below)
            pairs[-1]["precision_bits"] = p.precision_bits
    out = {
        "study": data.study,
        "spec_hash": data.spec_hash,
        "store": data.store_path,
        "generated": data.generated,
        "precision_bits": data.precision_bits,
        "success": {
            "accuracy": data.success.accuracy,
            "sampled": data.success.sampled,
            "meaning": data.success.describe(),
        },
        "trials": s.trials,
        "searches": len(s.searches),
        "censored": sum(x.status == "censored" for x in s.searches),
        "incomplete": sum(x.status == "incomplete" for x in s.searches),
        "violations": s.violations,
        "trial_wall_s": data.trial_wall_s,
        "protocol": None if data.protocol is None else asdict(data.protocol),
        "pairs": pairs,
        "figures": figures,
    }
    if data.bits_axes:  # a bounded-precision study only: an unbounded report is unchanged
        out["bits_axes"] = [bits_json(a) for a in data.bits_axes]
    return out


def bits_json(axis: BitsAxis) -> dict[str, Any]:
    """A task's state-bits axis as plain data (:mod:`sepbench.report.bits`)."""
    return {
        "task": axis.task.label,
        "rnns": [asdict(s) for s in axis.rnns],
        "bounds": [asdict(b) for b in axis.bounds],
        "attention": [asdict(s) for s in axis.attention],
    }
