"""A checkpoint's tables: made when a run first writes the file, checked and migrated on open.

The one run that writes a checkpoint opens it here: a file that is not a
curator checkpoint, or one of another pipeline or schema, is refused before
anything is written (:mod:`curator.checkpoint.meta`); a new file gets the
tables and the ``meta`` rows; a file of an earlier release of schema 2 gets
the columns added since (the migration within the schema).
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from curator._version import __version__
from curator.checkpoint.file import open_for_writing, sqlite_error
from curator.checkpoint.meta import (
    EARLIER_FINGERPRINT,
    SCHEMA_VERSION,
    EarlierFingerprintWarning,
    check_layout,
    check_meta,
)
from curator.model.errors import UsageError

STOPPED = 2
"""The ``interrupted`` column of a run that ended early, not by a hard stop (its stream
was closed, the reader of its output went away, a backend failed): true to earlier
readers, ``stopped`` to ``curator status``. A hard stop (Ctrl-C, SIGTERM) is 1."""


_STATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (
    journal INTEGER PRIMARY KEY, partials BLOB NOT NULL, mac BLOB NOT NULL
);
"""
"""Accumulating stages' partials (see :mod:`curator.model.state`), one row per journal batch."""
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, backend TEXT, jobs INTEGER,
    requested INTEGER, ok INTEGER, failed INTEGER, skipped INTEGER, cancelled INTEGER,
    interrupted INTEGER, seconds REAL, ran INTEGER, settings TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL, indices BLOB NOT NULL, codes BLOB NOT NULL,
    started BLOB NOT NULL, finished BLOB NOT NULL, attempts BLOB NOT NULL,
    workers BLOB NOT NULL, info TEXT NOT NULL, outputs BLOB NOT NULL, mac BLOB NOT NULL,
    metrics BLOB, measured BLOB, sampled BLOB
);
"""
    + _STATES_SCHEMA
)
# Columns added to schema 2 after its first release, with their types: added on open.
_LATER_RUN_COLUMNS = {"seconds": "REAL", "ran": "INTEGER", "settings": "TEXT"}
_LATER_JOURNAL_COLUMNS = {"metrics": "BLOB", "measured": "BLOB", "sampled": "BLOB"}

PAGE_BYTES = 65536
"""The page size of a new checkpoint. A journal batch is a few large blobs (about 40 bytes
an item, a megabyte for a batch of small items): written in SQLite's largest pages, a
commit costs a sixteenth of the page writes of the default 4 KiB, which halves the
writer thread's time in SQLite. A file made with another page size keeps it."""
WAL_BYTES = 4 * 1024 * 1024
"""How much the WAL grows before a commit folds it into the file (SQLite's default of
1,000 pages, in bytes for any page size): folds happen during the run, beside the
workers, and the one at close stays small."""


def open_checkpoint(
    path: Path,
    fingerprint: str,
    pipeline: str,
    total: int,
    parameters: str,
    legacy: Callable[[], str] | None = None,
) -> sqlite3.Connection:
    """Open the checkpoint at ``path`` for the run that writes it (made if new, migrated if old).

    A checkpoint that is the pipeline's by the fingerprint an earlier curator
    gave it (``legacy``, see :func:`~curator.checkpoint.meta.check_meta`) is
    given today's fingerprint and description, so that from now on it is
    told apart from a run with other values of what today's covers.

    Raises
    ------
    UsageError
        When the file is not a curator checkpoint, or one of another pipeline
        or schema (nothing is written to it then).
    """
    db = open_for_writing(path)
    try:
        # Look before writing anything, even the journal mode: it is not ours yet.
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if tables and "meta" not in tables:
            raise UsageError(
                f"{path} is an SQLite database but not a curator checkpoint; it was left "
                "untouched. Name another file with --checkpoint"
            )
        meta = dict(db.execute("SELECT key, value FROM meta")) if tables else {}
        earlier = False
        if meta:
            earlier = check_meta(path, meta, fingerprint, pipeline, legacy)
            check_layout(db, path)
        if not tables:  # only an empty file takes a page size
            db.execute(f"PRAGMA page_size={PAGE_BYTES}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        page_bytes = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute(f"PRAGMA wal_autocheckpoint={max(1, WAL_BYTES // page_bytes)}")
        db.isolation_level = "DEFERRED"  # implicit transactions, committed by `with db:`
        if meta:
            _add_later_columns(db)  # the migration within schema 2
            if earlier:
                with db:
                    db.executemany(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [("fingerprint", fingerprint), ("parameters", parameters)],
                    )
                # The command line says it before the run (curator.cli.launch). It is about
                # the file, not about a line of the caller's: no stack level points anywhere.
                notice = EARLIER_FINGERPRINT.format(path=path)
                warnings.warn(notice, EarlierFingerprintWarning, stacklevel=1)
        else:
            with db:
                db.executescript(_SCHEMA)
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", str(SCHEMA_VERSION)),
                        ("fingerprint", fingerprint),
                        ("pipeline", pipeline),
                        ("total", str(total)),
                        ("created", str(time.time())),
                        ("curator", __version__),
                        ("parameters", parameters),
                    ],
                )
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        db.close()
        raise sqlite_error(path, exc) from None
    except BaseException:
        db.close()
        raise
    return db


def _add_later_columns(db: sqlite3.Connection) -> None:
    with db:
        db.execute(_STATES_SCHEMA)
        for table, later in (("runs", _LATER_RUN_COLUMNS), ("journal", _LATER_JOURNAL_COLUMNS)):
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for name, kind in later.items():
                if name not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
