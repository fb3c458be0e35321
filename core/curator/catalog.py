"""Reading checkpoints for people: what one holds, and every one in a folder.

Used by ``curator status`` and by ``curator run`` to say what a rerun or a
resume will find. Reading never unpickles anything and never writes.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator import journal
from curator.checkpoint_file import reading
from curator.errors import UsageError
from curator.outcome import Status
from curator.parameters import flatten
from curator.result import throughput
from curator.settings import RunSettings
from curator.store import (
    DONE,
    SCHEMA_VERSION,
    StoredOutcome,
    check_meta,
    load_latest,
    lock_holder,
)

_FAILURE_VALUES = frozenset(status.value for status in Status if status.is_failure)
_RUN_COLUMNS = (
    "id", "started", "finished", "backend", "jobs", "requested", "ok", "failed", "skipped",
    "cancelled", "interrupted", "seconds", "ran", "settings",
)  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    """One run recorded in a checkpoint."""

    id: int
    started: float
    finished: float | None
    backend: str
    jobs: int
    requested: int
    counts: dict[str, int]
    interrupted: bool
    seconds: float
    items_per_second: float
    settings: RunSettings | None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of a run in ``curator status --json``."""
        return {
            "id": self.id,
            "started": self.started,
            "finished": self.finished,
            "backend": self.backend,
            "jobs": self.jobs,
            "requested": self.requested,
            **self.counts,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 3),
            "settings": self.settings.to_json() if self.settings is not None else None,
        }


