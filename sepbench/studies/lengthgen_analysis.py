"""What a lengthgen store says: per-run OOD scores, bins, max and median over seeds, read-outs.

The rules (lengthgen.md "Protocol"):

* a **run** is one trained model (model entry, size, L, seed) read at one iteration count
  (``None`` for a family without one); its **OOD score** is the mean ``acc_row`` over its test
  lengths (all > L), an unweighted mean over the lengths evaluated;
* **bins**: [L_min, L] (the in-distribution lengths evaluated), then (L, L + w], (L + w, L + 2w],
  … with w = ``evaluation.bin_width`` (default L, the spec's (L, 2L], (2L, 3L], …); a bin's
  score for a run is the mean ``acc_row`` over its evaluated lengths;
* over the S seeds of a (model, size, L, iterations): the **max** (can this architecture and
  training procedure reach a length-general solution at all? one generalising seed shows it is
  reachable, DE23 report the best run) and the **median** (what a typical run does; guards
  against a lucky seed) of every length, bin and OOD score, and k/S = seeds whose OOD score is
  ≥ :data:`SOLVED` (0.9);
* **read-out**: the largest test length at which the best seed has ``acc_row`` ≥ 0.9 (None when
  none has), with the median seed's ``acc_row`` there beside it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sepbench.studies.grid import trial_columns, trial_points

if TYPE_CHECKING:
    from sepbench.studies.lengthgen import LengthgenSpec
    from sepbench.sweep.store import Store

SOLVED = 0.9
"""An OOD score (or a length's ``acc_row``) at least this counts as solved (DE23's bar)."""


@dataclass(frozen=True)
class Bin:
    """Lengths in (lo, hi] — or [lo, hi] for the in-distribution bin — and its label."""

    label: str
    lo: int
    hi: int
    in_distribution: bool

    def holds(self, length: int) -> bool:
        return (self.lo <= length if self.in_distribution else self.lo < length) and (
            length <= self.hi
        )


def make_bins(train_min: int, train_max: int, lengths: Sequence[int], width: int) -> list[Bin]:
    """[L_min, L], then (L + i·w, L + (i + 1)·w] up to the longest of ``lengths``."""
    out = [Bin(f"[{train_min}, {train_max}]", train_min, train_max, True)]
    top = max(lengths, default=train_max)
    lo = train_max
    while lo < top:
        hi = lo + width
        out.append(Bin(f"({lo}, {hi}]", lo, hi, False))
        lo = hi
    return out


@dataclass
class Run:
    """One trained model read at one iteration count (module docstring)."""

    model: str
    family: str
    size: str
    train_length: int
    replicate: int
    iterations: int | None
    trained: bool
    train_accuracy: float | None
    train_iterations: int | None = None
    acc: dict[int, float] = field(default_factory=dict)
    pos: dict[int, float] = field(default_factory=dict)

    @property
    def ood_score(self) -> float | None:
        test = [a for n, a in self.acc.items() if n > self.train_length]
        return sum(test) / len(test) if test else None

    def bin_score(self, b: Bin) -> float | None:
        vals = [a for n, a in self.acc.items() if b.holds(n)]
        return sum(vals) / len(vals) if vals else None


@dataclass(frozen=True)
class Stat:
    """Max and median over seeds (None where no seed has a value)."""

    maximum: float | None
    median: float | None

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        vals = [v for v in values if v is not None]
        if not vals:
            return cls(None, None)
        return cls(max(vals), float(statistics.median(vals)))


@dataclass(frozen=True)
class Curve:
    """Every seed of one (model, size, L, iterations) (module docstring)."""

    model: str
    family: str
    size: str
    train_min: int
    train_length: int
    iterations: int | None
    runs: tuple[Run, ...]
    lengths: tuple[int, ...]
    by_length: tuple[Stat, ...]
    bins: tuple[tuple[Bin, Stat], ...]
    ood: Stat
    solved: int
    readout: int | None
    readout_median: float | None

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def label(self) -> str:
        it = "" if self.iterations is None else f" R={self.iterations}"
        return f"{self.model}{it}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "size": self.size,
            "train_range": [self.train_min, self.train_length],
            "iterations": self.iterations,
            "seeds": self.seeds,
            "lengths": list(self.lengths),
            "acc_row_max": [s.maximum for s in self.by_length],
            "acc_row_median": [s.median for s in self.by_length],
            "bins": [{"bin": b.label, "max": s.maximum, "median": s.median} for b, s in self.bins],
            "ood_max": self.ood.maximum,
            "ood_median": self.ood.median,
            "solved": self.solved,
            "readout": self.readout,
            "readout_median": self.readout_median,
            "train_accuracy": [r.train_accuracy for r in self.runs],
        }


def collect_runs(store: Store) -> list[Run]:
    """Every (trial, iteration count) of the store as a :class:`Run`, in store order."""
    runs: dict[tuple[str, int | None], Run] = {}
    for record in store.records():
        head = trial_columns(record)
        for p in trial_points(record):
            key = (str(head["trial_key"]), p.get("iterations"))
            run = runs.get(key)
            if run is None:
                run = runs[key] = Run(
                    model=str(head["model"]),
                    family=str(head["family"]),
                    size=str(head["size"]),
                    train_length=int(head["train_length"]),
                    replicate=int(head["replicate"]),
                    iterations=p.get("iterations"),
                    trained=bool(head["trained"]),
                    train_accuracy=head["train_accuracy"],
                    train_iterations=p.get("train_iterations", _size_iterations(head["size"])),
                )
            if p.get("acc_row") is not None:
                run.acc[int(p["length"])] = float(p["acc_row"])
            if p.get("acc_pos") is not None:
                run.pos[int(p["length"])] = float(p["acc_pos"])
    return list(runs.values())


def _size_iterations(size: str) -> int | None:
    """A size's ``iterations`` option (stores written before points held ``train_iterations``)."""
    value = json.loads(size).get("iterations")
    return int(value) if isinstance(value, int) else None


