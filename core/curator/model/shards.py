"""Shard files merged when the run ends: physicsnemo-curator's stateful filters, item by item.

A stage *writes shards* when it has a ``flush()`` method, a static
``merge(paths, output)`` and an output path attribute (``output_path``, or
the origin's ``_output_path``), and does not accumulate through
``reset``/``state``/``merge`` (see :mod:`curator.model.state`). Such stages port
from the origin unchanged, and their merged output holds the rows of each
item recorded ``ok`` exactly once, whatever died on the way:

- each item writes its own shard, ``{stem}_item_{index}{suffix}`` (or the
  path with ``{worker_id}`` replaced by ``item_{index}``). While the item
  runs, the stage's output path points at a hidden partial file beside it,
  ``.partial-{token}-{shard name}``; after the item's ``flush()``, once its
  value is known to be storable, the partial takes the shard's name
  (:func:`os.replace`). An item that fails drops its partial (and the stage's
  ``reset()``, if it has one, drops what it gathered); an item that writes
  nothing removes what an earlier attempt of it left;
- when the run ends, the run's process calls ``merge(shards, output)`` with
  the shards of the items recorded ``ok`` (in this run, or by the checkpoint
  a resume continues), in item order. A shard of any other item (its worker
  died before its record reached the run, the run itself was killed, its
  value could not be stored) is never merged, and is removed: a resume runs
  that item again and it writes its shard anew, so no item counts twice.
  Shards are removed once merged, unless the stage sets ``keep_shards``, or
  the run left items to do: a resume then merges them with its own.

A run that does not resume starts by removing shards a former run left.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from curator.model.pipeline import Pipeline
from curator.model.state import accumulates, stage_label

if TYPE_CHECKING:
    from pathlib import Path

PATH_ATTRIBUTES = ("output_path", "_output_path")
WORKER_ID = "{worker_id}"
ITEM = "item_"
PARTIAL = ".partial-"
"""How a shard being written is named: hidden, beside the shard, never merged."""


def path_attribute(stage: object, kinds: tuple[type, ...] = (str, os.PathLike)) -> str | None:
    """The name of the stage's output path attribute (a value of one of ``kinds``), if any."""
    for name in PATH_ATTRIBUTES:
        if isinstance(getattr(stage, name, None), kinds):
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


def shard_path(template: str | os.PathLike[str], index: int | str) -> Path:
    """The shard of item ``index`` for an output path (``*`` as the index: a glob pattern)."""
    from pathlib import Path  # here: every worker imports this module, few write shards

    text = os.fspath(template)
    if WORKER_ID in text:
        return Path(text.replace(WORKER_ID, f"{ITEM}{index}"))
    path = Path(text)
    return path.with_name(f"{path.stem}_{ITEM}{index}{path.suffix}")


def shards_of(template: str | os.PathLike[str]) -> dict[int, Path]:
    """The shard files (or folders) that exist for an output path, by item."""
    import glob  # here: a worker's start (which imports this module) has no use for it

    head, _, tail = shard_path(template, "*").name.partition("*")
    folder = shard_path(template, 0).parent
    found: dict[int, Path] = {}
    for path in folder.glob(glob.escape(head) + "*" + glob.escape(tail)):
        middle = path.name[len(head) : len(path.name) - len(tail)]
        if middle.isascii() and middle.isdigit():
            found[int(middle)] = path
    return found


def partials_of(template: str | os.PathLike[str]) -> list[Path]:
    """The partial shards (items that never finished writing) that exist for an output path."""
    import glob

    pattern = shard_path(template, "*")
    head, _, tail = pattern.name.partition("*")
    name = glob.escape(PARTIAL) + "*-" + glob.escape(head) + "*" + glob.escape(tail)
    return sorted(pattern.parent.glob(name))


class WorkerShards:
    """The worker side: each item writes into its own partial shard, named once it is good.

    Parameters
    ----------
    stages
        The worker's own copies of the shard-writing stages (their output
        paths, read now, are the templates of the shards' names).
    """

    def __init__(self, stages: Sequence[Any]) -> None:
        self.stages = tuple(stages)
        self._templates: list[tuple[Any, str, Any]] = []
        for stage in self.stages:
            name = path_attribute(stage)
            assert name is not None
            self._templates.append((stage, name, getattr(stage, name)))
        self._pending: dict[Path, Path] = {}

    def begin(self, index: int) -> None:
        """Point each stage at a partial shard of item ``index`` (before the item runs)."""
        import secrets  # here: every worker imports this module, few write shards
        from pathlib import Path

        token = secrets.token_hex(6)
        pending: dict[Path, Path] = {}
        for stage, name, template in self._templates:
            final = shard_path(template, index)
            partial = pending.setdefault(final, final.with_name(f"{PARTIAL}{token}-{final.name}"))
            setattr(stage, name, partial if isinstance(template, Path) else os.fspath(partial))
        self._pending = pending

    def flush(self) -> None:
        """Call every stage's ``flush()`` (after an ``ok`` item): it writes the partial shard."""
        for stage in self.stages:
            stage.flush()

    def commit(self) -> None:
        """The item is ``ok``: its partial shards take their names.

        An item that wrote nothing removes the shard an earlier attempt of it
        left, so its shard is always this attempt's.
        """
        try:
            for final, partial in self._pending.items():
                if os.path.lexists(partial):
                    if final.is_dir() and not final.is_symlink():
                        import shutil

                        shutil.rmtree(final)
                    os.replace(partial, final)
                else:
                    _remove(final)
        finally:
            self.discard()

    def drop(self) -> None:
        """After a failed item: drop its partial shards, and what the stages gathered.

        Calls ``reset()`` of the stages that have one; a stage without it
        flushes what the failed item gathered with its worker's next item.
        """
        for stage in self.stages:
            reset = getattr(stage, "reset", None)
            if callable(reset):
                reset()
        self.discard()

    def discard(self) -> None:
        """Remove the item's partial shards; point each stage at its output path again."""
        for partial in self._pending.values():
            _remove(partial)
        self._pending = {}
        for stage, name, template in self._templates:
            setattr(stage, name, template)


class ShardMerge:
    """The run's process side: stale shards removed at the start, ``ok`` shards merged at the end.

    Parameters
    ----------
    stages
        The caller's shard-writing stages; their output paths are read now,
        before any item points them at a shard.
    """

    def __init__(self, stages: Sequence[Any]) -> None:
        self.outputs = [(stage, getattr(stage, path_attribute(stage) or "")) for stage in stages]

    def remove_stale(self) -> None:
        """Remove the shards a former run left (this run redoes its items)."""
        for _, output in self.outputs:
            for shard in [*shards_of(output).values(), *partials_of(output)]:
                _remove(shard)

    def finish(self, complete: bool, ok: Callable[[int], bool]) -> str | None:
        """Merge each stage's shards of the items ``ok`` says are; say what went wrong, if anything.

        The shards of other items, and partial ones, are removed first: no
        ``ok`` record covers their rows. The merged shards are removed too,
        unless the stage sets ``keep_shards`` or the run is not ``complete``
        (a resume merges them again, with its own).
        """
        for stage, output in self.outputs:
            shards: list[Path] = []
            for index, shard in sorted(shards_of(output).items()):
                if ok(index):
                    shards.append(shard)
                else:
                    _remove(shard)
            for partial in partials_of(output):
                _remove(partial)
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
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
