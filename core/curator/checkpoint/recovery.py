"""A checkpoint deleted or replaced while its run wrote it: what it held is written again.

The run's connection still reads the file it opened (unlinked, or moved
aside), so nothing it recorded is lost until that connection closes: the
store copies it to the checkpoint's path, or beside it when another file took
that path, before it closes. The run's own ``-wal`` and ``-shm`` files are
removed from beside the path first: SQLite would read them as the journal of
whatever file holds the path now, and write the run's pages over it.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from contextlib import closing, suppress
from pathlib import Path

Identity = tuple[int, int]
"""A file's device and inode."""

COMPANIONS = ("-wal", "-shm")
"""The files SQLite keeps beside a checkpoint in WAL mode."""

TRIES = 100
"""Names tried beside a replaced checkpoint: ``NAME.recovered.sqlite``, then ``-2``, ``-3``..."""


def identity_of(path: Path | str) -> Identity | None:
    """The device and inode of the file at ``path`` now (``None``: nothing there)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def companions(path: Path) -> dict[str, Identity]:
    """The identities of the ``-wal`` and ``-shm`` files beside ``path`` now (its run's own)."""
    found = {suffix: identity_of(f"{path}{suffix}") for suffix in COMPANIONS}
    return {suffix: identity for suffix, identity in found.items() if identity is not None}


def recover(
    db: sqlite3.Connection, path: Path, own: dict[str, Identity], worth_keeping: bool
) -> str:
    """Write what ``db`` holds to ``path`` again (or beside it); the message that says where.

    Parameters
    ----------
    db
        The run's open connection to the checkpoint that is no longer at ``path``.
    path
        Where the checkpoint was.
    own
        Its run's ``-wal`` and ``-shm`` files (:func:`companions`), removed from
        beside ``path`` whatever happens.
    worth_keeping
        ``False`` when the run made the checkpoint and recorded nothing in it:
        nothing is written then.
    """
    _drop(path, own)
    gone = not path.exists()
    what = "deleted" if gone else "replaced by another file"
    happened = f"the checkpoint {path} was {what} while the run was writing it"
    if not worth_keeping:
        return f"{happened} (it held nothing yet: nothing is recorded)"
    names = [path] if gone else []
    names += [path.with_name(f"{path.stem}.recovered{path.suffix}")]
    names += [path.with_name(f"{path.stem}.recovered-{n}{path.suffix}") for n in range(2, TRIES)]
    target = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = _claim(names)
        if target is None:
            raise FileExistsError(f"{names[-1]} and the {len(names) - 1} names before it exist")
        with closing(sqlite3.connect(target)) as copy:
            db.backup(copy)
    except (OSError, sqlite3.Error) as exc:
        if target is not None:  # half a copy is no checkpoint
            target.unlink(missing_ok=True)
        return (
            f"{happened}, and what it held could not be written again ({exc}): this run's "
            "outcomes are not recorded (the results printed above are all there is)"
        )
    return (
        f"{happened}; what it held, this run's outcomes included, is written to {target} "
        f"again: `--resume --checkpoint {shlex.quote(str(target))}` goes on from it"
    )


def _drop(path: Path, own: dict[str, Identity]) -> None:
    """Remove the run's own ``-wal`` and ``-shm`` from beside ``path`` (not files of others)."""
    for suffix, identity in own.items():
        name = f"{path}{suffix}"
        if identity_of(name) == identity:
            with suppress(OSError):
                os.unlink(name)


def _claim(names: list[Path]) -> Path | None:
    """The first of ``names`` that did not exist, made empty here (so no one else takes it)."""
    for name in names:
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return name
    return None
