"""The results store: one SQLite file per study, every finished trial one committed row.

Layout (schema version :data:`SCHEMA_VERSION`)::

    meta(key PRIMARY KEY, value)   app, schema_version, study, spec_hash, spec (JSON), created
    trials(seq, key UNIQUE, search_key, task, model, length, replicate, width, attempt, seed,
           reached, accuracy, steps, wall_s, finished_at, config JSON, outcome JSON)

* **Durability.** WAL journal, ``synchronous=FULL``; :meth:`Store.record` commits one trial in
  its own transaction and returns only after the commit, and the driver asks the search for its
  next probe only after that. A study killed at any moment (``kill -9`` included) loses at most
  the trials that were still running, and resuming never reruns a stored one: a trial's row is
  keyed by the sha256 of its full configuration (``key UNIQUE``).
* **Identity.** The ``meta`` table names the study and the hash of its spec; opening a file
  that is not SQLite, not a sepbench store, of another schema version, or of another study is a
  :class:`~sepbench.errors.UserError` saying which.
* **One writer.** A writer holds an exclusive ``flock`` on ``<store>.lock`` for as long as it is
  open (the kernel drops it when the process dies, even on ``kill -9``); a second writer on the
  same file is refused with a UserError naming the holder's pid. Readers (``results show``,
  export) never take the lock and may read while a study runs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sepbench import __version__
from sepbench.errors import UserError
from sepbench.sweep.search import Observation
from sepbench.sweep.spec import StudySpec
from sepbench.sweep.trial import ProbeOutcome, TrialSpec, canonical_json

try:  # POSIX; elsewhere the single-writer rule is not enforced
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

APP = "sepbench.sweep.store"
SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    search_key TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    length INTEGER NOT NULL,
    replicate INTEGER NOT NULL,
    width INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    reached INTEGER NOT NULL,
    accuracy REAL,
    steps INTEGER,
    wall_s REAL NOT NULL,
    finished_at TEXT NOT NULL,
    config TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX trials_by_search ON trials (search_key);
"""

TRIAL_COLUMNS = (
    "task",
    "model",
    "length",
    "replicate",
    "width",
    "attempt",
    "seed",
    "reached",
    "accuracy",
    "steps",
    "wall_s",
    "finished_at",
    "key",
    "search_key",
)
"""The columns of the flat trial table (CSV export, DataFrame)."""


class StoredSpec(Protocol):
    """What a store needs of a study spec of any kind (a width study's
    :class:`~sepbench.sweep.spec.StudySpec`, a grid kind's spec of :mod:`sepbench.studies`):
    its name, the hash of its identity and its full data (``model_dump``)."""

    name: str

    def spec_hash(self) -> str: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial."""

    seq: int
    key: str
    search_key: str
    task: str
    model: str
    length: int
    replicate: int
    width: int
    attempt: int
    seed: int
    reached: bool
    accuracy: float | None
    steps: int | None
    wall_s: float
    finished_at: str
    config: dict[str, Any]
    outcome: dict[str, Any]

    def observation(self) -> Observation:
        return Observation(self.width, self.attempt, self.reached)

    def flat(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in TRIAL_COLUMNS}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _check_magic(path: Path) -> bool:
    """True if ``path`` is an SQLite file, False if empty; UserError for anything else."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except IsADirectoryError:
        raise UserError(f"results store {str(path)!r} is a directory") from None
    except OSError as exc:
        raise UserError(f"cannot read results store {str(path)!r}: {exc.strerror}") from None
    if not head:
        return False
    if head != SQLITE_MAGIC:
        raise UserError(f"{path} is not a sepbench results store (not an SQLite database)")
    return True