@dataclass(frozen=True)
class CheckpointReport:
    """What a checkpoint holds: its pipeline, the latest outcome per index, and its runs."""

    path: Path
    pipeline: str
    fingerprint: str
    total: int
    parameters: dict[str, str]
    """The pipeline's parameters (see :func:`curator.parameters.flatten`); empty for old
    checkpoints."""
    latest: dict[int, StoredOutcome]
    runs: list[RunRecord]
    state: str
    """``running``, ``died`` (the run's process ended without closing it), ``interrupted``,
    ``finished``, or ``never run``."""

    @functools.cached_property
    def counts(self) -> dict[str, int]:
        """Indices per latest status."""
        return dict(sorted(Counter(stored.status for stored in self.latest.values()).items()))

    @property
    def done(self) -> int:
        """Indices a resume skips."""
        return sum(self.counts.get(status, 0) for status in DONE)

    @functools.cached_property
    def failures(self) -> list[StoredOutcome]:
        """Indices whose latest outcome is a failure, by index."""
        failed = (s for s in self.latest.values() if s.status in _FAILURE_VALUES)
        return sorted(failed, key=lambda s: s.index)

    def check_item(self, index: int, given: str) -> None:
        """Raise a clear :class:`UsageError` unless ``index`` is an item of the pipeline.

        ``given`` is how the user wrote it (``--index 7``), for the message.
        """
        if not 0 <= index < self.total:
            raise UsageError(
                f"{given} is not an item of this pipeline (it has {self.total}, "
                f"0..{self.total - 1})"
            )

    @property
    def settings(self) -> RunSettings | None:
        """What the last run that recorded its settings was asked for."""
        recorded = [run.settings for run in self.runs if run.settings is not None]
        return recorded[-1] if recorded else None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``curator status --json`` for one checkpoint."""
        counts = self.counts
        last = self.runs[-1] if self.runs else None
        return {
            "checkpoint": str(self.path),
            "pipeline": self.pipeline,
            "fingerprint": self.fingerprint,
            "parameters": self.parameters,
            "state": self.state,
            "total": self.total,
            "recorded": sum(counts.values()),
            "not_recorded": self.total - sum(counts.values()),
            "done": self.done,
            "counts": counts,
            "failures": [failure_json(f) for f in self.failures],
            "runs": len(self.runs),
            "last_run": last.to_json() if last is not None else None,
        }


def failure_json(stored: StoredOutcome, traceback: bool = False) -> dict[str, Any]:
    """One stored outcome as JSON, with its traceback if asked."""
    data: dict[str, Any] = {
        "index": stored.index,
        "status": stored.status,
        "attempt": stored.attempt,
        "worker": stored.worker,
        "started": stored.started,
        "finished": stored.finished,
        "error_type": stored.error.type if stored.error else None,
        "message": stored.error.message if stored.error else None,
    }
    if traceback:
        data["traceback"] = stored.error.traceback if stored.error else None
        data["exit_code"] = stored.error.exit_code if stored.error else None
    return data


def read(path: Path) -> CheckpointReport:
    """Read the checkpoint at ``path`` (read-only; nothing is unpickled).

    Raises
    ------
    UsageError
        When there is no checkpoint there, or the file is not one this curator reads.
    """
    if not path.exists():
        raise UsageError(f"no checkpoint at {path}")
    with reading(path) as db:
        meta = checked_meta(db, path)
        latest = load_latest(db, path)
        runs = read_runs(db)
    return CheckpointReport(
        path=path,
        pipeline=meta.get("pipeline", "?"),
        fingerprint=meta.get("fingerprint", "?"),
        total=int(meta.get("total", "0")),
        parameters=flatten(_json(meta.get("parameters"))),
        latest=latest,
        runs=runs,
        state=run_state(path, runs),
    )


def read_runs(db: sqlite3.Connection) -> list[RunRecord]:
    """The runs a checkpoint records, oldest first."""
    present = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    columns = [c if c in present else f"NULL AS {c}" for c in _RUN_COLUMNS]
    rows = list(db.execute(f"SELECT {', '.join(columns)} FROM runs ORDER BY id"))
    return [_run_record(dict(zip(_RUN_COLUMNS, row, strict=True))) for row in rows]


def resume_facts(path: Path) -> tuple[RunSettings | None, int]:
    """The last recorded settings and how many items are done: what ``curator run`` says.

    Cheaper than :func:`read` on a large checkpoint: it decodes only the index
    and status columns.
    """
    with reading(path) as db:
        checked_meta(db, path)  # refuses what is not a checkpoint it reads
        present = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        settings = None
        if "settings" in present:
            for (text,) in db.execute(
                "SELECT settings FROM runs WHERE settings IS NOT NULL ORDER BY id DESC LIMIT 1"
            ):
                settings = RunSettings.from_json(_json(text))
        codes = journal.latest_codes(
            db.execute("SELECT indices, codes FROM journal ORDER BY id"), path
        )
    return settings, sum(1 for code in codes.values() if code in journal.DONE_CODES)


def checked_meta(db: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The checkpoint's meta table, once it is known to be a checkpoint this curator reads."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if "meta" not in tables:
        raise UsageError(f"{path} is an SQLite database but not a curator checkpoint")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if meta.get("schema") != str(SCHEMA_VERSION):
        check_meta(path, meta, meta.get("fingerprint", ""), "")
    return meta


def scan(folder: Path) -> list[CheckpointReport]:
    """Every readable checkpoint in ``folder``, the most recently used last.

    Files that cannot be read as checkpoints are left out (``curator status
    FILE`` says why for one of them).
    """
    reports = []
    for path in sorted(folder.glob("*.sqlite")):
        try:
            reports.append(read(path))
        except UsageError:
            continue
    return sorted(reports, key=_last_used)


def _last_used(report: CheckpointReport) -> float:
    if report.runs:
        last = report.runs[-1]
        return last.finished or last.started
    return report.path.stat().st_mtime


def _run_record(row: dict[str, Any]) -> RunRecord:
    finished = row["finished"]
    seconds = row["seconds"]
    if seconds is None:  # recorded before runs kept their own duration
        seconds = (finished or row["started"]) - row["started"]
    ran = row["ran"]
    if ran is None:
        ran = (row["ok"] or 0) + (row["failed"] or 0)
    counts = {key: row[key] or 0 for key in ("ok", "failed", "skipped", "cancelled")}
    return RunRecord(
        id=row["id"],
        started=row["started"],
        finished=finished,
        backend=row["backend"] or "?",
        jobs=row["jobs"] or 0,
        requested=row["requested"] or 0,
        counts=counts,
        interrupted=bool(row["interrupted"]),
        seconds=seconds,
        items_per_second=throughput(ran, seconds),
        settings=RunSettings.from_json(_json(row["settings"])),
    )


def run_state(path: Path, runs: list[RunRecord]) -> str:
    """What the checkpoint's last run is doing (see :attr:`CheckpointReport.state`)."""
    if not runs:
        return "never run"
    last = runs[-1]
    if last.finished is None:
        return "running" if _holder_alive(path) else "died"
    return "interrupted" if last.interrupted else "finished"


def _holder_alive(path: Path) -> bool:
    holder = lock_holder(path)
    if holder is None:
        return False
    pid, host = holder
    if host != socket.gethostname() and host != os.uname().nodename:
        return True  # another machine's run: assume it is alive rather than say it died
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
