"""Opening a checkpoint's SQLite file: the one way to read it and the one way to write it.

Every reader (``curator status``, ``report``, ``logs``, ``run --resume`` and
``--dry-run``) opens the file with :func:`reading`, the run that writes it with
:func:`open_for_writing`. Both name the file by an SQLite URI made from the
absolute path, percent-escaped, so that a name holding ``#``, ``?`` or ``%``
means that file and no other. A reader never creates a file: SQLite's
``mode=ro`` and ``mode=rw`` open only what exists.

How a reader opens the file depends on what it may write, because a database
in WAL mode is read through a ``-shm`` index beside it:

- the folder and the file are writable: read-write, with ``query_only`` on.
  Closing the last connection then folds the WAL in and removes the ``-wal``
  and ``-shm`` files (which a ``mode=ro`` connection would leave behind);
- otherwise, a ``-wal`` file exists (a run is writing, or died): ``mode=ro``,
  which reads the WAL through the existing ``-shm``, even a read-only one;
- otherwise everything is in the database file, and the reader could not make
  the ``-shm`` it needs: ``immutable=1``, which reads the file as it is, without
  locks. (A run starting at that very moment in a folder the reader cannot
  write could change the file under it; that read fails as damaged, at worst.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from curator.model.errors import UsageError

SQLITE_HEADER = b"SQLite format 3\x00"
_DAMAGE_SIGNS = ("malformed", "not a database", "Could not decode", "corrupt")
"""What SQLite's messages say when the file's content is broken."""
BUSY_SECONDS = 30
"""How long a connection waits for another one's lock."""


def uri(path: Path, **parameters: str) -> str:
    """The SQLite URI of the file at ``path``: absolute, percent-escaped, with ``parameters``."""
    query = "&".join(f"{name}={value}" for name, value in parameters.items())
    return Path(os.path.abspath(path)).as_uri() + (f"?{query}" if query else "")


def holds_checkpoint(path: Path) -> bool:
    """Whether something is at ``path`` that must read as a checkpoint.

    An empty file, like a missing one, is a new checkpoint (``mktemp`` made
    it, say), unless the write-ahead log beside it holds content: SQLite may
    keep a new database's first pages there.
    """
    try:
        if path.stat().st_size or path.is_dir():
            return True
    except FileNotFoundError:
        return False
    except OSError:
        return True  # the reader's own error says what is wrong with it
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


def no_checkpoint(path: Path) -> UsageError:
    """The error of a reader given ``path``, where no checkpoint is (:func:`holds_checkpoint`)."""
    special = _special_kind(path)
    if special is not None:
        return NotACheckpoint(f"no checkpoint at {path}: it is not a regular file ({special})")
    empty = " (the file is empty: a run there starts a new checkpoint)" if path.exists() else ""
    return NotACheckpoint(f"no checkpoint at {path}{empty}")


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder, else ``None``.

    ``/dev/null`` reads as an empty file and is left to the checks that follow.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None


def open_for_writing(path: Path) -> sqlite3.Connection:
    """A connection for the one run that writes the checkpoint (created if missing).

    Raises
    ------
    UsageError
        When SQLite cannot open or create the file.
    """
    try:
        return sqlite3.connect(
            uri(path, mode="rwc"), uri=True, timeout=BUSY_SECONDS, check_same_thread=False,
            isolation_level=None,
        )  # fmt: skip
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open the checkpoint {path}: {exc}") from None


def open_for_reading(path: Path, *, advice: bool = True) -> sqlite3.Connection:
    """A connection that only reads the existing checkpoint at ``path`` (see the module's notes).

    ``advice``: whether its errors suggest ``--checkpoint`` (not for the commands
    that only read a checkpoint and have no such flag: ``status``, ``logs``, ``report``).

    Raises
    ------
    UsageError
        When there is no file there, it is not an SQLite file, or SQLite cannot open it.
    """
    check_file(path, advice=advice)
    if not path.is_file():
        raise UsageError(f"no checkpoint at {path}")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if writable:
        parameters = {"mode": "rw"}
    elif path.with_name(path.name + "-wal").exists():
        parameters = {"mode": "ro"}
    else:
        parameters = {"mode": "ro", "immutable": "1"}
    try:
        db = sqlite3.connect(uri(path, **parameters), uri=True, timeout=BUSY_SECONDS)
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc, advice=advice) from None
    if writable:
        db.execute("PRAGMA query_only = ON")
    return db


