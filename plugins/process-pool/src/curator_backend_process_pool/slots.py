"""The parent's bookkeeping per worker: its pipe, chunks in flight and state."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from curator import TaskStart


@dataclass
class Chunk:
    """Indices sent to a worker in one message, and how many of them it reported."""

    indices: list[int]
    reported: int = 0  # workers run a chunk in order: the reported ones are a prefix


@dataclass
class WorkerSlot:
    """One worker process as the parent sees it: its pipe, chunks in flight and state."""

    slot: int
    process: BaseProcess
    conn: Connection
    chunks: collections.OrderedDict[int, Chunk] = field(default_factory=collections.OrderedDict)
    budget: int | None = None
    quitting: bool = False
    finished_items: int = 0
    announced: int | None = None  # running item whose start was already reported
    timed_out: int | None = None  # the item it was killed for
    over_limit: tuple[int, int] | None = None  # the item and RSS it was killed for
    last_start: TaskStart | None = None
    broken: bool = False  # its pipe failed: it is dying, its sentinel will tell
    work_of: int = 0  # the run whose work it holds
    stale: bool = False  # a module it imported changed on disk: it exits to be replaced
    ended: bool = False  # it tore down the run's stages (answered "end")
    stage: str | None = None  # the stage whose setup/teardown it announced last
    setup_overran: bool = False  # killed because its stages' setup ran past the limit

    @property
    def name(self) -> str:
        """The worker id in records: ``process-<slot>``."""
        return f"process-{self.slot}"

    def unreported(self) -> list[int]:
        """Indices sent to this worker whose records have not arrived, in order."""
        return [i for chunk in self.chunks.values() for i in chunk.indices[chunk.reported :]]
