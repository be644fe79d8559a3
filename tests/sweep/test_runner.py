"""run_study: executors, resume, summaries (median / range / censored), probe failures."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sepbench.errors import UserError
from sepbench.sweep import FakeProbe, ProbeOutcome, Store, TrialSpec, run_study, worker_threads
from sepbench.sweep.spec import StudySpec
from sepbench.sweep.summary import StudySummary
from tests.sweep.common import make_spec

PROBE = FakeProbe(law="linear", coef={"lstm": 2.0, "tf": 1.0})


def rows(summary: StudySummary) -> list[tuple]:
    return [
        (r.task, r.model, r.length, r.median_text(), r.range_text(), r.censored, r.violations)
        for r in summary.rows
    ]


def keys(path: Path) -> list[str]:
    with Store.open(path) as store:
        return sorted(r.key for r in store.records())


def test_inline_study_finds_every_threshold(tmp_path: Path) -> None:
    summary = run_study(make_spec(), tmp_path, executor="inline", probe=PROBE, progress=False)
    assert summary.store_path == str(tmp_path / "unit.sqlite")
    assert summary.complete and summary.new_trials == summary.trials > 0
    assert rows(summary) == [
        ("index_lookup", "lstm", 4, "8", "[8, 8]", 0, 0),
        ("index_lookup", "lstm", 8, "16", "[16, 16]", 0, 0),
        ("index_lookup", "tf", 4, "4", "[4, 4]", 0, 0),
        ("index_lookup", "tf", 8, "8", "[8, 8]", 0, 0),
    ]
    assert summary.curve("index_lookup", "lstm") == ([4, 8], [8.0, 16.0], [False, False])
    # running it again finds everything stored and runs nothing
    again = run_study(make_spec(), tmp_path, executor="inline", probe=PROBE, progress=False)
    assert again.new_trials == 0 and rows(again) == rows(summary)


def test_local_pool_gives_the_same_table_and_trials(tmp_path: Path) -> None:
    ref = run_study(make_spec(), tmp_path / "a", executor="inline", probe=PROBE, progress=False)
    pool = run_study(
        make_spec(), tmp_path / "b", executor="local", workers=2, probe=PROBE, progress=False
    )
    assert rows(pool) == rows(ref)
    assert keys(tmp_path / "a" / "unit.sqlite") == keys(tmp_path / "b" / "unit.sqlite")


@dataclass(frozen=True)
class ThreadsProbe:
    """Reports the worker's thread settings (picklable: module level)."""

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        import os

        return ProbeOutcome(
            trial.width >= 2,
            details={"threads": worker_threads(), "omp": os.environ.get("OMP_NUM_THREADS")},
        )


def test_local_workers_run_single_threaded(tmp_path: Path) -> None:
    spec = make_spec(lengths=[4], seeds=1, models=[{"family": "lstm"}])
    run_study(spec, tmp_path, executor="local", workers=2, probe=ThreadsProbe(), progress=False)
    with Store.open(tmp_path / "unit.sqlite") as store:
        details = [r.outcome["details"] for r in store.records()]
    assert details and all(d == {"threads": 1, "omp": "1"} for d in details)


@dataclass(frozen=True)
class PerSeedProbe:
    """Threshold per (length, replicate)."""

    thresholds: dict[tuple[int, int], int]

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        return ProbeOutcome(
            trial.width >= self.thresholds[(trial.search.length, trial.search.replicate)]
        )


