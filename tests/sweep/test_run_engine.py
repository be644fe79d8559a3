"""What the main job needs from the sweep engine: geometric width grids, a search that starts at
the previous length's answer, seeds trained together as ensembles (one job, one transaction),
and spec hashes that stay put for studies that use none of it. Fake probes only."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from sepbench.sweep import (
    Done,
    FakeProbe,
    Grid,
    Observation,
    Probe,
    ProbeOutcome,
    Store,
    TrialSpec,
    find_min_width,
    next_probe,
    plan_study,
    run_study,
)
from sepbench.sweep.executors import call_job
from sepbench.sweep.summary import StudySummary
from tests.sweep.common import make_spec

COEF = {"lstm": 2.0, "tf": 1.0}


def rows(summary: StudySummary) -> list[tuple[object, ...]]:
    return [(r.task, r.model, r.length, r.median_text(), r.range_text()) for r in summary.rows]


# ---------------------------------------------------------------------- geometric grid
def test_geometric_grid_widths_and_indices() -> None:
    grid = Grid(1, 128, 1, 2)
    assert grid.widths() == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128]
    assert [grid.index(w) for w in grid.widths()] == list(range(1, 15))
    assert grid.double(grid.index(3)) == grid.index(6)
    assert grid.double(grid.index(91)) == grid.k_max
    assert grid.snap(50) == grid.index(45) and grid.snap(0) == 1 and grid.snap(999) == grid.k_max
    with pytest.raises(ValueError, match="not on the search grid"):
        grid.index(5)
    # resolution and an odd maximum: multiples only, the maximum itself is always on the grid
    grid = Grid(3, 100, 2, 2)
    assert grid.widths() == [4, 6, 8, 12, 16, 22, 32, 46, 64, 90, 100]
    assert all(w % 2 == 0 for w in grid.widths())


@pytest.mark.parametrize("per_octave", [1, 2, 4, 8])
@pytest.mark.parametrize("t", [1, 2, 5, 13, 37, 100, 128, 129])
def test_geometric_search_finds_the_first_grid_width_at_or_above_the_threshold(
    per_octave: int, t: int
) -> None:
    grid = Grid(1, 128, 1, per_octave)
    done, history = find_min_width(lambda w, a: w >= t, grid)
    expected = next((w for w in grid.widths() if w >= t), None)
    assert done.width == expected and done.censored == (expected is None)
    # doubling to the octave, then ~log2(per_octave) bisection probes, at most one witness
    octaves = math.ceil(math.log2(max(t, 1))) if expected is not None else 7
    assert len(history) <= octaves + 2 + math.ceil(math.log2(per_octave)) + 1


def test_linear_grid_unchanged_by_the_geometric_option() -> None:
    assert Grid(10, 200, 4).widths() == list(range(12, 201, 4))
    assert Grid(10, 200, 4).double(3) == 6


# ---------------------------------------------------------------------- start hint
def test_start_hint_moves_only_the_first_probe() -> None:
    grid = Grid(1, 128, 1, 2)
    first = next_probe([], grid, start=20)  # snapped down onto the grid
    assert isinstance(first, Probe) and (first.width, first.reason) == (16, "start")
    history = [Observation(16, 0, False)]
    assert next_probe(history, grid, start=20) == next_probe(history, grid)
    history += [Observation(32, 0, True), Observation(23, 0, True)]
    done = next_probe(history, grid)
    assert isinstance(done, Done) and done.width == 23


# ---------------------------------------------------------------------- spec identity
def test_default_new_keys_keep_old_spec_hashes() -> None:
    spec = make_spec()
    old_identity = spec.model_dump(mode="json", exclude={"executor", "description"})
    for key in ("trainer", "kind", "restarts", "rule"):
        old_identity.pop(key)
    for key in ("per_octave", "start"):
        old_identity["width"].pop(key)
    old_identity["budget"].pop("mixture")
    assert spec.identity() == old_identity
    changed = make_spec(trainer="ensemble", width={"min": 1, "max": 64, "per_octave": 2})
    assert changed.spec_hash() != spec.spec_hash()
    assert changed.identity()["trainer"] == "ensemble"
    assert changed.identity()["width"]["per_octave"] == 2
    # a trial's key only changes for the ensemble trainer
    single = plan_study(spec)[0].trial(4)
    assert "trainer" not in single.config()
    assert plan_study(changed)[0].trial(4).config()["trainer"] == "ensemble"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"trainer": "batched"}, "trainer"),
        ({"width": {"max": 64, "per_octave": -1}}, "width.per_octave"),
        ({"width": {"max": 64, "start": "last"}}, "width.start"),
    ],
)
def test_bad_new_keys_are_named(patch: dict[str, object], message: str) -> None:
    from sepbench.errors import UserError
    from sepbench.sweep import StudySpec
    from tests.sweep.common import spec_dict

    with pytest.raises(UserError, match=message):
        StudySpec.from_dict(spec_dict(**patch))


# ---------------------------------------------------------------------- ensembles
@dataclass(frozen=True)
class BatchFake(FakeProbe):
    """A FakeProbe that can also run trials together, logging each job's size."""

    jobs: str | None = None

    def batch(self, trials: list[TrialSpec]) -> list[ProbeOutcome]:
        assert len({t.batch_key() for t in trials}) == 1
        if self.jobs is not None:
            fd = os.open(self.jobs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                line = f"{len(trials)} {trials[0].search.length} {trials[0].width}\n"
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return [self(t) for t in trials]


def job_sizes(path: Path) -> list[int]:
    return [int(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_ensemble_trainer_batches_seeds_and_finds_the_same_widths(
    tmp_path: Path, executor: str
) -> None:
    plain = make_spec(seeds=3)
    ensemble = make_spec(seeds=3, trainer="ensemble")
    ref = run_study(plain, tmp_path / "a", executor="inline", probe=FakeProbe(coef=COEF))
    log = tmp_path / "jobs.log"
    got = run_study(
        ensemble,
        tmp_path / "b",
        executor=executor,
        workers=2,
        probe=BatchFake(coef=COEF, jobs=str(log)),
        progress=False,
    )
    assert rows(got) == rows(ref) and got.trials == ref.trials
    # every seed of a cell sees the same (deterministic) outcomes: all jobs hold all 3 seeds
    assert job_sizes(log) and set(job_sizes(log)) == {3}
    with Store.open(tmp_path / "b" / "unit.sqlite") as store:
        assert all(r.config["trainer"] == "ensemble" for r in store.records())


def test_max_members_splits_a_cell(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Capped(BatchFake):
        max_members: int = 2

    log = tmp_path / "jobs.log"
    spec = make_spec(seeds=3, trainer="ensemble", lengths=[4])
    run_study(spec, tmp_path, executor="inline", probe=Capped(coef=COEF, jobs=str(log)))
    assert set(job_sizes(log)) == {2}  # 3 seeds -> a job of 2 and a single trial


def test_seeds_that_disagree_split_into_jobs_per_width(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class PerSeed(BatchFake):
        def truth(self, trial: TrialSpec) -> bool:
            return trial.width >= (3 if trial.search.replicate == 0 else 12)

    log = tmp_path / "jobs.log"
    spec = make_spec(seeds=2, trainer="ensemble", lengths=[4], models=[{"family": "lstm"}])
    summary = run_study(spec, tmp_path, executor="inline", probe=PerSeed(jobs=str(log)))
    assert [s.width for s in summary.searches] == [3, 12]
    # together while they agree (1, 2, 4 fail for both), alone once their widths differ
    assert job_sizes(log) == [2, 2, 2] and summary.trials > 6


def test_a_failing_batch_fails_every_member_with_one_message() -> None:
    @dataclass(frozen=True)
    class Broken(FakeProbe):
        def batch(self, trials: list[TrialSpec]) -> list[ProbeOutcome]:
            raise ValueError("boom")

    plan = plan_study(make_spec(trainer="ensemble"))
    job = (plan[0].trial(4), plan[1].trial(4))
    results = call_job(Broken(), job)
    assert len(results) == 2 and all(getattr(r, "message", "") == "boom" for r in results)


# ---------------------------------------------------------------------- start = previous
def test_previous_start_finds_the_same_widths_with_fewer_probes(tmp_path: Path) -> None:
    width = {"min": 1, "max": 512, "per_octave": 4}
    lengths = [8, 16, 32, 64]
    base = make_spec(lengths=lengths, width=width)
    hinted = make_spec(lengths=lengths, width={**width, "start": "previous"})
    probe = FakeProbe(law="linear", coef=COEF)
    ref = run_study(base, tmp_path / "a", executor="inline", probe=probe, progress=False)
    got = run_study(hinted, tmp_path / "b", executor="local", workers=2, probe=probe)
    assert rows(got) == rows(ref)
    assert got.trials < ref.trials
    # every search above the shortest length started at the previous length's answer
    with Store.open(tmp_path / "b" / "unit.sqlite") as store:
        records = store.records()
    widths = {(r.model, r.length): r for r in ref.rows}
    for s in got.searches:
        if s.length == lengths[0]:
            continue
        first = min((r for r in records if r.search_key == s.search_key), key=lambda r: r.seq)
        previous = widths[(s.model, lengths[lengths.index(s.length) - 1])]
        assert first.width == previous.high


def test_previous_start_resumes_after_an_interruption(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Stopper(FakeProbe):
        limit: int = 0

        def __call__(self, trial: TrialSpec) -> ProbeOutcome:
            if trial.search.length >= self.limit:
                raise KeyboardInterrupt
            return super().__call__(trial)

    width = {"min": 1, "max": 512, "per_octave": 2, "start": "previous"}
    spec = make_spec(lengths=[4, 8, 16], width=width)
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, tmp_path, executor="inline", probe=Stopper(coef=COEF, limit=16))
    resumed = run_study(spec, tmp_path, executor="inline", probe=FakeProbe(coef=COEF))
    ref = run_study(spec, tmp_path / "ref", executor="inline", probe=FakeProbe(coef=COEF))
    assert rows(resumed) == rows(ref) and resumed.trials == ref.trials
