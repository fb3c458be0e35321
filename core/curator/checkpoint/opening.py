"""Which checkpoint file belongs to a pipeline, and opening it for a run.

Kept apart from the runner so that a run without a checkpoint (the Python
API's default) never imports the store, SQLite or the fingerprint's hashing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from curator.checkpoint.fingerprint import identify
from curator.checkpoint.meta import stored_fingerprint
from curator.checkpoint.plugin import asks_for_one
from curator.checkpoint.store import DEFAULT_DIR, CheckpointStore, resolve_path
from curator.model.pipeline import Pipeline


def checkpoint_path(
    pipeline: Pipeline[Any], checkpoint: str | os.PathLike[str] | bool | None
) -> Path | None:
    """Where the checkpoint of ``pipeline`` lives for a ``checkpoint=`` argument."""
    if checkpoint is True:
        _, key, earlier = identify(pipeline)
        return _default_path(key, earlier)
    return resolve_path(checkpoint)


def open_store(
    pipeline: Pipeline[Any], checkpoint: str | os.PathLike[str] | bool | None
) -> CheckpointStore | None:
    """Open (or create) the checkpoint of ``pipeline``; ``None`` when there is none."""
    if not asks_for_one(checkpoint):
        return None
    description, key, earlier = identify(pipeline)
    path = _default_path(key, earlier) if checkpoint is True else resolve_path(checkpoint)
    assert path is not None
    return CheckpointStore(
        path, key, repr(pipeline), len(pipeline), json.dumps(description),
        legacy=lambda: earlier,
    )  # fmt: skip


def _default_path(key: str, earlier_key: str) -> Path:
    """The default checkpoint: today's, or the one an earlier curator made for this pipeline.

    An earlier curator fingerprinted less (``earlier_key``, see
    :func:`~curator.checkpoint.fingerprint.legacy_fingerprint`): the file it
    made goes on being this pipeline's checkpoint while it holds that
    fingerprint, or today's (a run gave it today's): once given another
    configuration's, it is that one's, and this one gets its own file.
    """
    path = default_store_path(key)
    if path.exists() or not path.parent.is_dir():
        return path
    earlier = default_store_path(earlier_key)
    if earlier == path or not earlier.exists():
        return path
    # One that cannot be read is taken too: opening it then says what is wrong with it.
    return earlier if stored_fingerprint(earlier) in (key, earlier_key, None) else path


def default_store_path(pipeline_fingerprint: str) -> Path:
    """``.curator/<first 16 hex digits of the fingerprint>.sqlite`` in the working directory."""
    return Path(DEFAULT_DIR) / f"{pipeline_fingerprint[:16]}.sqlite"
