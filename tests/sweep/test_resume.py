"""Kill -9 at any moment, resume, lose nothing, run nothing twice; concurrent studies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sepbench.errors import UserError
from sepbench.sweep import FakeProbe, Store, StudySpec, run_study
from tests.sweep.common import make_spec

ROOT = Path(__file__).parents[2]
COEF = {"lstm": 2.0, "tf": 1.0}


def study(name: str = "killme") -> StudySpec:
    return make_spec(name=name, lengths=[4, 8, 16], seeds=2)


def launch(spec: StudySpec, out: Path, log: Path, delay: float) -> subprocess.Popen[bytes]:
    """The study in a child process (its own process group), local pool of 2 workers."""
    toml = out / f"{spec.name}.toml"
    toml.write_text(spec.to_toml())
    script = textwrap.dedent(
        f"""
        from sepbench.sweep import FakeProbe, load_spec, run_study
        probe = FakeProbe(law="linear", coef={COEF!r}, delay={delay}, log={str(log)!r})
        run_study(load_spec({str(toml)!r}), {str(out)!r}, executor="local", workers=2,
                  probe=probe, progress=False)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)


def stored(path: Path) -> int:
    """Committed trials, read with plain sqlite3 (0 while the file does not exist yet)."""
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_for(pred, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def started_keys(log: Path, offset: int = 0) -> list[str]:
    lines = log.read_text().splitlines()[offset:] if log.exists() else []
    return [line.split()[1] for line in lines if line.startswith("start ")]


def log_len(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool workers
    proc.wait()
    time.sleep(0.3)  # let the killed workers vanish before reading their log


@pytest.mark.slow
def test_kill_9_mid_study_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    spec = study()
    reference = run_study(
        spec,
        tmp_path / "ref",
        executor="inline",
        probe=FakeProbe(law="linear", coef=COEF),
        progress=False,
    )
    ref_keys = {r.key for r in Store.open(tmp_path / "ref" / "killme.sqlite").records()}
    total = len(ref_keys)

    out, log = tmp_path / "run", tmp_path / "probes.log"
    out.mkdir()
    path = out / "killme.sqlite"
    before: set[str] = set()
    for kill_at in (total // 4, (2 * total) // 3, None):  # kill, resume and kill, finish
        offset = log_len(log)
        proc = launch(spec, out, log, delay=0.03 if kill_at else 0.0)
        if kill_at is None:
            assert proc.wait(timeout=120) == 0
        else:
            try:
                wait_for(lambda n=kill_at: stored(path) >= n)
            finally:
                kill_group(proc)
        # nothing stored before this run was started again by it
        assert not set(started_keys(log, offset)) & before
        with Store.open(path) as store:
            after = {r.key for r in store.records()}
        assert before < after <= ref_keys  # progress, and only trials the reference runs
        if kill_at is not None:
            assert kill_at <= len(after) < total  # killed mid-way
        before = after

    with Store.open(path) as store:
        records = store.records()
        final = run_study(  # a no-op resume: gives the summary, runs nothing
            spec, out, executor="inline", probe=FakeProbe(law="linear", coef=COEF), progress=False
        )
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys)) == total  # none lost, none duplicated
    assert set(keys) == ref_keys
    assert final.new_trials == 0
    assert final.table() == reference.table()
    # each trial was started at most once more than it was committed (only in-flight ones
    # are cut short by a kill), and every committed trial finished exactly once
    starts = started_keys(log)
    assert set(starts) == ref_keys
    ends = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("end ")]
    assert sorted(set(ends)) == sorted(ref_keys)


@pytest.mark.slow
def test_two_studies_at_once_and_a_second_writer_refused(tmp_path: Path) -> None:
    a, b = study("alpha"), study("beta")
    out = tmp_path / "out"
    out.mkdir()
    procs = [launch(s, out, tmp_path / f"{s.name}.log", delay=0.02) for s in (a, b)]
    try:
        wait_for(lambda: stored(out / "alpha.sqlite") >= 1)
        # the same file from a second process: refused, one line naming the holder
        with pytest.raises(UserError, match=r"in use by another sepbench process \(pid \d+\)"):
            run_study(a, out, executor="inline", probe=FakeProbe(), progress=False)
        # reading while it runs is fine and shows an incomplete study
        with Store.open(out / "alpha.sqlite") as store:
            assert store.count() >= 1
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    ref = run_study(
        study("alpha"),
        tmp_path / "ref",
        executor="inline",
        probe=FakeProbe(law="linear", coef=COEF),
        progress=False,
    )
    for name in ("alpha", "beta"):
        with Store.open(out / f"{name}.sqlite") as store:
            assert store.study == name
            keys = [r.key for r in store.records()]
            assert len(keys) == len(set(keys)) == ref.trials
        done = run_study(
            study(name), out, executor="inline", probe=FakeProbe(law="linear"), progress=False
        )
        assert done.new_trials == 0 and done.table() == ref.table()
