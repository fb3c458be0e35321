"""The user's secret key that signs the pickled data of checkpoints (see :mod:`curator.journal`)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from curator.errors import UsageError

KEY_ENV = "CURATOR_KEY_FILE"
"""Environment variable naming the key file (default: ``~/.config/curator/checkpoint.key``)."""


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
        When the key can neither be read nor created.
    """
    path = key_path()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot read the checkpoint key {path}: {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot create the checkpoint key {path} ({exc}); set {KEY_ENV} to a writable "
            "path, or run with --no-checkpoint"
        ) from None
    key = secrets.token_bytes(32)
    with os.fdopen(handle, "wb") as out:
        out.write(key)
    return key
