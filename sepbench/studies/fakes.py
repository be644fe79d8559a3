"""A training-free capacity probe with a known answer, for tests and benchmarks of the grid
machinery (the driver, resume, export, the report) — like :class:`sepbench.sweep.FakeProbe`.

:class:`FakeCapacityProbe` answers every point of a capacity trial from two laws of the state
size S and the training length T:

* recall: a row at context L is correct iff L ≤ ``capacity(S, T)`` = ``recall_coef · S ·
  T / recall_ref`` (``recall_law = "linear"``) or ``recall_ref · 2^(S / recall_scale)``
  (``"exponential"``) — so T_recall(θ) for any θ is the largest grid L ≤ capacity;
* forgetting: recent-key rows are correct iff T ≥ ``forget_coef · S`` (the model learned to
  forget, SM24's linear T_forget) or L ≤ 2·T (it collapses past twice its training length);
* a mitigation adds ``mitigation_gain`` doublings to the capacity.

Rows carry ``hits`` like the real probe's. ``delay`` seconds of sleep per trial; ``log``: a file
to which each trial appends ``start <key>`` and ``end <key>`` (O_APPEND, safe across
processes). ``fail_on``: a replicate whose trials raise (to test error handling).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sepbench.studies.capacity import Evaluation
from sepbench.studies.capacity_probe import recent_positions
from sepbench.studies.grid import POINTS_KEY, GridConfig
from sepbench.sweep.probes import log_event
from sepbench.sweep.trial import ProbeOutcome, TrialSpec


@dataclass(frozen=True)
class FakeCapacityProbe:
    """Deterministic stand-in for :class:`~sepbench.studies.capacity_probe.CapacityProbe`."""

    recall_law: str = "linear"
    recall_coef: float = 1.0
    recall_ref: float = 16.0
    recall_scale: float = 8.0
    forget_coef: float = 1.0
    mitigation_gain: int = 1
    delay: float = 0.0
    log: str | None = None
    fail_on: int | None = None

    def state_size(self, config: GridConfig, width: int) -> int:
        from sepbench.models.cards import CARDS

        return CARDS[config.family].state_size(width, config.model_options, 1)

    def capacity(self, state: int, train_length: int) -> float:
        if self.recall_law == "exponential":
            return self.recall_ref * 2 ** (state / self.recall_scale)
        return self.recall_coef * state * train_length / self.recall_ref

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        config = trial.search
        assert isinstance(config, GridConfig)
        self._log("start", trial.key)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and config.replicate == self.fail_on:
            raise RuntimeError(f"fake failure on replicate {self.fail_on}")
        ev = Evaluation.model_validate(config.evaluation)
        state = self.state_size(config, trial.width)
        t_train = config.length
        forgets = t_train >= self.forget_coef * state
        names = ["none"] + ([m.name for m in ev.mitigations] if config.family == "ssm" else [])
        points: list[dict[str, Any]] = []
        digits = int(config.task_params.get("digits", 5))
        for name in names:
            rows = ev.rows if name == "none" else ev.mitigation_rows
            cap = self.capacity(state, t_train) * (2**self.mitigation_gain if name != "none" else 1)
            for n in ev.lengths:
                ok = n <= cap
                for d in ev.depths:
                    points.append(_point(name, "grid", n, d, rows, ok))
                if ev.recent_rows:
                    starts = recent_positions(n, digits, t_train, rows)
                    depth = float(sum(starts)) / len(starts) / max(1, n - 2 * digits - 2)
                    points.append(
                        _point(name, "recent", n, depth, rows, forgets or n <= 2 * t_train)
                    )
        self._log("end", trial.key)
        details = {
            POINTS_KEY: points,
            "model_facts": {
                "model_class": "rnn",
                "state_size": state,
                "state_tokens": t_train,
                "parameters": 10 * state,
                "width": trial.width,
            },
            "examples_seen": config.budget.steps * config.budget.batch_size,
        }
        return ProbeOutcome(
            reached=True,
            accuracy=1.0,
            steps=config.budget.steps,
            wall_s=self.delay,
            details=details,
        )

    def _log(self, event: str, key: str) -> None:
        log_event(self.log, event, key)


def _point(name: str, probe: str, n: int, depth: float, rows: int, ok: bool) -> dict[str, Any]:
    hits = ("1" if ok else "0") * rows
    return {
        "mitigation": name,
        "probe": probe,
        "length": n,
        "depth": depth if math.isfinite(depth) else 1.0,
        "rows": rows,
        "correct": rows if ok else 0,
        "accuracy": 1.0 if ok else 0.0,
        "hits": hits,
    }
