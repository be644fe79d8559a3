"""The results store: round trip, identity checks, one writer per file, export."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sepbench.errors import UserError
from sepbench.sweep import (
    FakeProbe,
    ProbeOutcome,
    Store,
    plan_study,
    run_study,
    to_dataframe,
    write_csv,
)
from sepbench.sweep.store import SCHEMA_VERSION
from tests.sweep.common import make_spec


def test_round_trip(tmp_path: Path) -> None:
    spec = make_spec()
    plan = plan_study(spec)[3]
    trials = [plan.trial(8), plan.trial(4), plan.trial(4, attempt=1)]
    outcomes = [
        ProbeOutcome(True, 0.97, 120, 1.5, {"history": [{"step": 50, "acc": 0.5}]}),
        ProbeOutcome(False, None, None, 0.25),
        ProbeOutcome(True, 1.0, 7, 0.5, {"note": "ok"}),
    ]
    path = tmp_path / "s.sqlite"
    with Store.for_study(path, spec) as store:
        for t, o in zip(trials, outcomes, strict=True):
            store.record(t, o)
    with Store.open(path) as store:
        assert store.spec() == spec
        assert store.study == "unit" and store.spec_hash == spec.spec_hash()
        records = store.records()
        assert [r.key for r in records] == [t.key for t in trials]
        assert [ProbeOutcome.from_dict(r.outcome) for r in records] == outcomes
        assert [r.config for r in records] == [t.config() for t in trials]
        assert records[2].attempt == 1 and records[2].seed == plan.seed(1) != plan.seed(0)
        assert (records[0].task, records[0].model, records[0].width) == ("index_lookup", "lstm", 8)
        assert store.observations() == {plan.search_key: [r.observation() for r in records]}
    # reopening for the same spec keeps everything; the same trial cannot be stored twice
    with Store.for_study(path, spec) as store:
        assert store.count() == 3
        with pytest.raises(sqlite3.IntegrityError):
            store.record(trials[0], outcomes[0])
        assert store.count() == 3


def test_wal_mode_and_schema_meta(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.for_study(path, make_spec()).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["study"] == "unit"
    conn.close()


def one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("hello, I am a text file\n" * 10)
    for opener in (lambda: Store.open(path), lambda: Store.for_study(path, make_spec())):
        with pytest.raises(UserError) as info:
            opener()
        assert "not a sepbench results store (not an SQLite database)" in one_line(info)


def test_foreign_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    for opener in (lambda: Store.open(path), lambda: Store.for_study(path, make_spec())):
        with pytest.raises(UserError) as info:
            opener()
        assert "an SQLite database but not a sepbench results store" in one_line(info)


def test_other_schema_version_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.for_study(path, make_spec()).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(UserError) as info:
        Store.open(path)
    assert f"schema version 99; this sepbench (0.1.0) reads version {SCHEMA_VERSION}" in one_line(
        info
    )


def test_other_study_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.for_study(path, make_spec()).close()
    with pytest.raises(UserError) as info:
        Store.for_study(path, make_spec(seed=99))
    assert "holds a different version of study 'unit'" in one_line(info)
    with pytest.raises(UserError) as info:
        Store.for_study(path, make_spec(name="other"))
    assert "holds study 'unit'" in one_line(info)
    # the executor is not part of the identity: resuming elsewhere is fine
    Store.for_study(path, make_spec(executor={"kind": "ray"})).close()


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run_study(make_spec(), store=path, executor="inline", probe=FakeProbe(), progress=False)
    data = bytearray(path.read_bytes())
    assert len(data) > 4096 * 2
    data[4096 : len(data)] = b"\xa5" * (len(data) - 4096)  # every page after the first
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with pytest.raises(UserError) as info:
        Store.open(path)
    assert "corrupt" in one_line(info)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Store.open(tmp_path / "nope.sqlite")
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(UserError, match="empty"):
        Store.open(empty)
    Store.for_study(empty, make_spec()).close()  # an empty file becomes a new store
    assert Store.open(empty).count() == 0
    with pytest.raises(UserError, match="no such directory"):
        Store.for_study(tmp_path / "no" / "dir.sqlite", make_spec())


def test_second_writer_is_refused_readers_are_not(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spec = make_spec()
    with Store.for_study(path, spec) as writer:
        with pytest.raises(UserError) as info:
            Store.for_study(path, spec)
        assert "is in use by another sepbench process" in one_line(info)
        writer.record(plan_study(spec)[0].trial(1), ProbeOutcome(False))
        with Store.open(path) as reader:
            assert reader.count() == 1
    Store.for_study(path, spec).close()  # released on close


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(
        f"""
        import sys, time
        from sepbench.sweep import Store
        from tests.sweep.common import make_spec
        store = Store.for_study({str(path)!r}, make_spec())
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(
            UserError, match=rf"in use by another sepbench process \(pid {proc.pid}\)"
        ):
            Store.for_study(path, make_spec())
    finally:
        proc.kill()
        proc.wait()
    Store.for_study(path, make_spec()).close()


def test_csv_and_dataframe_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.sqlite"
    summary = run_study(
        make_spec(), store=path, executor="inline", probe=FakeProbe(), progress=False
    )
    with Store.open(path) as store:
        out = tmp_path / "trials.csv"
        assert write_csv(store, out) == summary.trials
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == summary.trials
        assert {r["reached"] for r in rows} == {"True", "False"}
        frame = to_dataframe(store)
        assert len(frame) == summary.trials
        assert list(frame.columns[:5]) == ["task", "model", "length", "replicate", "width"]
        widths = to_dataframe(store, "widths")
        assert list(widths["median"]) == [r.median for r in summary.rows]
        assert len(to_dataframe(store, "searches")) == len(summary.searches)
        write_csv(store, None, "widths")
        printed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [float(r["median"]) for r in printed] == [r.median for r in summary.rows]
        with pytest.raises(UserError, match="unknown table"):
            write_csv(store, None, "everything")
