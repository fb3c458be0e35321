"""A checkpoint deleted or replaced while its run wrote it: what it held is written again.

The run's connection still reads the file it opened (unlinked, or moved
aside), so nothing it recorded is lost until that connection closes: the
store copies it to the checkpoint's path, or beside it when another file took
that path, before it closes.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def recover(db: sqlite3.Connection, path: Path) -> str:
    """Write what ``db`` holds to ``path`` again (or beside it); the message that says where.

    Parameters
    ----------
    db
        The run's open connection to the checkpoint that is no longer at ``path``.
    path
        Where the checkpoint was.
    """
    gone = not path.exists()
    what = "deleted" if gone else "replaced by another file"
    target = path if gone else path.with_name(f"{path.stem}.recovered{path.suffix}")
    happened = f"the checkpoint {path} was {what} while the run was writing it"
    made = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise FileExistsError(f"{target} exists")
        made = True
        with closing(sqlite3.connect(target)) as copy:
            db.backup(copy)
    except (OSError, sqlite3.Error) as exc:
        if made:  # half a copy is no checkpoint
            target.unlink(missing_ok=True)
        return (
            f"{happened}, and what it held could not be written again ({exc}): this run's "
            "outcomes are not recorded (the results printed above are all there is)"
        )
    return (
        f"{happened}; what it held, this run's outcomes included, is written to {target} "
        f"again: `--resume --checkpoint {target}` goes on from it"
    )
