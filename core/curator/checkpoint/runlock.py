"""The run lock of a checkpoint: ``<checkpoint>.lock``, held by the one run that writes it.

The lock is an exclusive ``flock`` on a small file that says who holds it
(``pid N on HOST, since ...``). The file sits beside the checkpoint, often in
a shared folder, so it is opened without following a symbolic link
(``O_NOFOLLOW``) and used only if it is a regular file with no other name (a
hard link to another file would be overwritten through it): otherwise the
run is refused, and whatever the link points to is left untouched.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import IO

from curator.model.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""Non-blocking too: a FIFO put in the lock's place must not hang the run."""


def lock_path(checkpoint: Path) -> Path:
    """Where the run lock of ``checkpoint`` lives."""
    return checkpoint.with_name(checkpoint.name + ".lock")


def has_lock_file(checkpoint: Path) -> bool:
    """Whether anything is at the lock's name of ``checkpoint`` (a link counts).

    Asked before :func:`take_lock`: a run refused once it holds the lock
    removes a lock file it made, and only that one (:func:`give_back_refused`).
    """
    return os.path.lexists(lock_path(checkpoint))


def give_back_refused(handle: IO[str] | None, checkpoint: Path, made: bool) -> None:
    """Let go of the lock of a file that was then refused (no checkpoint, another's).

    ``made``: taking the lock made its file (see :func:`has_lock_file`), which
    then goes too, so that nothing is left beside the user's file.
    """
    if made:
        remove_lock(handle, checkpoint)
    else:
        release_lock(handle)


def take_lock(checkpoint: Path) -> IO[str] | None:
    """Take the run lock of ``checkpoint`` (``None`` where there is no ``flock``).

    Raises
    ------
    UsageError
        When another run holds it (naming that run), or the lock's name is
        a link or not a regular file.
    """
    if fcntl is None:
        return None
    path = lock_path(checkpoint)
    while True:
        handle = _open(path)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "another process"
            handle.close()
            raise _in_use(checkpoint, holder) from None
        if _still_named(handle, path):
            break
        handle.close()  # its run removed it meanwhile: lock the file that has the name now
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}, since {time.ctime()}\n")
    handle.flush()
    return handle


def check_not_in_use(checkpoint: Path) -> None:
    """Refuse as :func:`take_lock` would, but take nothing and make no file (a dry run).

    Raises
    ------
    UsageError
        When another run holds the lock, naming that run.
    """
    if fcntl is None:
        return
    try:
        fd = os.open(lock_path(checkpoint), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # no lock (or none this reader may open): the run's own check decides
    with os.fdopen(fd) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(checkpoint, handle.read().strip() or "another process") from None
        except OSError:
            return
        fcntl.flock(handle, fcntl.LOCK_UN)


def _in_use(checkpoint: Path, holder: str) -> UsageError:
    return UsageError(
        f"the checkpoint {checkpoint} is in use by another curator run ({holder}); "
        "wait for it to finish, or use another --checkpoint"
    )


def release_lock(handle: IO[str] | None) -> None:
    """Release a lock taken by :func:`take_lock`."""
    if handle is not None:
        handle.close()  # closing the file releases the lock


def remove_lock(handle: IO[str] | None, checkpoint: Path) -> None:
    """Remove the lock file of ``checkpoint`` (its checkpoint is gone), then release it.

    Removed while still held: a run that opened the old file meanwhile finds,
    once it has the lock, that the name is no longer that file's, and takes
    the lock anew (see :func:`take_lock`).
    """
    if handle is not None and _still_named(handle, lock_path(checkpoint)):
        os.unlink(lock_path(checkpoint))
    release_lock(handle)


def _open(path: Path) -> IO[str]:
    try:
        descriptor = os.open(path, _FLAGS, 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise UsageError(
                f"the checkpoint lock {path} is a symbolic link (to {os.readlink(path)}); "
                "curator never writes a lock through a link. Remove the link, or use "
                "another --checkpoint"
            ) from None
        raise UsageError(f"cannot create the checkpoint lock {path}: {exc.strerror}") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        what = "a hard link to another file" if stat.S_ISREG(info.st_mode) else "a special file"
        raise UsageError(
            f"the checkpoint lock {path} is not a file of its own ({what}); curator would "
            "overwrite it. Remove it, or use another --checkpoint"
        )
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "r+")


def _still_named(handle: IO[str], path: Path) -> bool:
    """Whether ``path`` still names the file ``handle`` has open."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def lock_holder(path: Path) -> tuple[int, str] | None:
    """``(pid, host)`` of the last run that locked the checkpoint at ``path``, if known."""
    try:
        text = path.with_name(path.name + ".lock").read_text()
    except OSError:
        return None
    words = text.split()
    if len(words) >= 4 and words[0] == "pid" and words[1].isdigit() and words[2] == "on":
        return int(words[1]), words[3].rstrip(",")
    return None
