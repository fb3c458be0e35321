"""The checkpoint store: an SQLite journal of every outcome, for resume and status.

One store holds one pipeline, identified by its fingerprint; opening it for
another pipeline is an error, never a silent reuse. One run at a time writes
it: a run holds an exclusive lock (``<checkpoint>.lock``) and a second run on
the same checkpoint is refused. The run loop appends each outcome to a buffer
(a plain list append) and a writer thread commits the buffer every
:data:`COMMIT_SECONDS` as one batch of columns (see :mod:`curator.checkpoint.journal`),
in WAL mode. If the parent dies, at most the outcomes of the last interval
are missing, and those items simply run again on resume: an item is never
reported done unless its outcome was committed. When the run ends the WAL is
folded back into the file, so the ``.sqlite`` file alone can be copied.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from curator.checkpoint import journal
from curator.checkpoint.closing import close_in_background
from curator.checkpoint.closing import wait_closed as wait_closed  # where tests and tools find it
from curator.checkpoint.file import (
    check_file,
    sqlite_error,
    sqlite_problem,
)
from curator.checkpoint.keyfile import user_key
from curator.checkpoint.latest import Latest, scan
from curator.checkpoint.latest import read_latest as read_latest  # where tests and tools find it
from curator.checkpoint.recovery import companions, identity_of, recover
from curator.checkpoint.runlock import (
    give_back_refused,
    has_lock_file,
    remove_lock,
    take_lock,
)
from curator.checkpoint.schema import STOPPED, open_checkpoint
from curator.checkpoint.skipping import Skippable, skippable
from curator.checkpoint.stored_states import stored_partials
from curator.model.errors import UsageError
from curator.model.outcome import Outcome, Successes
from curator.model.state import StateMark

COMMIT_SECONDS = 0.1
"""How often the writer thread commits what has arrived (at least)."""
COMMIT_ITEMS = 4096
"""Items that make the writer commit before :data:`COMMIT_SECONDS` are up: the outcomes
waiting for a commit (and the batch being encoded) stay small however fast items end."""
LOOK_SECONDS = 0.02
"""How often the writer thread counts what is waiting (it never slows the run loop's
``append``)."""
DEFAULT_DIR = ".curator"
DEFAULT_FILE = "checkpoint.sqlite"

_INSERT = (
    f"INSERT INTO journal (run, {', '.join(journal.COLUMNS)}) "
    f"VALUES (?, {', '.join('?' * len(journal.COLUMNS))})"
)


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


class CheckpointStore:
    """An open checkpoint of one pipeline, locked for this run.

    Parameters
    ----------
    path
        The SQLite file (created with its folder if needed).
    fingerprint
        The pipeline's fingerprint; must match the stored one (or ``legacy``'s).
    pipeline, total
        Description and length of the pipeline, kept for ``curator status``.
    parameters
        The pipeline's canonical description as JSON (see
        :func:`curator.checkpoint.fingerprint.describe`), kept so that ``curator status``
        can tell checkpoints of one pipeline class apart.
    legacy
        Gives the fingerprint an earlier curator gave the pipeline (see
        :func:`curator.checkpoint.fingerprint.legacy_fingerprint`): a checkpoint
        that holds it is taken and given ``fingerprint``.

    Raises
    ------
    UsageError
        When the file is not a curator checkpoint (another file, damaged,
        an older schema), belongs to another pipeline, cannot be written, or
        another run is using it.
    """

    def __init__(
        self,
        path: Path,
        fingerprint: str,
        pipeline: str,
        total: int,
        parameters: str = "null",
        legacy: Callable[[], str] | None = None,
    ) -> None:
        self.path = path
        self.total = total
        check_file(path)
        self._made_folder = not path.parent.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the checkpoint folder {path.parent}: {exc.strerror}; "
                "choose another with --checkpoint PATH, or run with --no-checkpoint"
            ) from None
        wait_closed(path)
        self._key = user_key()  # a key that is refused leaves no file behind
        made_lock = not has_lock_file(path)
        self._lock_file = take_lock(path)
        self._made = not path.exists()
        try:
            self._db = open_checkpoint(path, fingerprint, pipeline, total, parameters, legacy)
        except BaseException:
            give_back_refused(self._lock_file, path, made_lock)
            raise
        self._identity = identity_of(path)  # just opened: it exists
        self._companions = companions(path)
        self._lock = threading.Lock()
        self._buffer: list[Outcome | Successes | StateMark] = []
        self.keeps_state = False
        """Whether the run has accumulating stages: a batch is then written only with
        the partials that cover it (see :meth:`commit`)."""
        self._run_id: int | None = None
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self._wrote = False
        self.discard_unused = False
        """Set by a run that fails: if this store made the file and no outcome reached
        it, :meth:`close` removes it rather than leave an empty checkpoint behind."""

    # -- writing ------------------------------------------------------------------

    def start_run(
        self,
        backend: str,
        jobs: int,
        requested: int,
        settings: Mapping[str, Any] | None = None,
        stages: Sequence[str] = (),
    ) -> None:
        """Open a run record and start the writer thread.

        ``settings`` are what the run was asked for (see
        :class:`curator.checkpoint.settings.RunSettings`), so that a resume can repeat it.
        ``stages`` name the stages the metrics rows are per (see
        :func:`curator.observing.metrics.stage_names`); they go into the ``meta`` table.
        """
        recorded = json.dumps(dict(settings)) if settings is not None else None
        try:
            with self._lock, self._db:
                cursor = self._db.execute(
                    "INSERT INTO runs (started, backend, jobs, requested, settings) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (time.time(), backend, jobs, requested, recorded),
                )
                self._run_id = cursor.lastrowid
                if stages:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('stages', ?)",
                        (json.dumps(list(stages)),),
                    )
        except sqlite3.Error as exc:
            raise UsageError(sqlite_problem(self.path, exc)) from None
        self._writer = threading.Thread(target=self._write_periodically, daemon=True)
        self._writer.start()

    @property
    def record(self) -> Callable[[Outcome | Successes | StateMark], None]:
        """Queue an outcome (or a worker's column batch of them) for the next commit.

        It is ``list.append``, the cheapest call there is.

        The run loop holds on to this bound method; the writer thread takes
        records off the front of the same list, so it is never replaced.
        """
        return self._buffer.append

    def _write_periodically(self) -> None:
        last = time.monotonic()
        buffer = self._buffer
        counted = fresh = 0  # entries of the buffer counted; items among them since a commit
        while not self._stop.wait(LOOK_SECONDS):
            try:
                end = len(buffer)
                fresh += _items(buffer[counted:end])  # only what arrived since the last look
                counted = end
                now = time.monotonic()
                if now - last < COMMIT_SECONDS and fresh < COMMIT_ITEMS:
                    continue
                last, fresh = now, 0
                # What stays (outcomes waiting for their stages' partials) is not counted
                # again: the next commit by size waits for COMMIT_ITEMS more.
                counted = max(0, end - self.commit())
            except BaseException as exc:  # keep the first failure for finish_run to raise
                self.error = exc
                return

    def commit(self, final: bool = False) -> int:
        """Write what is buffered as one batch (the writer thread calls this on a timer).

        With accumulating stages, outcomes are written up to the last
        :class:`~curator.model.state.StateMark`, in one transaction with the partials
        that cover them; the ones after it wait for theirs. ``final`` writes
        the rest too, as a batch without partials (a resume runs its ``ok``
        items again, since their contribution is unknown). Returns how many
        records it took off the front of the buffer.
        """
        with self._lock:
            buffer = self._buffer
            count = len(buffer)
            taken = 0
            if self.keeps_state:
                marked = count
                while marked and type(buffer[marked - 1]) is not StateMark:
                    marked -= 1
                if marked:
                    self._write(buffer[:marked])
                    del buffer[:marked]
                    count -= marked
                    taken = marked
                if not final:
                    return taken
            if not count:
                return taken
            # Appends from the run loop may land meanwhile; only the copied ones go.
            batch = buffer[:count]
            del buffer[:count]
            self._write(batch)
            return taken + count

    def _write(self, batch: list[Outcome | Successes | StateMark]) -> None:
        outcomes: list[Outcome | Successes] = []
        partials: list[bytes | None] = []
        for entry in batch:
            if type(entry) is StateMark:
                partials.append(entry.pickled)
            else:
                outcomes.append(entry)  # type: ignore[arg-type]
        if not outcomes:
            return
        row, failed_some = journal.encode_storable(outcomes, self._key)
        if failed_some:
            partials.append(None)  # they cover an item now recorded failed: not stored
        with self._db:
            cursor = self._db.execute(_INSERT, (self._run_id, *row))
            self._wrote = True
            # Partials are stored whole or not at all: a resume runs the ok items of
            # a batch without them again, so each counts once either way.
            if partials and None not in partials:
                self._db.execute(
                    "INSERT INTO states (journal, partials, mac) VALUES (?, ?, ?)",
                    (cursor.lastrowid, *journal.dump_signed(partials, self._key)),
                )

    def finish_run(
        self,
        counts: dict[str, int],
        interrupted: bool,
        seconds: float = 0.0,
        ran: int = 0,
        stopped: bool = False,
    ) -> None:
        """Stop the writer, commit the rest, and close the run record.

        ``seconds`` and ``ran`` (items that ran, skipped and cancelled ones
        aside) are the run's own figures, so ``curator status`` shows the
        throughput the run's summary showed. ``stopped``: the run ended early,
        not by a hard stop (see :data:`~curator.checkpoint.schema.STOPPED`).

        Raises
        ------
        UsageError
            When the checkpoint cannot be written, or its file was deleted or
            replaced during the run (what it held is then written again, see
            :mod:`curator.checkpoint.recovery`, and the message says where).
        """
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        try:
            ended = STOPPED if stopped else int(interrupted)
            self._final_commit(counts, ended, seconds, ran)
        except sqlite3.Error as exc:
            raise UsageError(sqlite_problem(self.path, exc)) from exc
        if isinstance(self.error, sqlite3.Error):
            raise UsageError(sqlite_problem(self.path, self.error)) from self.error
        if self.error is not None:
            raise self.error
        if identity_of(self.path) != self._identity:
            worth_keeping = self._wrote or not self._made
            with self._lock:
                raise UsageError(recover(self._db, self.path, self._companions, worth_keeping))

    def _final_commit(self, counts: dict[str, int], ended: int, seconds: float, ran: int) -> None:
        self.commit(final=True)
        with self._lock, self._db:
            self._db.execute(
                "UPDATE runs SET finished = ?, ok = ?, failed = ?, skipped = ?, cancelled = ?, "
                "interrupted = ?, seconds = ?, ran = ? WHERE id = ?",
                (
                    time.time(),
                    counts.get("ok", 0),
                    counts.get("failed", 0),
                    counts.get("skipped", 0),
                    counts.get("cancelled", 0),
                    ended,
                    seconds,
                    ran,
                    self._run_id,
                ),
            )

    def close(self) -> None:
        """Stop the writer if a run is still open, close the database, release the lock.

        Everything is committed by then. Closing the last connection folds the
        WAL back into the database file, so the file can be copied alone.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._writer is not None and self._writer.is_alive():
            self._writer.join()
        if self.discard_unused and self._made and not self._wrote:
            self._discard()
            return
        close_in_background(self._db, self._lock_file, self.path)

    def _discard(self) -> None:
        """Remove the checkpoint this store made (and its lock, and a folder it made)."""
        self._db.close()
        if identity_of(self.path) == self._identity:  # not a file put in its place meanwhile
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
        remove_lock(self._lock_file, self.path)
        if self._made_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only if nothing else is in it

    # -- reading ------------------------------------------------------------------

    def latest(self) -> Skippable:
        """What a resume needs of the items recorded done: outputs (verified), times, workers."""
        try:
            return skippable(self._db, self._scan(), self._key)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sqlite_error(self.path, exc) from None

    def _scan(self) -> Latest:
        return scan(self._db, self.path, self.total)

    def stored_states(
        self, latest: Latest | None = None
    ) -> tuple[list[tuple[list[bytes], list[int]]], set[int]]:
        """The accumulating stages' partials of the ``ok`` items a resume skips.

        ``latest``: every item's latest record, as :meth:`latest` read it (read
        again if not given). See :func:`curator.checkpoint.stored_states.stored_partials`.
        """
        try:
            if latest is None:
                latest = self._scan()  # also checks every batch's indices and codes
            return stored_partials(self._db, self.path, self._key, latest)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sqlite_error(self.path, exc) from None


def _items(entries: list[Outcome | Successes | StateMark]) -> int:
    """How many items' outcomes ``entries`` hold."""
    count = 0
    for entry in entries:
        kind = type(entry)
        if kind is Successes:
            count += len(entry)  # type: ignore[arg-type]
        elif kind is not StateMark:
            count += 1
    return count
