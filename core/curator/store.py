"""The checkpoint store: an SQLite journal of every outcome, for resume and status.

One store holds one pipeline, identified by its fingerprint; opening it for
another pipeline is an error, never a silent reuse. The parent process is the
only writer: the run loop appends each outcome to a buffer (a plain
list append) and a writer thread commits the buffer every
:data:`COMMIT_SECONDS` as one batch of columns, in WAL mode. If the parent dies,
at most the outcomes of the last interval are missing, and those items simply
run again on resume: an item is never reported done unless its outcome was
committed.
"""

from __future__ import annotations

import array
import operator
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator._version import __version__
from curator.errors import UsageError
from curator.outcome import ErrorInfo, Outcome, Status

SCHEMA_VERSION = 1
COMMIT_SECONDS = 0.1
"""How often the writer thread commits what has arrived."""
DEFAULT_DIR = ".curator"
DEFAULT_FILE = "checkpoint.sqlite"
DONE = frozenset({Status.OK.value, Status.SKIPPED.value})

Record = tuple[Any, ...]
# (index, status value, outputs, error tuple | None, worker, started, finished, attempt)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, backend TEXT, jobs INTEGER,
    requested INTEGER, ok INTEGER, failed INTEGER, skipped INTEGER, cancelled INTEGER,
    interrupted INTEGER
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL, records BLOB NOT NULL
);
"""


def resolve_path(checkpoint: str | os.PathLike[str] | bool | None) -> Path | None:
    """Where the store lives.

    ``True`` means ``.curator/checkpoint.sqlite``; a folder (or a name without a
    suffix) gets that file name; ``None`` or ``False`` means no checkpoint.
    """
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True:
        return Path(DEFAULT_DIR) / DEFAULT_FILE
    path = Path(checkpoint)
    if path.is_dir() or (not path.suffix and not path.exists()):
        return path / DEFAULT_FILE
    return path


@dataclass(frozen=True)
class StoredOutcome:
    """The latest outcome the store holds for one index."""

    index: int
    status: str
    outputs: list[str] | None
    error: ErrorInfo | None
    worker: str
    started: float
    finished: float
    attempt: int

    @property
    def done(self) -> bool:
        """Whether resume skips this index."""
        return self.status in DONE

    def as_skipped(self) -> Outcome:
        """The ``skipped`` outcome a resumed run reports for this index (outputs kept)."""
        return Outcome(
            self.index, Status.SKIPPED, self.outputs, None, self.worker, self.started,
            self.finished, self.attempt,
        )  # fmt: skip


class CheckpointStore:
    """An open checkpoint of one pipeline.

    Parameters
    ----------
    path
        The SQLite file (created with its folder if needed).
    fingerprint
        The pipeline's fingerprint; must match the stored one.
    pipeline, total
        Description and length of the pipeline, kept for ``curator status``.
    """

    def __init__(self, path: Path, fingerprint: str, pipeline: str, total: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if not meta:
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", str(SCHEMA_VERSION)),
                        ("fingerprint", fingerprint),
                        ("pipeline", pipeline),
                        ("total", str(total)),
                        ("created", str(time.time())),
                        ("curator", __version__),
                    ],
                )
        if meta and meta.get("fingerprint") != fingerprint:
            self._db.close()
            raise UsageError(
                f"the checkpoint {path} belongs to another pipeline ({meta.get('pipeline')}, "
                f"fingerprint {meta.get('fingerprint', '?')[:12]}); this one is {pipeline} "
                f"({fingerprint[:12]}). Use another --checkpoint, or delete {path} "
                "to start over"
            )
        self._buffer: list[Outcome] = []
        self._run_id: int | None = None
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    # -- writing ------------------------------------------------------------------

    def start_run(self, backend: str, jobs: int, requested: int) -> None:
        """Open a run record and start the writer thread."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (started, backend, jobs, requested) VALUES (?, ?, ?, ?)",
                (time.time(), backend, jobs, requested),
            )
            self._run_id = cursor.lastrowid
        self._writer = threading.Thread(target=self._write_periodically, daemon=True)
        self._writer.start()

    @property
    def record(self) -> Callable[[Outcome], None]:
        """Queue an outcome for the next commit: ``list.append``, the cheapest call there is.

        The run loop holds on to this bound method; the writer thread takes
        records off the front of the same list, so it is never replaced.
        """
        return self._buffer.append

    def _write_periodically(self) -> None:
        while not self._stop.wait(COMMIT_SECONDS):
            try:
                self.commit()
            except BaseException as exc:  # keep the first failure for finish_run to raise
                self.error = exc
                return

    def commit(self) -> None:
        """Write what is buffered as one batch (the writer thread calls this on a timer)."""
        with self._lock:
            count = len(self._buffer)
            if not count:
                return
            batch = self._buffer[:count]
            # Appends from the run loop may land meanwhile; only the copied ones go.
            del self._buffer[:count]
            data = pickle.dumps(_columns(batch), protocol=pickle.HIGHEST_PROTOCOL)
            with self._db:
                self._db.execute(
                    "INSERT INTO journal (run, records) VALUES (?, ?)", (self._run_id, data)
                )

    def finish_run(self, counts: dict[str, int], interrupted: bool) -> None:
        """Stop the writer, commit the rest, and close the run record."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        self.commit()
        with self._lock, self._db:
            self._db.execute(
                "UPDATE runs SET finished = ?, ok = ?, failed = ?, skipped = ?, cancelled = ?, "
                "interrupted = ? WHERE id = ?",
                (
                    time.time(),
                    counts.get("ok", 0),
                    counts.get("failed", 0),
                    counts.get("skipped", 0),
                    counts.get("cancelled", 0),
                    int(interrupted),
                    self._run_id,
                ),
            )
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the writer if a run is still open, and close the database.

        Everything is committed by then. Closing checkpoints the WAL into the
        database file (a few milliseconds of I/O), so it happens in a
        background thread; if the process exits first, SQLite finishes the
        job when the store is next opened.
        """
        self._stop.set()
        if self._writer is not None and self._writer.is_alive():
            self._writer.join()
        threading.Thread(target=self._db.close, daemon=True).start()

    # -- reading ------------------------------------------------------------------

    def latest(self) -> dict[int, StoredOutcome]:
        """The latest recorded outcome of every index."""
        return load_latest(self._db)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.isolation_level = "DEFERRED"  # implicit transactions, committed by `with db:`
    return db


