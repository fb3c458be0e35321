"""Picklable records that travel from workers to the parent.

Every requested index ends in exactly one :class:`Outcome`. A backend may also
send :class:`TaskStart` records so reporters can show what each worker is
doing. Both are plain data: they cross process and machine boundaries.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass


class Status(str, enum.Enum):
    """How an index ended."""

    OK = "ok"
    """The sink returned; ``Outcome.value`` holds what it wrote."""
    FAILED = "failed"
    """The item raised; ``Outcome.error`` holds the exception and traceback."""
    CRASHED = "crashed"
    """The worker running the item died (exit code or signal in ``error``)."""
    TIMED_OUT = "timed_out"
    """The item ran longer than the run's per-item timeout."""
    SKIPPED = "skipped"
    """Not run because a checkpoint already records it as done."""
    CANCELLED = "cancelled"
    """Not run, or not finished, because the run stopped early (failure or Ctrl-C)."""

    @property
    def is_failure(self) -> bool:
        """Whether this status counts as a failure of the item."""
        return self in _FAILURES


_FAILURES = frozenset({Status.FAILED, Status.CRASHED, Status.TIMED_OUT})


@dataclass(slots=True)
class ErrorInfo:
    """What went wrong with an item, formatted where it happened.

    Attributes
    ----------
    type
        The exception's qualified type name (``"ValueError"``), or ``"WorkerCrash"``.
    message
        ``str(exception)``, or a description of the crash.
    traceback
        The formatted traceback from the worker; empty when there is none.
    exit_code
        For a crashed worker: its exit code, negative for a signal (as in
        :attr:`multiprocessing.Process.exitcode`).
    """

    type: str
    message: str
    traceback: str = ""
    exit_code: int | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Capture ``exc`` with its formatted traceback."""
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        return cls(
            type=name,
            message=str(exc),
            traceback="".join(traceback.format_exception(kind, exc, exc.__traceback__)),
        )


@dataclass(slots=True)
class TaskStart:
    """A worker began an item. Optional: backends send it when they can."""

    index: int
    worker: str
    started: float
    attempt: int = 1


@dataclass(slots=True)
class Outcome:
    """How one index ended.

    Attributes
    ----------
    index
        The pipeline index.
    status
        See :class:`Status`.
    value
        What the sink returned, for ``ok`` outcomes; ``None`` otherwise.
    error
        What went wrong, for failure statuses; ``None`` otherwise.
    worker
        Who ran it (``"main"``, ``"thread-0"``, ``"process-1"``, ...).
    started, finished
        Wall-clock times (:func:`time.time`) around the item; equal when it never ran.
    attempt
        1 for the first try; retries count up.
    """

    index: int
    status: Status
    value: list[str] | None = None
    error: ErrorInfo | None = None
    worker: str = ""
    started: float = 0.0
    finished: float = 0.0
    attempt: int = 1

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.status is Status.OK

    @property
    def duration(self) -> float:
        """Seconds the item ran."""
        return self.finished - self.started


Event = TaskStart | Outcome
"""What a backend yields to the run loop."""
