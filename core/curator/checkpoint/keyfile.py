"""The user's secret key that signs the pickled data of checkpoints (:mod:`~.journal`).

Whoever can read the key can forge a checkpoint that runs code when its owner
resumes it, and whoever can write it can make it one they know. So, as ssh
does with private keys, a key file is used only when it is a regular file of
this user's that no one else can read or write, and only when it holds a
whole key: an empty or short one would sign nothing an attacker could not
sign too.

A new key appears whole or not at all: it is written to a private temporary
file in the key's folder and linked to its name, which fails if another
process made the key meanwhile; then both use the one that is there. A
reader that finds a short file (a curator older than this one creates the
key, then writes it) looks again for a moment before refusing it.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from curator.model.errors import UsageError

KEY_ENV = "CURATOR_KEY_FILE"
"""Environment variable naming the key file (default: ``~/.config/curator/checkpoint.key``)."""

KEY_BYTES = 32
"""Length of a key curator makes, and the least it accepts (HMAC-SHA256's output size)."""

READ_TRIES = 20
READ_RETRY_SECONDS = 0.05
"""How long a reader waits for a short key file to be completed: 20 looks, 1 s in all."""


def key_path() -> Path:
    """Where this user's checkpoint key lives."""
    given = os.environ.get(KEY_ENV)
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join("~", ".config")
    return Path(config).expanduser() / "curator" / "checkpoint.key"


def user_key() -> bytes:
    """Return the secret signing key of this user, made (owner-readable only) on first use.

    Raises
    ------
    UsageError
        When the key can neither be read nor created, or the file found is
        no safe key: not private, another user's, empty or short.
    """
    path = key_path()
    key = _read(path)
    return key if key is not None else _create(path)


def existing_key() -> bytes | None:
    """The key of this user if there is one, checked as :func:`user_key` checks it; never made.

    For a look that must not create files (``curator run --resume --dry-run``).
    """
    return _read(key_path())


def _read(path: Path) -> bytes | None:
    """The key at ``path``, checked; ``None`` if there is no file."""
    for _ in range(READ_TRIES):
        try:
            # Non-blocking: a FIFO put in the key's place must not hang the run.
            handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot read the checkpoint key {path}: {exc.strerror}") from None
        # Checked before fdopen, which itself refuses a directory with an OSError.
        try:
            _check_private(path, os.fstat(handle))
        except UsageError:
            os.close(handle)
            raise
        with os.fdopen(handle, "rb") as source:
            key = source.read()
        if len(key) >= KEY_BYTES:
            return key
        time.sleep(READ_RETRY_SECONDS)
    size = "is empty" if not key else f"holds {len(key)} bytes; a key needs at least {KEY_BYTES}"
    raise UsageError(
        f"the checkpoint key {path} {size}: anyone could forge what it signs. Delete it, "
        "and curator makes a new one (checkpoints signed with it can then no longer be "
        f"resumed), or point {KEY_ENV} at a key of at least {KEY_BYTES} random bytes"
    )


def _check_private(path: Path, info: os.stat_result) -> None:
    """Refuse what is not a regular file of this user's that only this user can use."""
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"the checkpoint key {path} is not a regular file")
    if info.st_uid != os.geteuid():
        fix = (
            f"unset {KEY_ENV}, or point it at a key of your own"
            if os.environ.get(KEY_ENV)
            else f"delete it, and curator makes a new one (or set {KEY_ENV} to a key of your own)"
        )
        raise UsageError(
            f"the checkpoint key {path} belongs to another user (uid {info.st_uid}), who could "
            f"forge checkpoints that run code when you resume them: {fix}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise UsageError(
            f"the checkpoint key {path} is open to other users (mode 0{mode:03o}), who could "
            f"forge checkpoints that run code when you resume them. Make it private: "
            f"chmod 600 {path}"
        )


def _create(path: Path) -> bytes:
    """Make a new key at ``path`` whole at once; the key there afterwards (maybe another's)."""
    import secrets  # here: once per user, and tempfile alone is 4 ms of every checkpoint's start
    import tempfile

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    except OSError as exc:
        raise UsageError(
            f"cannot create the checkpoint key {path} ({exc.strerror}); set {KEY_ENV} to a "
            "writable path, or run with --no-checkpoint"
        ) from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # never replaces: a key made meanwhile wins
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: create, then write
            _create_in_place(path, Path(temporary).read_bytes())
    finally:
        os.unlink(temporary)
    key = _read(path)
    if key is None and path.is_symlink():
        raise UsageError(
            f"the checkpoint key {path} is a symbolic link to {os.readlink(path)}, which does "
            f"not exist: remove the link, or point {KEY_ENV} at a key file"
        )
    if key is None:
        raise UsageError(f"the checkpoint key {path} vanished as it was made; run again")
    return key


def _create_in_place(path: Path, key: bytes) -> None:
    """Where links are not supported: readers of a key still being written wait for it."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise UsageError(f"cannot create the checkpoint key {path} ({exc.strerror})") from None
    with os.fdopen(handle, "wb") as out:
        out.write(key)
