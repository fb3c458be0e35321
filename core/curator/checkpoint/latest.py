"""The latest record of each item, read from a checkpoint's journal by column and by index.

The journal is a sequence of batches; an item's latest record is in the last
batch that holds it. Finding it needs two columns only (indices and status
codes, decoded in C) kept in two arrays by item: the latest status and the
batch that holds it, 9 bytes an item (:class:`Latest`). The rest of a batch is
decoded only for the items asked for: the failures ``curator status`` lists,
the one item ``curator logs N`` shows (:func:`find` reads one batch), the done
items a resume skips (:class:`curator.checkpoint.skipping.Skippable`, with their
outputs). Nothing is unpickled unless a resume gives its key.
"""

from __future__ import annotations

import array
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.checkpoint import journal
from curator.checkpoint.file import (
    DamagedCheckpoint,
    damaged,
    holds_checkpoint,
    reading,
    sqlite_error,
)
from curator.checkpoint.meta import check_meta, meta_total, read_meta
from curator.model.captured import Captured
from curator.model.measures import Metrics
from curator.model.outcome import ErrorInfo, Status

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

    def is_done(self, index: int) -> bool:
        """Whether a resume skips ``index`` (its latest outcome is ``ok`` or ``skipped``)."""
        return self.status(index) in DONE

    def counts(self) -> dict[str, int]:
        """Items per latest status (those never recorded left out), by status name."""
        counts = {status.value: self.codes.count(code) for code, status in enumerate(_STATUSES, 1)}
        return {status: n for status, n in sorted(counts.items()) if n}

    @property
    def done(self) -> int:
        """Items a resume skips."""
        return sum(self.codes.count(code) for code in _DONE)

    def holding_batches(self) -> list[int]:
        """The journal batches holding some item's latest record, in order: what a resume loads."""
        return sorted(set(self.batches) - {0})  # 0: an item never recorded

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


def batch_columns(db: sqlite3.Connection, outputs: bool) -> str:
    """The journal's data columns to select.

    Those it lacks (a checkpoint of an earlier version, read without writing
    to it) and, unless asked for, the pickled outputs read as NULL.
    """
    present = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
    return ", ".join(
        c if c in present and (outputs or c != "outputs") else f"NULL AS {c}"
        for c in journal.COLUMNS
    )


def batch_row(db: sqlite3.Connection, batch: int, columns: str) -> Any:
    """The ``columns`` (as :func:`batch_columns` gives them) of journal batch ``batch``."""
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
            decoded = journal.read_batch(batch_row(db, batch, batch_columns(db, False)), where)
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
    columns = batch_columns(db, outputs=False)
    for batch in sorted(wanted):
        mine = wanted[batch]
        decoded = journal.read_batch(batch_row(db, batch, columns), latest.where)
        found = {index: p for p, index in enumerate(decoded.indices) if index in mine}
        for index in sorted(found):  # of an index twice in the batch, the later position
            yield StoredOutcome(*journal.record(decoded, found[index], None, latest.where))


def load_latest(
    db: sqlite3.Connection, path: Path, key: bytes | None = None
) -> dict[int, StoredOutcome]:
    """Replay the whole journal: the last outcome recorded for each index wins.

    Without ``key`` the outputs are not read (``None``) and nothing is
    unpickled. It decodes every batch into an object per item: the commands
    read only what they show, with :mod:`curator.checkpoint.latest`; this serves tests
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


def read_latest(
    path: str | os.PathLike[str], fingerprint: str | None = None
) -> dict[int, StoredOutcome]:
    """The latest outcome per index in the checkpoint at ``path``, without outputs.

    Empty if there is none. With ``fingerprint``, a checkpoint of another
    pipeline is an error, as it is for a run.
    """
    path = Path(path)  # a str too: the user guide reads one this way
    if not holds_checkpoint(path):
        return {}
    with reading(path) as db:
        meta = read_meta(db, path)
        if fingerprint is not None:
            check_meta(path, meta, fingerprint, "this pipeline")
        return load_latest(db, path)


def read_codes(
    path: Path, fingerprint: str, legacy: Callable[[], str] | None = None
) -> Latest | None:
    """Each item's latest status in the checkpoint of the pipeline ``fingerprint`` at ``path``.

    ``None`` if there is none; a checkpoint of another pipeline is an error
    (one that is the pipeline's by its ``legacy`` fingerprint is not, see
    :func:`~curator.checkpoint.meta.check_meta`). Only the index and status
    columns are read: what a dry run's plan needs.
    """
    if not holds_checkpoint(path):
        return None
    with reading(path) as db:
        meta = read_meta(db, path)
        check_meta(path, meta, fingerprint, "this pipeline", legacy)
        return scan(db, path, meta_total(meta, path))
