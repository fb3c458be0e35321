"""Per-worker shard files merged when the run ends: physicsnemo-curator's stateful filters.

A stage *writes shards* when it has a ``flush()`` method, a static
``merge(paths, output)`` and an output path attribute (``output_path``, or
the origin's ``_output_path``), and does not accumulate through
``reset``/``state``/``merge`` (see :mod:`curator.state`). Such stages port
from the origin unchanged:

- in each worker, the core points the stage's output path at the worker's
  shard, ``{stem}_worker_{slot}{suffix}`` (or the path with ``{worker_id}``
  replaced by the slot), and calls ``flush()`` after every item that ended
  ``ok``: the stage appends what it gathered to its shard. After a failed
  item it calls the stage's ``reset()``, if it has one, to drop what that
  item gathered;
- when the run ends, the core calls ``merge(shards, output)`` in the run's
  process (no separate gather step) and removes the shards, unless the stage
  sets ``keep_shards``, or the run left items to do: a resume then appends to
  the same shards and merges again, so the output covers every item.

A run that does not resume starts by removing shards a former run left.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curator.pipeline import Pipeline
from curator.state import accumulates, stage_label

PATH_ATTRIBUTES = ("output_path", "_output_path")
WORKER_ID = "{worker_id}"


def path_attribute(stage: object) -> str | None:
    """The name of the stage's output path attribute, if it has one."""
    for name in PATH_ATTRIBUTES:
        if isinstance(getattr(stage, name, None), str | os.PathLike):
            return name
    return None


def writes_shards(stage: object) -> bool:
    """Whether ``stage`` follows the origin's shard style (``flush``, ``merge``, output path)."""
    return (
        callable(getattr(stage, "flush", None))
        and callable(getattr(type(stage), "merge", None))
        and path_attribute(stage) is not None
        and not accumulates(stage)
    )


def sharding_stages(pipeline: Pipeline[Any]) -> tuple[Any, ...]:
    """The pipeline's shard-writing filters and sink, in pipeline order."""
    return tuple(s for s in (*pipeline.filters, pipeline.sink) if writes_shards(s))


def shard_path(template: str | os.PathLike[str], slot: int | str) -> Path:
    """The shard of worker ``slot`` for an output path (``*`` as the slot: a glob pattern)."""
    text = os.fspath(template)
    if WORKER_ID in text:
        return Path(text.replace(WORKER_ID, str(slot)))
    path = Path(text)
    return path.with_name(f"{path.stem}_worker_{slot}{path.suffix}")


def shards_of(template: str | os.PathLike[str]) -> list[Path]:
    """The shard files (or folders) that exist for an output path, sorted."""
    pattern = shard_path(template, "*")
    return sorted(pattern.parent.glob(pattern.name))


class WorkerShards:
    """The worker side: point each stage at this worker's shard, flush, point back.

    Parameters
    ----------
    stages
        The worker's own copies of the shard-writing stages.
    """

    def __init__(self, stages: Sequence[Any]) -> None:
        self.stages = tuple(stages)
        self._restore: list[tuple[Any, str, Any]] = []

    def point(self, slot: int) -> None:
        """Make each stage write into the shard of worker ``slot``."""
        for stage in self.stages:
            name = path_attribute(stage)
            assert name is not None
            template = getattr(stage, name)
            self._restore.append((stage, name, template))
            shard = shard_path(template, slot)
            setattr(stage, name, shard if isinstance(template, Path) else os.fspath(shard))

    def flush(self) -> None:
        """Call every stage's ``flush()`` (after an ``ok`` item)."""
        for stage in self.stages:
            stage.flush()

    def drop(self) -> None:
        """After a failed item: call ``reset()`` of the stages that have one.

        Drops what the failed item gathered; a stage without ``reset()``
        flushes it with the next ``ok`` item, as in the origin.
        """
        for stage in self.stages:
            reset = getattr(stage, "reset", None)
            if callable(reset):
                reset()

    def restore(self) -> None:
        """Give each stage its output path back (sequential runs use the caller's stages)."""
        for stage, name, template in reversed(self._restore):
            setattr(stage, name, template)
        self._restore.clear()


class ShardMerge:
    """The run's process side: stale shards removed at the start, shards merged at the end.

    Parameters
    ----------
    stages
        The caller's shard-writing stages; their output paths are read now,
        before any worker (or, sequentially, the run itself) points them at a shard.
    """

    def __init__(self, stages: Sequence[Any]) -> None:
        self.outputs = [(stage, getattr(stage, path_attribute(stage) or "")) for stage in stages]

    def remove_stale(self) -> None:
        """Remove the shards a former run left (this run redoes its items)."""
        for _, output in self.outputs:
            for shard in shards_of(output):
                _remove(shard)

    def finish(self, complete: bool) -> str | None:
        """Merge every stage's shards into its output; say what went wrong, if anything.

        Shards are removed once merged, unless the stage sets ``keep_shards``
        or the run is not ``complete`` (a resume appends to them).
        """
        for stage, output in self.outputs:
            shards = shards_of(output)
            if not shards:
                continue
            try:
                merged = type(stage).merge([os.fspath(p) for p in shards], os.fspath(output))
            except Exception as exc:
                return (
                    f"the stage {stage_label(stage)} could not merge its {len(shards)} shard "
                    f"files into {os.fspath(output)}: merge() raised {type(exc).__name__}: "
                    f"{exc} (the shards are kept)"
                )
            if merged is None:
                return (
                    f"the stage {stage_label(stage)}'s merge(paths, output) returned nothing: "
                    "it must return the path it wrote (the shards are kept)"
                )
            if complete and not getattr(stage, "keep_shards", False):
                for shard in shards:
                    _remove(shard)
        return None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