def test_median_range_and_censored_reporting(tmp_path: Path) -> None:
    spec = make_spec(lengths=[4, 8, 16], seeds=4, models=[{"family": "lstm"}])
    big = 1000
    probe = PerSeedProbe(
        {
            **{(4, r): t for r, t in enumerate([5, 9, 7, 10])},  # median of 4 values: 8
            **{(8, r): t for r, t in enumerate([20, big, 33, big])},  # median (33 + inf) / 2
            **{(16, r): big for r in range(4)},  # everything censored
        }
    )
    summary = run_study(spec, tmp_path, executor="inline", probe=probe, progress=False)
    assert rows(summary) == [
        ("index_lookup", "lstm", 4, "8", "[5, 10]", 0, 0),
        ("index_lookup", "lstm", 8, ">64", "[20, >64]", 2, 0),
        ("index_lookup", "lstm", 16, ">64", "[>64, >64]", 4, 0),
    ]
    r4, r8, r16 = summary.rows
    assert (r4.median, r4.low, r4.high, r4.median_censored) == (8.0, 5, 10, False)
    assert (r8.median, r8.low, r8.high, r8.high_censored) == (None, 20, None, True)
    assert r16.low_censored and r16.censored == 4
    by_seed = [s.width_text() for s in summary.searches if s.length == 8]
    assert by_seed == ["20", ">64", "33", ">64"]
    assert summary.curve("index_lookup", "lstm") == ([4, 8, 16], [8.0, 64.0, 64.0],
                                                     [False, True, True])  # fmt: skip
    assert "[20, >64]" in summary.table()


def test_monotonicity_violations_are_reprobed_and_reported(tmp_path: Path) -> None:
    # thresholds 6, 8, 12, 16; width 2 succeeds by luck on its first attempt, which the
    # witness probe at 4 (a failure) exposes
    probe = FakeProbe(law="linear", coef={"lstm": 2.0, "tf": 1.5}, flips=(2,))
    summary = run_study(make_spec(), tmp_path, executor="inline", probe=probe, progress=False)
    assert rows(summary) == [
        ("index_lookup", "lstm", 4, "8", "[8, 8]", 0, 2),
        ("index_lookup", "lstm", 8, "16", "[16, 16]", 0, 2),
        ("index_lookup", "tf", 4, "6", "[6, 6]", 0, 2),
        ("index_lookup", "tf", 8, "12", "[12, 12]", 0, 2),
    ]
    assert all(s.violations and s.consistent for s in summary.searches)
    assert all(s.violations == ((2, 4),) for s in summary.searches)
    with Store.open(tmp_path / "unit.sqlite") as store:
        records = store.records()
    reprobed = [r for r in records if r.attempt == 1]
    assert {r.width for r in reprobed} == {2}
    assert len(reprobed) == len(summary.searches)
    first_seed = {r.search_key: r.seed for r in records if r.attempt == 0}
    assert all(r.seed != first_seed[r.search_key] for r in reprobed)  # a fresh derived seed


def test_censored_searches_are_kept(tmp_path: Path) -> None:
    spec = make_spec(width={"min": 1, "max": 6})
    summary = run_study(spec, tmp_path, executor="inline", probe=PROBE, progress=False)
    assert [r.median_text() for r in summary.rows] == [">6", ">6", "4", ">6"]
    assert sum(s.status == "censored" for s in summary.searches) == 6


@dataclass(frozen=True)
class BrokenProbe:
    bad_width: int
    user: bool = False

    def __call__(self, trial: TrialSpec) -> ProbeOutcome:
        if trial.width == self.bad_width:
            if self.user:
                raise UserError("model 'lstm': option 'layers' must be >= 1")
            raise ZeroDivisionError("boom")
        return ProbeOutcome(trial.width >= 3)


def test_probe_failure_stops_the_study_and_keeps_finished_trials(tmp_path: Path) -> None:
    spec = make_spec(lengths=[4], seeds=1, models=[{"family": "lstm"}])
    with pytest.raises(RuntimeError, match="width=4 failed: ZeroDivisionError: boom") as info:
        run_study(spec, tmp_path, executor="inline", probe=BrokenProbe(4), progress=False)
    assert "probe traceback" in str(info.value)
    assert len(keys(tmp_path / "unit.sqlite")) == 2  # widths 1 and 2
    with pytest.raises(UserError, match="width=4: model 'lstm': option"):
        run_study(spec, tmp_path, executor="inline", probe=BrokenProbe(4, True), progress=False)
    done = run_study(spec, tmp_path, executor="inline", probe=BrokenProbe(0), progress=False)
    assert done.new_trials == 2 and rows(done)[0][3] == "3"


def test_ray_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install 'sepbench\[ray\]'"):
        run_study(make_spec(), tmp_path, executor="ray", probe=PROBE, progress=False)