def curve_of(runs: Sequence[Run], train_min: int, bins: Sequence[Bin]) -> Curve:
    """The :class:`Curve` of the seeds ``runs`` (all of one model, size, L, iterations)."""
    first = runs[0]
    lengths = tuple(sorted({n for r in runs for n in r.acc}))
    by_length = tuple(Stat.of([r.acc.get(n) for r in runs]) for n in lengths)
    ood = [r.ood_score for r in runs]
    readout, readout_median = None, None
    for n, s in zip(lengths, by_length, strict=True):
        if n > first.train_length and s.maximum is not None and s.maximum >= SOLVED:
            readout, readout_median = n, s.median
    return Curve(
        model=first.model,
        family=first.family,
        size=first.size,
        train_min=train_min,
        train_length=first.train_length,
        iterations=first.iterations,
        runs=tuple(runs),
        lengths=lengths,
        by_length=by_length,
        bins=tuple((b, Stat.of([r.bin_score(b) for r in runs])) for b in bins),
        ood=Stat.of(ood),
        solved=sum(1 for v in ood if v is not None and v >= SOLVED),
        readout=readout,
        readout_median=readout_median,
    )


def curves(store: Store, spec: LengthgenSpec) -> list[Curve]:
    """One :class:`Curve` per (model, size, L, iterations), in store order."""
    groups: dict[tuple[str, str, int, int | None], list[Run]] = {}
    for run in collect_runs(store):
        key = (run.model, run.size, run.train_length, run.iterations)
        groups.setdefault(key, []).append(run)
    ev = spec.evaluation
    out = []
    for (_, _, length, _), runs in groups.items():
        lo = spec.train_min(length)
        evaluated = {n for r in runs for n in r.acc} | {lo}
        bins = [
            b
            for b in make_bins(lo, length, ev.lengths, ev.bin_width or length)
            if b.in_distribution or any(b.holds(n) for n in evaluated)
        ]
        out.append(curve_of(sorted(runs, key=lambda r: r.replicate), lo, bins))
    return out
