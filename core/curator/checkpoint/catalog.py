"""Reading checkpoints for people: what one holds, and every one in a folder.

Used by ``curator status`` and by ``curator run`` to say what a rerun or a
resume will find. Reading never unpickles anything and never writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.checkpoint import latest as by_item
from curator.checkpoint.file import (
    DamagedCheckpoint,
    damaged,
    holds_checkpoint,
    no_checkpoint,
    reading,
)
from curator.checkpoint.latest import DONE, StoredOutcome
from curator.checkpoint.meta import meta_total, read_meta
from curator.checkpoint.parameters import flatten
from curator.checkpoint.runlock import lock_holder
from curator.checkpoint.schema import STOPPED
from curator.checkpoint.settings import RunSettings
from curator.model.errors import UsageError
from curator.model.outcome import Status
from curator.model.result import throughput

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
    stopped: bool = False
    """It ended early, not by a hard stop (see :data:`~curator.checkpoint.schema.STOPPED`);
    ``interrupted`` is true too."""

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
            "stopped": self.stopped,
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
    """The pipeline's parameters (see :func:`curator.checkpoint.parameters.flatten`); empty for old
    checkpoints."""
    counts: dict[str, int]
    """Items per latest status (never recorded ones left out)."""
    failures: list[StoredOutcome]
    """The items whose latest outcome is a failure, by index (read only when asked for)."""
    runs: list[RunRecord]
    state: str
    """``running``, ``died`` (the run's process ended without closing it), ``interrupted``,
    ``stopped`` (it ended early, not by a hard stop), ``finished``, or ``never run``."""

    @property
    def done(self) -> int:
        """Indices a resume skips."""
        return sum(self.counts.get(status, 0) for status in DONE)

    @property
    def failed(self) -> int:
        """Indices whose latest outcome is a failure."""
        return sum(self.counts.get(status, 0) for status in _FAILURE_VALUES)

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
        data["extras"] = stored.extras  # what plugins' per-item features recorded
    return data


@contextlib.contextmanager
def reading_checkpoint(path: Path) -> Iterator[tuple[sqlite3.Connection, dict[str, str]]]:
    """``with reading_checkpoint(path) as (db, meta)``: how a command that only reads opens one.

    What is no checkpoint (a missing or empty file, another kind of file or
    database) is refused as :class:`~curator.checkpoint.file.NotACheckpoint`,
    with no ``--checkpoint`` advice: those commands have no such flag.
    """
    if not holds_checkpoint(path):
        raise no_checkpoint(path)
    with reading(path, advice=False) as db:
        yield db, read_meta(db, path)


def read(path: Path, failures: bool = True) -> CheckpointReport:
    """Read the checkpoint at ``path`` (read-only; nothing is unpickled).

    Only the journal's index and status columns are read, and, with
    ``failures``, the batches that hold a failed item's latest record.

    Raises
    ------
    UsageError
        When there is no checkpoint there, the file is not one this curator
        reads, or it is damaged (:class:`~curator.checkpoint.file.DamagedCheckpoint`).
    """
    with reading_checkpoint(path) as (db, meta):
        total = meta_total(meta, path)
        latest = by_item.scan(db, path, total)
        failed = list(by_item.records(db, latest, latest.failed())) if failures else []
        runs = read_runs(db, path)
    return CheckpointReport(
        path=path,
        pipeline=meta.get("pipeline", "?"),
        fingerprint=meta.get("fingerprint", "?"),
        total=total,
        parameters=flatten(_json(meta.get("parameters"))),
        counts=latest.counts(),
        failures=failed,
        runs=runs,
        state=run_state(path, runs),
    )


def read_item(path: Path, index: int, given: str) -> StoredOutcome | None:
    """The latest record of item ``index`` (``None``: never recorded), reading one batch.

    ``given`` is how the user named the item (``--index 7``), for the message
    when the pipeline has no such item.
    """
    with reading_checkpoint(path) as (db, meta):
        total = meta_total(meta, path)
        if not 0 <= index < total:
            raise UsageError(
                f"{given} is not an item of this pipeline (it has {total}, 0..{total - 1})"
            )
        return by_item.find(db, path, index, total)


def read_runs(db: sqlite3.Connection, path: Path) -> list[RunRecord]:
    """The runs a checkpoint records, oldest first."""
    present = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    columns = [c if c in present else f"NULL AS {c}" for c in _RUN_COLUMNS]
    rows = list(db.execute(f"SELECT {', '.join(columns)} FROM runs ORDER BY id"))
    return [_run_record(dict(zip(_RUN_COLUMNS, row, strict=True)), path) for row in rows]


def resume_facts(path: Path) -> tuple[RunSettings | None, int]:
    """The last recorded settings and how many items are done: what ``curator run`` says.

    Cheaper than :func:`read` on a large checkpoint: it decodes only the index
    and status columns.
    """
    with reading(path) as db:
        meta = read_meta(db, path)  # refuses what is not a checkpoint it reads
        present = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        settings = None
        if "settings" in present:
            for (text,) in db.execute(
                "SELECT settings FROM runs WHERE settings IS NOT NULL ORDER BY id DESC LIMIT 1"
            ):
                settings = RunSettings.from_json(_json(text))
        done = by_item.scan(db, path, meta_total(meta, path)).done
    return settings, done


def check_readable(path: Path) -> None:
    """Refuse ``path`` unless it reads as a checkpoint (only its meta table is read).

    Raises
    ------
    UsageError
        As :func:`read` would, for the same file.
    """
    with reading_checkpoint(path):
        pass


def done_among(path: Path, indices: Iterable[int]) -> int:
    """How many of ``indices`` the checkpoint at ``path`` holds as done (a resume skips them).

    Earlier runs' items count too: what a run over an existing checkpoint
    says is left to do after it stops.
    """
    with reading(path) as db:
        meta = read_meta(db, path)
        return by_item.scan(db, path, meta_total(meta, path)).plan(indices, listed=0).done


@dataclass(frozen=True)
class Unreadable:
    """A file in a folder of checkpoints that cannot be read as one, and why."""

    path: Path
    problem: str
    damaged: bool
    """Whether it is a damaged checkpoint (else another file, another schema, no access)."""

    def to_json(self) -> dict[str, Any]:
        """Its row in ``curator status --json`` of the folder."""
        return {
            "checkpoint": str(self.path),
            "state": "damaged" if self.damaged else "unreadable",
            "problem": self.problem,
        }


def listing(folder: Path) -> list[CheckpointReport | Unreadable]:
    """Every ``*.sqlite`` file in ``folder``.

    The checkpoints come first, the most recently used last, then the files
    that cannot be read as one, each saying why.
    """
    reports: list[CheckpointReport] = []
    unreadable: list[Unreadable] = []
    for path in sorted(folder.glob("*.sqlite")):
        try:
            reports.append(read(path, failures=False))
        except UsageError as exc:
            unreadable.append(Unreadable(path, str(exc), isinstance(exc, DamagedCheckpoint)))
    return [*sorted(reports, key=_last_used), *unreadable]


def scan(folder: Path) -> list[CheckpointReport]:
    """Every readable checkpoint in ``folder``, the most recently used last."""
    return [entry for entry in listing(folder) if isinstance(entry, CheckpointReport)]


def _last_used(report: CheckpointReport) -> float:
    if report.runs:
        last = report.runs[-1]
        return last.finished or last.started
    return report.path.stat().st_mtime


def _run_record(row: dict[str, Any], path: Path) -> RunRecord:
    """One row of the runs table, each column's type checked (a wrong one is damage)."""

    def number(name: str, whole: bool = False) -> Any:
        value = row[name]
        kind = int if whole else (int, float)
        if value is None or (
            isinstance(value, kind)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and abs(value) < 2**53
        ):
            return value
        raise damaged(path, f"run {row['id']!r}'s {name} is {value!r}, not a number")

    if row["id"] is None or number("started") is None:
        raise damaged(path, f"a run without {'an id' if row['id'] is None else 'a start'}")
    number("id", whole=True)
    backend = row["backend"]
    if backend is not None and not isinstance(backend, str):
        raise damaged(path, f"run {row['id']!r}'s backend is {backend!r}, not a name")
    started, finished, seconds, ran = (
        row["started"], number("finished"), number("seconds"), number("ran", whole=True),
    )  # fmt: skip
    if seconds is None:  # recorded before runs kept their own duration
        seconds = (finished or started) - started
    counts = {key: number(key, whole=True) or 0 for key in ("ok", "failed", "skipped", "cancelled")}
    if ran is None:
        ran = counts["ok"] + counts["failed"]
    ended = number("interrupted", whole=True)
    return RunRecord(
        id=row["id"],
        started=started,
        finished=finished,
        backend=backend or "?",
        jobs=number("jobs", whole=True) or 0,
        requested=number("requested", whole=True) or 0,
        counts=counts,
        interrupted=bool(ended),
        seconds=seconds,
        items_per_second=throughput(ran, seconds),
        settings=RunSettings.from_json(_json(row["settings"])),
        stopped=ended == STOPPED,
    )


def run_state(path: Path, runs: list[RunRecord]) -> str:
    """What the checkpoint's last run is doing (see :attr:`CheckpointReport.state`)."""
    if not runs:
        return "never run"
    last = runs[-1]
    if last.finished is None:
        return "running" if _holder_alive(path) else "died"
    if last.stopped:
        return "stopped"
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


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