def test_progress_bar_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_study(make_spec(), tmp_path, executor="inline", probe=PROBE, progress=True)
    err = capsys.readouterr().err
    assert "sweep unit" in err and "trial" in err and "searches 8/8" in err


def _tiny_training_spec(name: str) -> StudySpec:
    """A real-training study small enough for CI: 2 lengths x 2 families x 2 seeds."""
    return make_spec(
        name=name,
        lengths=[2, 4],
        tasks=[{"name": "index_lookup", "params": {"alphabet": 2, "max_length": 4}}],
        models=[{"family": "lstm"}, {"family": "transformer"}],
        budget={
            "steps": 40,
            "batch_size": 16,
            "lr": 0.01,
            "options": {"eval_every": 10, "eval_batch": 32, "confirm_batch": 64, "warmup": 2},
        },
        width={"min": 1, "max": 8},
    )


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path: Path) -> None:
    """The same study on a local Ray instance and on the local pool: the same table, the same
    trial keys and outcomes — with a fake probe and with real training (TrainingProbe)."""
    import ray  # the dev extra installs Ray: this path is tested in CI, never skipped

    from sepbench.sweep import TrainingProbe

    real = _tiny_training_spec("real")
    local = run_study(
        make_spec(), tmp_path / "a", executor="local", workers=2, probe=PROBE, progress=False
    )
    local_real = run_study(
        real, tmp_path / "a", executor="local", workers=2, probe=TrainingProbe(), progress=False
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_study(make_spec(), tmp_path / "b", executor="ray", probe=PROBE, progress=False)
        on_ray_real = run_study(
            real, tmp_path / "b", executor="ray", probe=TrainingProbe(), progress=False
        )
    finally:
        ray.shutdown()
    assert rows(on_ray) == rows(local)
    assert keys(tmp_path / "a" / "unit.sqlite") == keys(tmp_path / "b" / "unit.sqlite")
    assert rows(on_ray_real) == rows(local_real) and on_ray_real.trials == local_real.trials
    assert outcomes(tmp_path / "a" / "real.sqlite") == outcomes(tmp_path / "b" / "real.sqlite")


def outcomes(path: Path) -> list[tuple]:
    with Store.open(path) as store:
        return sorted((r.key, r.reached, r.accuracy, r.steps) for r in store.records())


def test_trials_of_unknown_searches_are_not_silently_mixed(tmp_path: Path) -> None:
    spec = make_spec()
    run_study(spec, tmp_path, executor="inline", probe=PROBE, progress=False)
    path = tmp_path / "unit.sqlite"
    import sqlite3

    conn = sqlite3.connect(path)  # as if the task's resolved defaults had changed
    conn.execute("UPDATE trials SET search_key = 'x' || search_key WHERE length = 8")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="stored searches do not match"):
        run_study(spec, tmp_path, executor="inline", probe=PROBE, progress=False)
    from sepbench.sweep import summarize

    with Store.open(path) as store:
        summary = summarize(store)
    assert summary.extra["orphan_trials"] > 0 and not summary.complete


def test_points_for_growth_fits(tmp_path: Path) -> None:
    spec = make_spec(lengths=[4, 8, 16], seeds=3, models=[{"family": "lstm"}])
    table = {(4, 0): 5, (4, 1): 6, (4, 2): 7, (8, 0): 9, (8, 1): 1000, (8, 2): 11}
    probe = PerSeedProbe({**table, (16, 0): 20, (16, 1): 21, (16, 2): 22})
    summary = run_study(spec, tmp_path, executor="inline", probe=probe, progress=False)
    lengths, widths = summary.points("index_lookup", "lstm")
    assert lengths[:5] == [4, 4, 4, 8, 8] and widths[:5] == [5.0, 6.0, 7.0, 9.0, 11.0]
    assert summary.points("index_lookup", "lstm", censored="cap")[1][4] == 64.0
    from sepbench import theory

    fit = theory.fit_growth(*summary.points("index_lookup", "lstm"), n_boot=50)
    assert fit.best
