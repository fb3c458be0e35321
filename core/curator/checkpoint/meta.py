"""What a checkpoint says about itself: its schema, pipeline and item count, checked.

Its ``meta`` table holds text: the schema version, the pipeline's fingerprint,
description and number of items, the curator version that created it. Every
reader and the run that writes it go through :func:`read_meta` or
:func:`check_meta` before anything else, so that a file of another schema
(older or newer), of another pipeline, or with a damaged ``meta`` table is
refused with its own message and left untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from curator._version import __version__
from curator.checkpoint.file import NotACheckpoint, damaged, reading
from curator.model.errors import UsageError

SCHEMA_VERSION = 2
"""The checkpoint layout this curator reads and writes (see :func:`check_schema`)."""


def check_meta(
    path: Path,
    meta: dict[str, str],
    fingerprint: str,
    pipeline: str,
    legacy: Callable[[], str] | None = None,
) -> bool:
    """Refuse a checkpoint of another schema, or (given its ``fingerprint``) of another pipeline.

    ``legacy`` gives the fingerprint an earlier curator gave the pipeline (see
    :func:`curator.checkpoint.fingerprint.legacy_fingerprint`), computed only
    when the stored one is not ``fingerprint``. Returns whether the checkpoint
    is the pipeline's by that one.
    """
    check_schema(path, meta)
    stored = meta.get("fingerprint")
    if stored == fingerprint:
        return False
    if legacy is not None and stored == legacy():
        return True
    raise UsageError(
        f"the checkpoint {path} belongs to another pipeline ({meta.get('pipeline')}, "
        f"fingerprint {str(stored or '?')[:12]}); this one is {pipeline} "
        f"({fingerprint[:12]}). Use another --checkpoint, or delete {path} "
        "to start over"
    )


EARLIER_FINGERPRINT = (
    "the checkpoint {path} was made by an earlier curator, whose fingerprint did not cover "
    "the module-level values that the stages' __getitem__, __len__, __iter__ and __call__ "
    "read: it is taken as this pipeline's, as that curator took it (if such a value "
    "changed since it was made, start over with a new checkpoint), and a run gives it this "
    "curator's fingerprint"
)
"""Said when a run takes a checkpoint by the fingerprint an earlier curator gave."""


class EarlierFingerprintWarning(UserWarning):
    """A run took a checkpoint by the fingerprint an earlier curator gave its pipeline.

    The Python API warns with it; the command line says it as a notice before the run.
    """


def stored_fingerprint(path: Path) -> str | None:
    """The fingerprint the checkpoint at ``path`` holds; ``None`` if it cannot be read."""
    try:
        with reading(path, advice=False) as db:
            return read_meta(db, path).get("fingerprint")
    except (UsageError, OSError):  # damaged, of another schema: not taken for this pipeline's
        return None


def check_schema(path: Path, meta: dict[str, str]) -> None:
    """Refuse a checkpoint of a schema this curator does not read (older or newer).

    Schema 2 is read and written, also as its first releases wrote it (the
    columns and tables added since are added when a run opens it, and read as
    empty until then). Schema 1 stored pickled records, which cannot be read
    without running code from the file; a newer schema needs a newer curator.
    """
    schema, writer = meta.get("schema"), meta.get("curator", "?")
    if schema == str(SCHEMA_VERSION):
        return
    if not (isinstance(schema, str) and schema.isascii() and schema.isdigit()):
        raise damaged(path, f"its schema version is {schema!r}, not a number")
    if int(schema) > SCHEMA_VERSION:
        raise UsageError(
            f"{path} was written by a newer curator ({writer}, checkpoint schema {schema}); "
            f"this curator ({__version__}) reads schema {SCHEMA_VERSION}. Upgrade curator to "
            "read or resume it; the file was left untouched"
        )
    raise UsageError(
        f"{path} was written by curator {writer} (checkpoint schema {schema}); this curator "
        f"reads schema {SCHEMA_VERSION}. Schema 1 stored pickled records, which cannot be read "
        "without running code from the file: delete it to start over, or finish the run with "
        "the curator that wrote it"
    )


def check_layout(db: sqlite3.Connection, path: Path) -> None:
    """Refuse the journal schema 2 had before its first release (no ``workers`` column)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
    if present and "workers" not in present:
        raise UsageError(
            f"{path} was written by a development version of curator (checkpoint schema 2 "
            "before its first release: worker names per item, no workers column), which "
            "this curator does not read; it was left untouched. Delete it to start over"
        )


def read_meta(db: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The meta table of a checkpoint this curator reads (see :func:`check_schema`).

    Raises
    ------
    UsageError
        When the file is not a curator checkpoint, of another schema, or its
        meta table is damaged.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if "meta" not in tables:
        raise NotACheckpoint(f"{path} is an SQLite database but not a curator checkpoint")
    meta = {}
    for key, value in db.execute("SELECT key, value FROM meta"):
        if not (isinstance(key, str) and isinstance(value, str)):
            raise damaged(path, f"its meta table holds {key!r}: {value!r}, which is not text")
        meta[key] = value
    check_schema(path, meta)
    check_layout(db, path)
    return meta


def meta_total(meta: dict[str, str], path: Path) -> int:
    """The number of items of the checkpoint's pipeline (its meta table's ``total``)."""
    total = meta.get("total", "")
    if not (total.isascii() and total.isdigit()):
        raise damaged(path, f"its item count is {total!r}, not a number")
    return int(total)