_STATUSES = list(Status)
_CODES = {status: code for code, status in enumerate(_STATUSES)}
_OK_CODE = _CODES[Status.OK]
_index = operator.attrgetter("index")
_status = operator.attrgetter("status")
_value = operator.attrgetter("value")
_worker = operator.attrgetter("worker")
_started = operator.attrgetter("started")
_finished = operator.attrgetter("finished")
_attempt = operator.attrgetter("attempt")


def _columns(batch: list[Outcome]) -> tuple[Any, ...]:
    """A batch of outcomes as columns: arrays of numbers, lists of the rest.

    Column by column, every loop runs in C; the result pickles to a compact,
    Python-version-independent blob (plain bytes, lists, strings).
    """
    codes = bytes(map(_CODES.__getitem__, map(_status, batch)))
    errors = {}
    if codes.count(_OK_CODE) != len(codes):
        for position, outcome in enumerate(batch):
            error = outcome.error
            if error is not None:
                errors[position] = (error.type, error.message, error.traceback, error.exit_code)
    return (
        array.array("q", map(_index, batch)).tobytes(),
        codes,
        list(map(_value, batch)),
        list(map(_worker, batch)),
        array.array("d", map(_started, batch)).tobytes(),
        array.array("d", map(_finished, batch)).tobytes(),
        array.array("q", map(_attempt, batch)).tobytes(),
        errors,
    )


def _rows(columns: tuple[Any, ...]) -> Iterator[Record]:
    index_bytes, codes, values, workers, started_bytes, finished_bytes, attempt_bytes, errors = (
        columns
    )
    indices, started, finished, attempts = (
        array.array("q"), array.array("d"), array.array("d"), array.array("q"),
    )  # fmt: skip
    indices.frombytes(index_bytes)
    started.frombytes(started_bytes)
    finished.frombytes(finished_bytes)
    attempts.frombytes(attempt_bytes)
    for position, index in enumerate(indices):
        yield (
            index,
            _STATUSES[codes[position]].value,
            values[position],
            errors.get(position),
            workers[position],
            started[position],
            finished[position],
            attempts[position],
        )