class Store:
    """An open results store. Use :meth:`for_study` to write, :meth:`open` to read."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock_fd: int | None) -> None:
        self._conn = conn
        self.path = path
        self._lock_fd = lock_fd
        self.meta: dict[str, str] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def for_study(cls, path: str | os.PathLike[str], spec: StoredSpec) -> Store:
        """Open (creating if needed) the store of ``spec`` for writing; one writer per file."""
        p = Path(path)
        if not p.parent.is_dir():
            raise UserError(f"cannot create results store {str(p)!r}: no such directory")
        lock_fd = _lock(p)
        try:
            exists = p.exists() and _check_magic(p)
            conn = _connect(p, writable=True)
            store = cls(conn, p, lock_fd)
            try:
                if exists and store._tables():
                    store._load_meta()
                    store._check_identity(spec)
                else:
                    store._initialise(spec)
                    store._load_meta()
            except BaseException:
                conn.close()
                raise
        except BaseException:
            _unlock(lock_fd)
            raise
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open an existing store for reading (no lock; a running study may keep writing)."""
        p = Path(path)
        if not p.exists():
            raise UserError(f"results store {str(p)!r} does not exist")
        if not _check_magic(p):
            raise UserError(f"{p} is empty, not a sepbench results store")
        store = cls(_connect(p, writable=False), p, None)
        try:
            if not store._tables():
                raise UserError(f"{p} is an empty SQLite database, not a sepbench results store")
            store._load_meta()
        except BaseException:
            store.close()
            raise
        return store

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"results store {self.path} is unreadable or corrupt: {exc}") from None

    def _tables(self) -> set[str]:
        rows = self._sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}

    def _initialise(self, spec: StoredSpec) -> None:
        meta = {
            "app": APP,
            "schema_version": str(SCHEMA_VERSION),
            "study": spec.name,
            "spec_hash": spec.spec_hash(),
            "spec": canonical_json(spec.model_dump(mode="json")),
            "created": _now(),
            "sepbench_version": __version__,
        }
        try:
            with self._transaction() as cur:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                cur.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        except sqlite3.DatabaseError as exc:
            raise UserError(f"cannot create results store {self.path}: {exc}") from None

    def _load_meta(self) -> None:
        if "meta" not in self._tables():
            raise UserError(f"{self.path} is an SQLite database but not a sepbench results store")
        self.meta = dict(self._sql("SELECT key, value FROM meta"))
        if self.meta.get("app") != APP:
            raise UserError(f"{self.path} is an SQLite database but not a sepbench results store")
        version = self.meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise UserError(
                f"{self.path} has store schema version {version}; this sepbench "
                f"({__version__}) reads version {SCHEMA_VERSION}"
            )
        missing = {"trials"} - self._tables()
        if missing or not {"study", "spec_hash", "spec"} <= set(self.meta):
            raise UserError(f"results store {self.path} is incomplete or corrupt")
        check = self._sql("PRAGMA quick_check")
        if not check or check[0][0] != "ok":
            raise UserError(f"results store {self.path} is corrupt: {check[0][0] if check else ''}")

    def _check_identity(self, spec: StoredSpec) -> None:
        if self.meta["spec_hash"] != spec.spec_hash():
            same = self.meta["study"] == spec.name
            raise UserError(
                f"{self.path} holds "
                + ("a different version of study" if same else "study")
                + f" '{self.meta['study']}' (spec {self.meta['spec_hash'][:12]}), not this spec "
                f"(spec {spec.spec_hash()[:12]}); write to another --out directory, or run the "
                "stored spec (sepbench results show prints it)"
            )

    # ------------------------------------------------------------------ reading
    @property
    def study(self) -> str:
        return self.meta["study"]

    @property
    def spec_hash(self) -> str:
        return self.meta["spec_hash"]

    @property
    def kind(self) -> str:
        """The study kind of the stored spec (``width``: a width search)."""
        kind = self.spec_data().get("kind", "width")
        return kind if isinstance(kind, str) else "width"

    def spec_data(self) -> dict[str, Any]:
        """The stored spec as plain data (any study kind)."""
        data = json.loads(self.meta["spec"])
        if not isinstance(data, dict):
            raise UserError(f"results store {self.path} is incomplete or corrupt (its spec)")
        return data

    def spec(self) -> StudySpec:
        """The width-search spec this store was created for (a store of another study kind:
        UserError; read it with ``sepbench.studies.stored_spec``)."""
        if self.kind != "width":
            raise UserError(
                f"{self.path} holds a '{self.kind}' study, not a width search; its report is "
                "written by sepbench report / sepbench run --study"
            )
        return StudySpec.from_dict(self.spec_data(), source=f"{self.path} (spec)")

    def count(self) -> int:
        return int(self._sql("SELECT COUNT(*) FROM trials")[0][0])

    def keys(self) -> set[str]:
        return {r[0] for r in self._sql("SELECT key FROM trials")}

    def records(self) -> list[TrialRecord]:
        """Every stored trial, in the order they were written."""
        rows = self._sql(
            "SELECT seq, key, search_key, task, model, length, replicate, width, attempt, seed,"
            " reached, accuracy, steps, wall_s, finished_at, config, outcome"
            " FROM trials ORDER BY seq"
        )
        return [
            TrialRecord(
                seq=r[0],
                key=r[1],
                search_key=r[2],
                task=r[3],
                model=r[4],
                length=r[5],
                replicate=r[6],
                width=r[7],
                attempt=r[8],
                seed=r[9],
                reached=bool(r[10]),
                accuracy=r[11],
                steps=r[12],
                wall_s=r[13],
                finished_at=r[14],
                config=json.loads(r[15]),
                outcome=json.loads(r[16]),
            )
            for r in rows
        ]

    def observations(self) -> dict[str, list[Observation]]:
        """The search's view of the stored trials, grouped by search key."""
        out: dict[str, list[Observation]] = defaultdict(list)
        rows = self._sql("SELECT search_key, width, attempt, reached FROM trials ORDER BY seq")
        for search_key, width, attempt, reached in rows:
            out[search_key].append(Observation(width, attempt, bool(reached)))
        return dict(out)

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def record(self, trial: TrialSpec, outcome: ProbeOutcome) -> None:
        """Write one finished trial and commit (returns after the commit is durable)."""
        self.record_many([(trial, outcome)])

    def record_many(self, finished: list[tuple[TrialSpec, ProbeOutcome]]) -> None:
        """Write finished trials in one transaction (all or none; e.g. one ensemble's)."""
        if self._lock_fd is None:
            raise RuntimeError("store opened read-only")
        rows = [self._row(trial, outcome) for trial, outcome in finished]
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO trials (key, search_key, task, model, length, replicate, width,"
                " attempt, seed, reached, accuracy, steps, wall_s, finished_at, config, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    @staticmethod
    def _row(trial: TrialSpec, outcome: ProbeOutcome) -> tuple[Any, ...]:
        return (
            trial.key,
            trial.search_key,
            trial.search.task_label or trial.search.task,
            trial.search.model_label or trial.search.family,
            trial.search.length,
            trial.search.replicate,
            trial.width,
            trial.attempt,
            trial.seed,
            int(outcome.reached),
            outcome.accuracy,
            outcome.steps,
            float(outcome.wall_s),
            _now(),
            canonical_json(trial.config()),
            json.dumps(outcome.to_dict(), sort_keys=True, default=_json_default),
        )

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _connect(path: Path, writable: bool) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + ("?mode=rwc" if writable else "?mode=rw")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        if writable:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"cannot switch to WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise UserError(f"results store {path} is unreadable or corrupt: {exc}") from None
    return conn


def _lock(path: Path) -> int | None:
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot lock results store {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(
            f"results store {path} is in use by another sepbench process (pid {holder}); "
            "wait for it to finish or write to another --out directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)
