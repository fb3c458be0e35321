"""Closing a checkpoint in the background: the WAL folded into the file, then the lock let go.

Folding the WAL in costs an fsync (about 15 ms): it is done in a thread the
interpreter waits for at exit (not a daemon), so a run returns at once and the
file is whole when the process ends. The run lock is released after it, and a
new store on the same file in this process waits for it (:func:`wait_closed`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

from curator.checkpoint.runlock import release_lock

_CLOSING: dict[str, threading.Thread] = {}
_CLOSING_LOCK = threading.Lock()


def _key(path: Path) -> str:
    return os.path.abspath(path)


def close_in_background(db: sqlite3.Connection, lock_file: Any, path: Path) -> None:
    """Close ``db`` and then release ``lock_file`` in a thread :func:`wait_closed` can join.

    While the interpreter shuts down (a stream nobody closed, finalized with the
    script's globals) no thread can start any more: it closes here and now.
    """
    if sys.is_finalizing():
        _close(db, lock_file)
        return
    closer = threading.Thread(target=_close, args=(db, lock_file), name="curator-checkpoint-close")
    with _CLOSING_LOCK:
        _CLOSING[_key(path)] = closer
    closer.start()


def _close(db: sqlite3.Connection, lock_file: Any) -> None:
    try:
        db.close()
    finally:
        release_lock(lock_file)


def wait_closed(path: Path | None = None) -> None:
    """Wait until stores closed in this process (the one at ``path``, or all) are on disk.

    A closed store folds its WAL into the database file in the background;
    after this, the ``.sqlite`` file alone holds everything and can be copied.
    """
    with _CLOSING_LOCK:
        if path is None:
            closing = list(_CLOSING.values())
            _CLOSING.clear()
        else:
            closing = [t for t in [_CLOSING.pop(_key(path), None)] if t is not None]
    for thread in closing:
        thread.join()
