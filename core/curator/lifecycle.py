"""Which worker this is, and the per-worker ``setup``/``teardown`` of stages.

A stage (the source, a filter or the sink) that holds a per-worker resource (a
GPU, an open database, a model) defines ``setup(worker)`` and ``teardown()``.
Every backend calls them through :meth:`curator.Work.setup` and
:meth:`curator.Work.teardown`: once per worker and round, before the worker's
first item and after its last, on the worker's own copy of the pipeline.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from curator.errors import UsageError
from curator.pipeline import Pipeline
from curator.shards import writes_shards


@dataclass(frozen=True)
class WorkerInfo:
    """Who runs the items: handed to stages' ``setup(worker)`` and to initializers.

    Attributes
    ----------
    slot
        ``0 .. jobs-1``: stable for the run, and kept by a worker that replaces
        a crashed one (so ``CUDA_VISIBLE_DEVICES={slot}`` stays right).
    backend
        The backend's name.
    jobs
        How many workers the run has.
    pid, host
        The worker's process and machine.
    """

    slot: int
    backend: str
    jobs: int
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)


def stages(pipeline: Pipeline[Any]) -> Iterator[object]:
    """The pipeline's stages in order: source, filters, sink."""
    yield pipeline.source
    yield from pipeline.filters
    if pipeline.sink is not None:
        yield pipeline.sink


def has_hooks(pipeline: Pipeline[Any]) -> bool:
    """Whether a stage of ``pipeline`` defines ``setup`` or ``teardown``, or writes shards.

    Shard-writing stages (see :mod:`curator.shards`) need the worker's slot too.
    """
    return any(
        callable(getattr(stage, "setup", None))
        or callable(getattr(stage, "teardown", None))
        or writes_shards(stage)
        for stage in stages(pipeline)
    )


def set_up(pipeline: Pipeline[Any], worker: WorkerInfo) -> list[object]:
    """Call ``setup(worker)`` on every stage that has one; return the stages set up.

    Raises
    ------
    UsageError
        Naming the stage whose ``setup`` raised; the stages already set up
        are torn down first.
    """
    done: list[object] = []
    for stage in stages(pipeline):
        hook = getattr(stage, "setup", None)
        if not callable(hook):
            continue
        try:
            hook(worker)
        except Exception as exc:
            tear_down(done)
            raise UsageError(
                f"{_name(stage)}.setup(worker) raised {type(exc).__name__}: {exc} "
                f"(worker {worker.slot} of {worker.backend!r})"
            ) from exc
        done.append(stage)
    return done


def tear_down(stages_set_up: list[object]) -> None:
    """Call ``teardown()`` on ``stages_set_up``, last first, each even if another raised.

    Raises
    ------
    UsageError
        Naming every stage whose ``teardown`` raised.
    """
    problems = []
    for stage in reversed(stages_set_up):
        hook = getattr(stage, "teardown", None)
        if not callable(hook):
            continue
        try:
            hook()
        except Exception as exc:
            problems.append(f"{_name(stage)}.teardown() raised {type(exc).__name__}: {exc}")
    if problems:
        raise UsageError("; ".join(problems))


def _name(stage: object) -> str:
    return getattr(stage, "__qualname__", None) or type(stage).__qualname__
