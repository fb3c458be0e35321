"""A reporter that records every event hook call, for tests of backends and plugins.

The kit checks event order with it, and backend authors can use it in tests of
their own::

    from curator.testing.events import EventRecorder

    events = EventRecorder()
    curator.run(pipeline, backend="mine", reporter=events)
    assert events.indices("task_finish") == list(range(len(pipeline)))
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Literal

from curator import Outcome, Reporter, RunInfo, RunResult, Status, TaskStart, hookimpl

Hook = Literal["run_start", "task_start", "task_finish", "run_finish"]


@dataclass(frozen=True)
class RecordedEvent:
    """One event hook call, with where and when it ran.

    Attributes
    ----------
    hook
        Which hook: ``run_start``, ``task_start``, ``task_finish`` or ``run_finish``.
    index
        The item of a task event; ``None`` for run events.
    count
        Items planned (``run_start``) or outcomes returned (``run_finish``).
    status, worker, attempt
        Of the task event (``status`` on finishes only).
    pid, thread
        The process and thread that called the hook.
    at
        ``time.monotonic()`` when the hook was called.
    """

    hook: Hook
    index: int | None
    count: int | None
    status: Status | None
    worker: str | None
    attempt: int | None
    pid: int
    thread: int
    at: float


class EventRecorder(Reporter):
    """Records every event hook call in :attr:`events`, in call order."""

    name = "event-recorder"
    description = "Records every event hook call (for tests)."

    def __init__(self) -> None:
        super().__init__()
        self.events: list[RecordedEvent] = []

    def _record(
        self,
        hook: Hook,
        *,
        index: int | None = None,
        count: int | None = None,
        status: Status | None = None,
        worker: str | None = None,
        attempt: int | None = None,
    ) -> None:
        self.events.append(
            RecordedEvent(
                hook,
                index,
                count,
                status,
                worker,
                attempt,
                os.getpid(),
                threading.get_ident(),
                time.monotonic(),
            )
        )

    @hookimpl
    def curator_run_start(self, run: RunInfo) -> None:
        """Record the start of a run with its item count."""
        self._record("run_start", count=run.total)

    @hookimpl
    def curator_task_start(self, start: TaskStart) -> None:
        """Record an item's start."""
        self._record("task_start", index=start.index, worker=start.worker, attempt=start.attempt)

    @hookimpl
    def curator_task_finish(self, outcome: Outcome) -> None:
        """Record an item's outcome."""
        self._record(
            "task_finish",
            index=outcome.index,
            status=outcome.status,
            worker=outcome.worker,
            attempt=outcome.attempt,
        )

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        """Record the end of a run with its outcome count."""
        self._record("run_finish", count=len(result.outcomes))

    def of(self, hook: Hook) -> list[RecordedEvent]:
        """The recorded calls of one hook, in order."""
        return [event for event in list(self.events) if event.hook == hook]

    def indices(self, hook: Hook) -> list[int]:
        """The item indices of one task hook's calls, in order."""
        return [event.index for event in self.of(hook) if event.index is not None]

    def hooks_of(self, index: int) -> list[Hook]:
        """The task hooks called for item ``index``, in order."""
        return [event.hook for event in list(self.events) if event.index == index]

    def unfinished(self) -> list[int]:
        """Indices with a start event and no finish event."""
        return sorted(set(self.indices("task_start")) - set(self.indices("task_finish")))

    def callers(self) -> set[tuple[int, int]]:
        """The (process, thread) pairs that called any hook."""
        return {(event.pid, event.thread) for event in list(self.events)}
