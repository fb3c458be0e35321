"""The latest record of each item, read from a checkpoint's journal by column and by index.

The journal is a sequence of batches; an item's latest record is in the last
batch that holds it. Finding it needs two columns only (indices and status
codes, decoded in C) kept in two arrays by item: the latest status and the
batch that holds it, 9 bytes an item (:class:`Latest`). The rest of a batch is
decoded only for the items asked for: the failures ``curator status`` lists,
the one item ``curator logs N`` shows (:func:`find` reads one batch), the done
items a resume skips (:class:`Skippable`, with their outputs). Nothing is
unpickled unless a resume gives its key.
"""

from __future__ import annotations

import array
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from curator import journal
from curator.capture import Captured
from curator.checkpoint_file import (
    DamagedCheckpoint,
    damaged,
    holds_checkpoint,
    reading,
    sqlite_error,
)
from curator.checkpoint_meta import check_meta, meta_total, read_meta
from curator.metrics import Metrics
from curator.outcome import ErrorInfo, Status, Successes

_STATUSES = list(Status)
DONE = frozenset({Status.OK.value, Status.SKIPPED.value})
"""Statuses of items a resume skips."""
_DONE = frozenset(code + 1 for code in journal.DONE_CODES)
_FAILED = frozenset(code + 1 for code in journal.FAILURE_CODES)
_SHIFT = bytes(min(code + 1, 255) for code in range(256))
"""``bytes.translate`` table: status code to its code in :attr:`Latest.codes` (0: none)."""
_INDEX_BYTES = array.array("q").itemsize


@dataclass(frozen=True)
class StoredOutcome:
    """The latest outcome the store holds for one index."""

    index: int
    status: str
    outputs: Any
    error: ErrorInfo | None
    worker: str
    started: float
    finished: float
    attempt: int
    metrics: Metrics | None = None
    output: Captured | None = None
    extras: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """Whether resume skips this index."""
        return self.status in DONE


class Latest:
    """Per item: its latest status code (plus one; 0: never recorded) and the batch holding it.

    Made by :func:`scan`; ``total`` is the pipeline's length: an index
    beyond it is damage.
    """

    def __init__(self, total: int, where: Path) -> None:
        self.total = total
        self.where = where
        self.codes = bytearray()
        self.batches = array.array("q")

    def add(self, batch: int, index_bytes: Any, codes: Any) -> None:
        """Take in one journal batch's indices and status codes (later batches win)."""
        try:
            indices = array.array("q")
            indices.frombytes(index_bytes)
            if not isinstance(codes, bytes) or len(codes) != len(indices):
                raise ValueError("an index and a codes column that do not match")
        except (TypeError, ValueError) as exc:
            raise damaged(self.where, f"a journal batch cannot be read ({exc})") from None
        if not indices:
            return
        low, high = min(indices), max(indices)
        if low < 0 or high >= self.total:
            raise beyond(self.where, low if low < 0 else high, self.total)
        if max(codes) >= len(_STATUSES):
            raise damaged(self.where, "a journal batch cannot be read (an unknown status code)")
        if high >= len(self.codes):
            grow = high + 1 - len(self.codes)
            self.codes.extend(bytes(grow))
            self.batches.extend(array.array("q", bytes(grow * _INDEX_BYTES)))
        latest, batches = self.codes, self.batches
        for index, code in zip(indices, codes.translate(_SHIFT), strict=True):
            latest[index] = code
            batches[index] = batch

    def status(self, index: int) -> str | None:
        """The latest status of ``index``, ``None`` if it was never recorded."""
        code = self.codes[index] if 0 <= index < len(self.codes) else 0
        return _STATUSES[code - 1].value if code else None

    def counts(self) -> dict[str, int]:
        """Items per latest status (those never recorded left out), by status name."""
        counts = {status.value: self.codes.count(code) for code, status in enumerate(_STATUSES, 1)}
        return {status: n for status, n in sorted(counts.items()) if n}

    @property
    def done(self) -> int:
        """Items a resume skips."""
        return sum(self.codes.count(code) for code in _DONE)

    def failed(self) -> list[int]:
        """The items whose latest outcome is a failure, by index."""
        found = []
        for code in _FAILED:
            position = self.codes.find(code)
            while position >= 0:
                found.append(position)
                position = self.codes.find(code, position + 1)
        return sorted(found)

    def plan(self, indices: Iterable[int], listed: int = 100) -> ResumePlan:
        """What a resume of ``indices`` does with each: skip it, or run it (and why)."""
        counts = dict.fromkeys(("done", "failed", "interrupted", "pending"), 0)
        failed: list[int] = []
        codes, size = self.codes, len(self.codes)
        for index in indices:
            code = codes[index] if 0 <= index < size else 0
            if not code:
                counts["pending"] += 1
            elif code in _DONE:
                counts["done"] += 1
            elif code in _FAILED:
                counts["failed"] += 1
                if len(failed) < listed:
                    failed.append(index)
            else:
                counts["interrupted"] += 1
        return ResumePlan(**counts, failed_indices=failed)


