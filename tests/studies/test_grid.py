"""The grid driver on a fake probe: every planned trial stored once, resume without rerunning
(also after kill -9 mid-study), errors keep finished trials, the points export, and the store's
kind."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sepbench import studies
from sepbench.errors import UserError
from sepbench.studies.fakes import FakeCapacityProbe
from sepbench.studies.grid import plan_grid, point_rows, run_grid, trial_points, write_points_csv
from sepbench.sweep.store import Store
from tests.studies.common import make_cap
from tests.sweep.test_resume import stored

ROOT = Path(__file__).parents[2]


def started(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[1] for line in lines if line.startswith("start ")]


def test_every_trial_is_stored_once_and_a_rerun_runs_nothing(tmp_path: Path) -> None:
    spec = make_cap()
    log = tmp_path / "probe.log"
    probe = FakeCapacityProbe(log=str(log))
    summary = run_grid(spec, probe, tmp_path, executor="inline", progress=False)
    planned = {p.trial.key for p in plan_grid(spec)}
    assert summary.planned == summary.trials == summary.new_trials == len(planned) == 20
    assert summary.complete and Path(summary.store_path) == tmp_path / "cap.sqlite"
    assert sorted(started(log)) == sorted(planned)  # each once
    again = run_grid(spec, probe, tmp_path, executor="inline", progress=False)
    assert again.new_trials == 0 and again.trials == 20
    assert len(started(log)) == 20  # the rerun started nothing
    with Store.open(summary.store_path) as store:
        assert {r.key for r in store.records()} == planned
        assert store.kind == "capacity" and studies.stored_spec(store) == spec
        with pytest.raises(UserError, match="holds a 'capacity' study, not a width search"):
            store.spec()


def test_a_failing_trial_keeps_the_finished_ones_and_resume_runs_the_rest(tmp_path: Path) -> None:
    spec = make_cap()
    log = tmp_path / "probe.log"
    with pytest.raises(RuntimeError, match="fake failure on replicate 1"):
        run_grid(
            spec,
            FakeCapacityProbe(log=str(log), fail_on=1),
            tmp_path,
            executor="inline",
            progress=False,
        )
    with Store.open(tmp_path / "cap.sqlite") as store:
        kept = {r.key for r in store.records()}
    assert kept and all(r == 0 for r in _replicates(tmp_path))
    first = len(started(log))
    summary = run_grid(
        spec, FakeCapacityProbe(log=str(log)), tmp_path, executor="inline", progress=False
    )
    assert summary.trials == 20 and summary.new_trials == 20 - len(kept)
    assert not set(started(log)[first:]) & kept  # nothing stored was run again


def _replicates(folder: Path) -> list[int]:
    with Store.open(folder / "cap.sqlite") as store:
        return [r.replicate for r in store.records()]


def test_another_spec_cannot_write_into_the_store(tmp_path: Path) -> None:
    run_grid(make_cap(), FakeCapacityProbe(), tmp_path, executor="inline", progress=False)
    other = make_cap(evaluation={**make_cap().evaluation.model_dump(mode="json"), "rows": 8})
    with pytest.raises(UserError, match="different version of study 'cap'"):
        run_grid(other, FakeCapacityProbe(), tmp_path, executor="inline", progress=False)


def test_local_pool_gives_the_inline_results(tmp_path: Path) -> None:
    spec = make_cap()
    run_grid(spec, FakeCapacityProbe(), tmp_path / "a", executor="inline", progress=False)
    run_grid(spec, FakeCapacityProbe(), tmp_path / "b", executor="local", workers=2, progress=False)
    outcomes = []
    for folder in ("a", "b"):
        with Store.open(tmp_path / folder / "cap.sqlite") as store:
            outcomes.append({r.key: trial_points(r) for r in store.records()})
    assert outcomes[0] == outcomes[1]


def test_points_export_has_one_row_per_point(tmp_path: Path) -> None:
    spec = make_cap()
    run_grid(spec, FakeCapacityProbe(), tmp_path, executor="inline", progress=False)
    with Store.open(tmp_path / "cap.sqlite") as store:
        columns, rows = point_rows(store)
        total = sum(len(trial_points(r)) for r in store.records())
        assert write_points_csv(store, tmp_path / "points.csv") == len(rows) == total
    ev = spec.evaluation
    per_variant = len(ev.lengths) * (len(ev.depths) + 1)  # grid points + one recent per L
    ssm_trials, lstm_trials = 3 * 2 * 2, 2 * 2 * 2
    assert total == ssm_trials * 4 * per_variant + lstm_trials * per_variant
    assert columns[:3] == ("model", "family", "width")
    assert {"mitigation", "probe", "length", "depth", "rows", "correct", "hits"} <= set(columns)
    with (tmp_path / "points.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == total
    first = read[0]
    assert (
        first["model"] == "ssm"
        and first["state_size"] == "4"
        and first["train_length"] in {"16", "32"}
    )
    assert {r["mitigation"] for r in read if r["family"] == "lstm"} == {"none"}


@pytest.mark.slow
def test_kill_9_mid_study_then_resume_reruns_nothing(tmp_path: Path) -> None:
    spec = make_cap()
    toml = tmp_path / "cap.toml"
    toml.write_text(spec.to_toml())
    log = tmp_path / "probe.log"
    out = tmp_path / "out"
    out.mkdir()
    script = textwrap.dedent(
        f"""
        from sepbench.studies import load_study
        from sepbench.studies.fakes import FakeCapacityProbe
        from sepbench.studies.grid import run_grid
        if __name__ == "__main__":
            run_grid(load_study({str(toml)!r}), FakeCapacityProbe(delay=0.1, log={str(log)!r}),
                     {str(out)!r}, executor="local", workers=2, progress=False)
        """
    )
    path = tmp_path / "run.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path)], cwd=ROOT, start_new_session=True)
    store = out / "cap.sqlite"
    deadline = time.monotonic() + 120
    while stored(store) < 6:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)
    with Store.open(store) as db:
        before = {r.key for r in db.records()}
    assert 6 <= len(before) < 20
    offset = len(log.read_text().splitlines())
    summary = run_grid(
        spec, FakeCapacityProbe(log=str(log)), out, executor="inline", progress=False
    )
    rerun = [
        line.split()[1]
        for line in log.read_text().splitlines()[offset:]
        if line.startswith("start ")
    ]
    assert not set(rerun) & before  # no stored trial ran again
    assert summary.trials == 20 and summary.new_trials == 20 - len(before) == len(rerun)