@contextlib.contextmanager
def reading(path: Path, *, advice: bool = True) -> Iterator[sqlite3.Connection]:
    """``with reading(path) as db``: :func:`open_for_reading`, its SQLite errors as usage errors."""
    db = open_for_reading(path, advice=advice)
    try:
        yield db
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise sqlite_error(path, exc, advice=advice) from None
    finally:
        db.close()


class DamagedCheckpoint(UsageError):
    """A checkpoint whose content cannot be what curator wrote: a clear error, exit 2."""


class NotACheckpoint(UsageError):
    """A file that is no curator checkpoint at all (not SQLite, another database, empty)."""


def damaged(path: Path, what: str) -> DamagedCheckpoint:
    """The error for the checkpoint at ``path``, damaged as ``what`` says."""
    return DamagedCheckpoint(f"{path} is damaged: {what}")


def sqlite_error(
    path: Path, exc: sqlite3.Error | UnicodeDecodeError, *, advice: bool = True
) -> UsageError:
    """An SQLite error on the checkpoint at ``path`` as a usage error (damage told apart).

    Text SQLite holds that is not UTF-8 (where Python decodes it) is damage too.
    ``advice``: as for :func:`check_file`.
    """
    if isinstance(exc, UnicodeDecodeError):
        return damaged(path, f"it holds text that is not UTF-8 ({exc})")
    broken = any(sign in str(exc) for sign in _DAMAGE_SIGNS)
    return (DamagedCheckpoint if broken else UsageError)(sqlite_problem(path, exc, advice=advice))


def check_file(path: Path, *, advice: bool = True) -> None:
    """Refuse a path that exists but is not a file SQLite could hold a checkpoint in.

    ``advice``: whether the message suggests ``--checkpoint`` (a run's; the
    commands that only read a checkpoint have no such flag).
    """
    if path.is_dir():
        raise UsageError(f"the checkpoint {path} is a folder")
    special = _special_kind(path)
    if special is not None:  # opening a FIFO would wait for a writer, forever
        hint = ". Name another file with --checkpoint" if advice else ""
        raise UsageError(
            f"the checkpoint {path} is not a regular file ({special}); it was left untouched{hint}"
        )
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot read the checkpoint {path}: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        hint = ". Name another file with --checkpoint" if advice else ""
        raise NotACheckpoint(
            f"{path} is not a curator checkpoint (not an SQLite database); it was left "
            f"untouched{hint}"
        )


def writing_problem(path: Path) -> str | None:
    """Why a run could not write the checkpoint at ``path`` (``None``: it could); creates nothing.

    The file, where it exists, and its folder (SQLite writes its journal
    beside it), or else the nearest folder that exists, where the run would
    create the rest, must be writable. What ``--dry-run`` tells, as it reads
    a checkpoint it cannot write.
    """
    if path.exists() and not os.access(path, os.W_OK):
        return f"cannot write the checkpoint {path}: it is read-only"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"cannot write the checkpoint {path}: {folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write the checkpoint {path}: the folder {folder} is not writable"
    return None


def sqlite_problem(path: Path, exc: sqlite3.Error, *, advice: bool = True) -> str:
    """What an SQLite error on the checkpoint at ``path`` means, in words.

    ``advice``: as for :func:`check_file`.
    """
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return (
            f"cannot write the checkpoint {path}: it is read-only ({text}); make it "
            "writable, or name another with --checkpoint"
        )
    if "unable to open" in text:
        return f"cannot open the checkpoint {path} ({text}); check the folder's permissions"
    hint = "; name another with --checkpoint" if advice else ""
    return f"{path} is not a usable curator checkpoint ({text}){hint}"