@dataclass(frozen=True)
class ResumePlan:
    """How a resume splits the requested items: counts, and the first failed ones."""

    done: int
    """Recorded done: skipped."""
    failed: int
    """Failed, crashed or timed out: run again."""
    interrupted: int
    """A hard stop ended them (or older checkpoints' ``cancelled``): run again."""
    pending: int
    """Never recorded: run."""
    failed_indices: list[int]

    @property
    def to_run(self) -> int:
        """Items the resume runs."""
        return self.failed + self.interrupted + self.pending


def beyond(where: Path, index: int, total: int) -> DamagedCheckpoint:
    """The damage of a journal that records ``index``, not an item of a pipeline of ``total``."""
    return damaged(
        where, f"a journal batch records item {index}, but the pipeline has {total} items"
    )


def scan(db: sqlite3.Connection, where: Path, total: int) -> Latest:
    """Every item's latest status and batch, from the journal's index and status columns."""
    latest = Latest(total, where)
    for batch, index_bytes, codes in db.execute(
        "SELECT id, indices, codes FROM journal ORDER BY id"
    ):
        latest.add(batch, index_bytes, codes)
    return latest


def _columns(db: sqlite3.Connection, outputs: bool) -> str:
    """The journal's data columns to select.

    Those it lacks (a checkpoint of an earlier version, read without writing
    to it) and, unless asked for, the pickled outputs read as NULL.
    """
    present = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
    return ", ".join(
        c if c in present and (outputs or c != "outputs") else f"NULL AS {c}"
        for c in journal.COLUMNS
    )


def _batch_row(db: sqlite3.Connection, batch: int, columns: str) -> Any:
    return db.execute(f"SELECT {columns} FROM journal WHERE id = ?", (batch,)).fetchone()