def load_latest(db: sqlite3.Connection) -> dict[int, StoredOutcome]:
    """Replay the journal: the last outcome recorded for each index wins."""
    latest: dict[int, Record] = {}
    for (blob,) in db.execute("SELECT records FROM journal ORDER BY id"):
        for record in _rows(pickle.loads(blob)):
            latest[record[0]] = record
    return {index: _stored(record) for index, record in latest.items()}


def read_latest(path: Path) -> dict[int, StoredOutcome]:
    """The latest outcome per index in the checkpoint at ``path`` (empty if there is none)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return load_latest(db)
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a curator checkpoint ({exc})") from None
    finally:
        db.close()


def _stored(record: Record) -> StoredOutcome:
    index, status, outputs, error, worker, started, finished, attempt = record
    return StoredOutcome(
        index, status, outputs, None if error is None else ErrorInfo(*error), worker, started,
        finished, attempt,
    )  # fmt: skip


@dataclass(frozen=True)
class StoreReport:
    """What ``curator status`` shows about a checkpoint."""

    path: Path
    pipeline: str
    fingerprint: str
    total: int
    counts: dict[str, int]
    failures: list[StoredOutcome]
    runs: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``curator status --json``."""
        last = self.runs[-1] if self.runs else None
        return {
            "checkpoint": str(self.path),
            "pipeline": self.pipeline,
            "fingerprint": self.fingerprint,
            "total": self.total,
            "recorded": sum(self.counts.values()),
            "not_recorded": self.total - sum(self.counts.values()),
            "counts": self.counts,
            "failures": [
                {
                    "index": f.index,
                    "status": f.status,
                    "attempt": f.attempt,
                    "worker": f.worker,
                    "error_type": f.error.type if f.error else None,
                    "message": f.error.message if f.error else None,
                }
                for f in self.failures
            ],
            "runs": len(self.runs),
            "last_run": last,
        }


def report(path: Path) -> StoreReport:
    """Read a checkpoint for ``curator status`` (read-only; no fingerprint needed)."""
    if not path.exists():
        raise UsageError(f"no checkpoint at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        latest = load_latest(db)
        columns = ["id", "started", "finished", "backend", "jobs", "requested", "ok", "failed"]
        columns += ["skipped", "cancelled", "interrupted"]
        runs = [dict(zip(columns, row, strict=True)) for row in db.execute(
            f"SELECT {', '.join(columns)} FROM runs ORDER BY id"
        )]  # fmt: skip
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a curator checkpoint ({exc})") from None
    finally:
        db.close()
    for run in runs:
        run["interrupted"] = bool(run["interrupted"])
        seconds = (run["finished"] or run["started"]) - run["started"]
        done = sum(run[k] or 0 for k in ("ok", "failed"))
        run["seconds"] = round(seconds, 3)
        run["items_per_second"] = round(done / seconds, 3) if seconds > 0 else None
    counts: dict[str, int] = {}
    for stored in latest.values():
        counts[stored.status] = counts.get(stored.status, 0) + 1
    failures = sorted(
        (s for s in latest.values() if Status(s.status).is_failure), key=lambda s: s.index
    )
    return StoreReport(
        path=path,
        pipeline=meta.get("pipeline", "?"),
        fingerprint=meta.get("fingerprint", "?"),
        total=int(meta.get("total", "0")),
        counts=counts,
        failures=failures,
        runs=runs,
    )


def plan(stored: dict[int, StoredOutcome], indices: Iterable[int]) -> dict[str, list[int]]:
    """Split the requested indices for a resume: done (skipped), failed and pending (to run)."""
    done, failed, pending = [], [], []
    for index in indices:
        record = stored.get(index)
        if record is None:
            pending.append(index)
        elif record.done:
            done.append(index)
        else:
            failed.append(index)
    return {"done": done, "failed": failed, "pending": pending}