def find(db: sqlite3.Connection, where: Path, index: int, total: int) -> StoredOutcome | None:
    """The latest record of item ``index`` (``None``: never recorded); decodes one batch.

    The batches' index columns are searched newest first for the item's
    8 bytes; only the batch found is decoded (and checked against the
    pipeline's ``total`` items).
    """
    needle = array.array("q", [index]).tobytes()
    for batch, index_bytes in db.execute("SELECT id, indices FROM journal ORDER BY id DESC"):
        if not isinstance(index_bytes, bytes):
            raise damaged(where, "a journal batch cannot be read (its indices are not a blob)")
        found = index_bytes.rfind(needle)
        while found >= 0 and found % _INDEX_BYTES:  # the bytes straddle two numbers
            found = index_bytes.rfind(needle, 0, found + _INDEX_BYTES - 1)
        if found >= 0:
            decoded = journal.read_batch(_batch_row(db, batch, _columns(db, False)), where)
            if max(decoded.indices) >= total:
                raise beyond(where, max(decoded.indices), total)
            return StoredOutcome(*journal.record(decoded, found // _INDEX_BYTES, None, where))
    return None


def records(
    db: sqlite3.Connection, latest: Latest, indices: Iterable[int]
) -> Iterator[StoredOutcome]:
    """The latest records of ``indices`` (recorded ones), decoding only the batches that hold them.

    Yielded batch by batch; nothing is unpickled.
    """
    wanted: dict[int, set[int]] = {}
    for index in indices:
        if latest.status(index) is not None:
            wanted.setdefault(latest.batches[index], set()).add(index)
    columns = _columns(db, outputs=False)
    for batch in sorted(wanted):
        mine = wanted[batch]
        decoded = journal.read_batch(_batch_row(db, batch, columns), latest.where)
        found = {index: p for p, index in enumerate(decoded.indices) if index in mine}
        for index in sorted(found):  # of an index twice in the batch, the later position
            yield StoredOutcome(*journal.record(decoded, found[index], None, latest.where))


class _Kept(NamedTuple):
    """The columns of a batch a resume reports skipped items from."""

    started: array.array[float]
    finished: array.array[float]
    attempts: array.array[int]
    workers: array.array[int]
    names: list[str]
    values: list[Any]
    extras: dict[int, dict[str, Any]]


class Skippable:
    """What a resume needs of the items it skips: their batches' columns, kept by batch.

    Made by :func:`skippable`. Per item it keeps only its position in the
    batch that holds its latest record; :meth:`skipped` builds the item's
    ``skipped`` outcome from that batch's columns when asked.
    """

    def __init__(self, latest: Latest) -> None:
        self.latest = latest
        self.positions = array.array("q", bytes(_INDEX_BYTES * len(latest.codes)))
        self._kept: dict[int, _Kept] = {}
        self.unloadable: list[int] = []
        """Done items whose recorded outputs do not unpickle here: a resume runs them again."""
        self.cause: journal.UnloadableRecord | None = None
        """Why the first of them did not load."""

    def split(
        self, indices: Sequence[int], rerun: set[int]
    ) -> tuple[Iterator[Successes], list[int]]:
        """``indices`` split into the ones a resume skips, in columns, and the ones it runs.

        Skipped items come as :class:`~curator.outcome.Successes` of status
        ``skipped``, one per run of consecutive indices recorded in the same
        stored batch by the same worker and attempt (so a run's table takes
        each with one slice per column), made as they are asked for; no
        ``Outcome`` is made. ``rerun``: done items that must run again all the same.
        """
        codes, batches, positions, kept = (
            self.latest.codes, self.latest.batches, self.positions, self._kept,
        )  # fmt: skip
        size = len(codes)
        groups: dict[tuple[int, int, int], array.array[int]] = {}
        to_run: list[int] = []
        done = _DONE
        where = (0, -1, -1)
        members = array.array("q")
        for index in indices:
            if 0 <= index < size and codes[index] in done and index not in rerun:
                batch = batches[index]
                found = kept.get(batch)
                if found is not None:
                    at = positions[index]
                    worker, attempt = found.workers[at], found.attempts[at]
                    # Neighbours mostly share their group: look it up only when it changes.
                    if batch != where[0] or worker != where[1] or attempt != where[2]:
                        where = (batch, worker, attempt)
                        members = groups.setdefault(where, array.array("q"))
                    members.append(index)
                    continue
            to_run.append(index)
        skipped = (
            self._columns(batch, worker, attempt, run)
            for (batch, worker, attempt), members in groups.items()
            for run in _consecutive(members)
        )
        return skipped, to_run

    def _columns(
        self, batch: int, worker: int, attempt: int, members: array.array[int]
    ) -> Successes:
        """The ``skipped`` outcomes of ``members``, recorded in ``batch`` by one worker."""
        found = self._kept[batch]
        at = [self.positions[index] for index in members]
        extras = found.extras
        return Successes(
            found.names[worker],
            members,
            array.array("d", map(found.started.__getitem__, at)),
            array.array("d", map(found.finished.__getitem__, at)),
            list(map(found.values.__getitem__, at)),
            attempt,
            status=Status.SKIPPED,
            extras={p: extras[a] for p, a in enumerate(at) if a in extras} if extras else None,
        )

    def take(self, batch: int, row: Any, key: bytes) -> None:
        """Keep one journal batch that holds some item's latest record, with its outputs."""
        where = self.latest.where
        columns = journal.read_batch(row, where)
        try:
            values = journal.load_outputs(row, len(columns.indices), key, where)
        except journal.UnloadableRecord as exc:
            recorded = self.latest
            mine = {i for i in columns.indices if recorded.batches[i] == batch}
            self.unloadable += sorted(i for i in mine if recorded.status(i) in DONE)
            self.cause = self.cause or exc
            return
        self._kept[batch] = _Kept(
            columns.started, columns.finished, columns.attempts, columns.workers,
            columns.names, values, columns.extras,
        )  # fmt: skip
        positions, latest = self.positions, self.latest.batches
        for position, index in enumerate(columns.indices):
            if latest[index] == batch:
                positions[index] = position


def _consecutive(indices: array.array[int]) -> Iterator[array.array[int]]:
    """``indices`` cut into runs of consecutive numbers."""
    start = 0
    for position in range(1, len(indices)):
        if indices[position] != indices[position - 1] + 1:
            yield indices[start:position]
            start = position
    if indices:
        yield indices[start:]


def skippable(db: sqlite3.Connection, latest: Latest, key: bytes) -> Skippable:
    """The records a resume skips: outputs verified with ``key`` and unpickled, batch by batch.

    Only the batches that hold some item's latest record are decoded (a
    batch a later run redid is not).
    """
    found = Skippable(latest)
    columns = _columns(db, outputs=True)
    for batch in sorted(set(latest.batches) - {0}):  # 0: an item never recorded
        found.take(batch, _batch_row(db, batch, columns), key)
    return found


def load_latest(
    db: sqlite3.Connection, path: Path, key: bytes | None = None
) -> dict[int, StoredOutcome]:
    """Replay the whole journal: the last outcome recorded for each index wins.

    Without ``key`` the outputs are not read (``None``) and nothing is
    unpickled. It decodes every batch into an object per item: the commands
    read only what they show, with :mod:`curator.latest`; this serves tests
    and tools.
    """
    latest: dict[int, journal.Record] = {}
    try:
        # A checkpoint of an earlier version, read without writing to it, may lack
        # columns added since: they read as NULL.
        present = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
        columns = ", ".join(c if c in present else f"NULL AS {c}" for c in journal.COLUMNS)
        for row in db.execute(f"SELECT {columns} FROM journal ORDER BY id"):
            for record in journal.decode(row, key, path):
                latest[record[0]] = record
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise sqlite_error(path, exc) from None
    return {index: StoredOutcome(*record) for index, record in latest.items()}


def read_latest(path: Path, fingerprint: str | None = None) -> dict[int, StoredOutcome]:
    """The latest outcome per index in the checkpoint at ``path``, without outputs.

    Empty if there is none. With ``fingerprint``, a checkpoint of another
    pipeline is an error, as it is for a run.
    """
    if not holds_checkpoint(path):
        return {}
    with reading(path) as db:
        meta = read_meta(db, path)
        if fingerprint is not None:
            check_meta(path, meta, fingerprint, "this pipeline")
        return load_latest(db, path)


def read_codes(path: Path, fingerprint: str) -> Latest | None:
    """Each item's latest status in the checkpoint of the pipeline ``fingerprint`` at ``path``.

    ``None`` if there is none; a checkpoint of another pipeline is an error.
    Only the index and status columns are read: what a dry run's plan needs.
    """
    if not holds_checkpoint(path):
        return None
    with reading(path) as db:
        meta = read_meta(db, path)
        check_meta(path, meta, fingerprint, "this pipeline")
        return scan(db, path, meta_total(meta, path))
