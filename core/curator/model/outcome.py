"""Picklable records that travel from workers to the parent.

Every requested index ends in exactly one :class:`Outcome`. A backend may also
send :class:`TaskStart` records so reporters can show what each worker is
doing. Both are plain data: they cross process and machine boundaries.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Iterator, Sequence
from typing import Any

from curator.model.captured import Captured
from curator.model.measures import Metrics, rows_read
from curator.model.printable import printable
from curator.model.record import Record


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
    """Never started, because the run stopped early (failure budget, Ctrl-C)."""
    INTERRUPTED = "interrupted"
    """Was running when a hard stop (second Ctrl-C, end of the grace period, SIGTERM) ended it."""

    @property
    def label(self) -> str:
        """The status as people read it: ``timed out`` for ``timed_out``."""
        return self.value.replace("_", " ")

    @property
    def is_failure(self) -> bool:
        """Whether this status counts as a failure of the item."""
        return self in _FAILURES


_FAILURES = frozenset({Status.FAILED, Status.CRASHED, Status.TIMED_OUT})


class ErrorKind(str, enum.Enum):
    """The failures curator names itself: the :attr:`ErrorInfo.type` it gives them.

    An item's own exception is named by its class (``"ValueError"``) instead;
    :attr:`ErrorInfo.kind` tells the two apart. The values are what
    checkpoints and JSON events hold.
    """

    WORKER_CRASH = "WorkerCrash"
    """The worker running the item died (``crashed``)."""
    TIMEOUT = "Timeout"
    """The item ran past the item timeout and its worker was killed (``timed_out``)."""
    MEMORY_LIMIT = "MemoryLimit"
    """The item's worker went over the memory limit and was killed (``failed``)."""
    UNPICKLABLE_RESULT = "UnpicklableResult"
    """The sink returned a value that cannot be sent or stored (``failed``)."""
    UNPICKLABLE_STATE = "UnpicklableState"
    """A stage's ``state()`` cannot be sent or stored (``failed``)."""
    SETUP_TIMEOUT = "SetupTimeout"
    """The worker's stage setup ran past its limit before the item ran (``failed``)."""
    INTERRUPTED = "Interrupted"
    """A hard stop ended the run while the item ran (``interrupted``)."""


_KINDS = {kind.value: kind for kind in ErrorKind}


class ErrorInfo(Record):
    """What went wrong with an item, formatted where it happened.

    Attributes
    ----------
    type
        The exception's qualified type name (``"ValueError"``), or the value of
        an :class:`ErrorKind` (``"WorkerCrash"``) for a failure curator names.
    message
        ``str(exception)``, or a description of the crash.
    traceback
        The formatted traceback from the worker; empty when there is none.
    exit_code
        For a crashed worker: its exit code, negative for a signal (as in
        :attr:`multiprocessing.Process.exitcode`).
    """

    _fields = ("type", "message", "traceback", "exit_code")
    __slots__ = _fields
    type: str
    message: str
    traceback: str
    exit_code: int | None

    def __init__(
        self, type: str, message: str, traceback: str = "", exit_code: int | None = None
    ) -> None:
        self.type = type
        self.message = message
        self.traceback = traceback
        self.exit_code = exit_code

    @property
    def kind(self) -> ErrorKind | None:
        """The :class:`ErrorKind` of a failure curator names; ``None`` for an item's exception."""
        return _KINDS.get(self.type)

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Capture ``exc`` with its formatted traceback.

        Never raises: an exception whose ``__str__`` raises gets a placeholder
        message, and its traceback is formatted without the message line.
        """
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        try:
            message = str(exc)
        except Exception as broken:
            message = f"<unprintable {name}: str() raised {type(broken).__name__}>"
        import traceback  # here: a worker starts without it (logging's import needs it too)

        try:
            trace = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
        except Exception:
            stack = "".join(traceback.format_tb(exc.__traceback__))
            trace = f"Traceback (most recent call last):\n{stack}{name}: {message}\n"
        return cls(type=name, message=message, traceback=trace)

    def headline(self) -> str:
        """``"Type: message"`` on one line, safe to print (see :mod:`curator.model.printable`)."""
        return printable(f"{self.type}: {self.message}")

    def details(self) -> str:
        """The traceback (the :meth:`headline` when there is none), safe to print."""
        trace = self.traceback.rstrip()
        return printable(trace, lines=True) if trace else self.headline()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | list[Any]) -> ErrorInfo:
        """The error :meth:`to_json` gave.

        Also reads the ``[type, message, traceback, exit_code]`` list that
        checkpoints of earlier versions hold.
        """
        if isinstance(data, list):
            return cls(*data)
        return cls(data["type"], data["message"], data.get("traceback", ""), data.get("exit_code"))

    @classmethod
    def unpicklable_result(cls, value: object, exc: BaseException) -> ErrorInfo:
        """The error of an item whose result ``value`` failed to pickle with ``exc``.

        Its type is ``"UnpicklableResult"``: the result can be neither sent to
        the parent nor stored in the checkpoint.
        """
        cause = cls.from_exception(exc)
        return cls(
            type=ErrorKind.UNPICKLABLE_RESULT.value,
            message=f"the result (a {type(value).__qualname__}) cannot be pickled, so it cannot "
            f"be sent to the parent or stored in the checkpoint: {cause.type}: {cause.message}; "
            "return plain data from the sink (paths, strings, numbers)",
            traceback=cause.traceback,
        )


class TaskStart(Record):
    """A worker began an item.

    Build one with :meth:`curator.Work.start` when an item starts, or with
    :meth:`of` when the backend learns of an item only once it ended. The run
    loop sets ``attempt`` to the round's attempt whatever the backend gave.
    """

    _fields = ("index", "worker", "started", "attempt")
    __slots__ = _fields
    index: int
    worker: str
    started: float
    attempt: int

    def __init__(self, index: int, worker: str, started: float, attempt: int = 1) -> None:
        self.index = index
        self.worker = worker
        self.started = started
        self.attempt = attempt

    @classmethod
    def of(cls, outcome: Outcome) -> TaskStart:
        """The start of an item the backend learned of only when it ended.

        Backends that receive whole results at once (a Dask chunk, a joblib
        batch) yield it right before the outcome, so every item has its start
        event; the live view then cannot show such items while they run.
        """
        return cls(outcome.index, outcome.worker, outcome.started, outcome.attempt)


class Outcome(Record):
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
    metrics
        What the item cost where it ran (see :class:`curator.Metrics`);
        ``None`` when it never ran in a worker (cancelled, crashed, skipped
        from an older checkpoint), when it was a quick item the run's sampling
        let run unmeasured, or the run measured nothing (``metrics=False``).
    output
        What the item wrote to stdout, stderr and logging while it ran (see
        :class:`curator.Captured`); ``None`` when it wrote nothing or the run
        captured nothing (``capture=False``).
    extras
        What per-item features (see :mod:`curator.observing.features`) recorded for
        the item, by feature name; ``None`` when none recorded anything.

    Fields are only ever added, at the end and with a default, so outcomes
    built by position stay valid; :meth:`to_json` and :meth:`from_json` are
    the one place that knows them all.
    """

    _fields = (
        "index", "status", "value", "error", "worker", "started", "finished", "attempt",
        "metrics", "output", "extras",
    )  # fmt: skip
    __slots__ = _fields
    index: int
    status: Status
    value: list[str] | None
    error: ErrorInfo | None
    worker: str
    started: float
    finished: float
    attempt: int
    metrics: Metrics | None
    output: Captured | None
    extras: dict[str, Any] | None

    def __init__(
        self,
        index: int,
        status: Status,
        value: list[str] | None = None,
        error: ErrorInfo | None = None,
        worker: str = "",
        started: float = 0.0,
        finished: float = 0.0,
        attempt: int = 1,
        metrics: Metrics | None = None,
        output: Captured | None = None,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.status = status
        self.value = value
        self.error = error
        self.worker = worker
        self.started = started
        self.finished = finished
        self.attempt = attempt
        self.metrics = metrics
        self.output = output
        self.extras = extras

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``outputs`` is the sink's value, as given).

        The ``task_finish`` event of the ``json`` reporter is this dict plus
        its event fields; :meth:`from_json` reads it back.
        """
        return {
            "index": self.index,
            "status": self.status.value,
            "outputs": self.value,
            "error": None if self.error is None else self.error.to_json(),
            "worker": self.worker,
            "started": self.started,
            "finished": self.finished,
            "attempt": self.attempt,
            "metrics": None if self.metrics is None else self.metrics.to_json(),
            "output": None if self.output is None else self.output.to_json(),
            "extras": self.extras,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """The outcome :meth:`to_json` described (fields it lacks take their defaults)."""
        error, metrics, output = data.get("error"), data.get("metrics"), data.get("output")
        return cls(
            index=int(data["index"]),
            status=Status(data["status"]),
            value=data.get("outputs"),
            error=None if error is None else ErrorInfo.from_json(error),
            worker=data.get("worker", ""),
            started=float(data.get("started", 0.0)),
            finished=float(data.get("finished", 0.0)),
            attempt=int(data.get("attempt", 1)),
            metrics=None if metrics is None else Metrics.from_json(metrics),
            output=None if output is None else Captured.from_json(output),
            extras=data.get("extras"),
        )

    @classmethod
    def interrupted(cls, index: int, started: float, worker: str, attempt: int = 1) -> Outcome:
        """The outcome of an item that was running when a hard stop ended the run.

        Backends yield it for the items they stop at a hard stop (see
        :meth:`curator.Backend.execute`); resume runs such items again.
        """
        error = ErrorInfo(
            type=ErrorKind.INTERRUPTED.value,
            message="the run was stopped at once (second Ctrl-C, end of the grace period or "
            "SIGTERM) while this item ran; it runs again on --resume",
        )
        return cls(index, Status.INTERRUPTED, None, error, worker, started, time.time(), attempt)

    @classmethod
    def crashed(
        cls,
        index: int,
        message: str,
        worker: str,
        started: float,
        attempt: int = 1,
        exit_code: int | None = None,
    ) -> Outcome:
        """The outcome of an item whose worker died while running it (a ``WorkerCrash``).

        ``message`` says which worker and how it ended; ``exit_code`` is
        negative for a signal, as :attr:`multiprocessing.Process.exitcode`.
        Backends that lose workers build their crash outcomes with it.
        """
        error = ErrorInfo(ErrorKind.WORKER_CRASH.value, message, exit_code=exit_code)
        return cls(index, Status.CRASHED, None, error, worker, started, time.time(), attempt)

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.status is Status.OK

    @property
    def duration(self) -> float:
        """Seconds the item ran."""
        return self.finished - self.started


class Successes(Record):
    """Items one worker finished ``ok``, in columns: many outcomes as one record.

    A backend that receives results in bulk may yield this instead of one
    :class:`Outcome` per item: the run loop and the checkpoint store the
    columns directly, and ``Outcome`` objects are made only for whoever reads
    them one by one (a reporter, a stream), so a fast item costs the parent a
    few table writes. Iterating gives the outcomes.

    Attributes
    ----------
    worker
        Who ran them.
    indices
        The items, in the order they finished.
    started, finished
        Their wall-clock times, by position.
    values
        What each sink returned, by position.
    attempt
        Set by the run loop to the round's attempt.
    metrics
        The items' metrics rows (see :mod:`curator.observing.metrics`) one after
        another in one flat sequence of floats, as :attr:`curator.Work.measured`
        gives them; ``None`` when nothing was measured.
    status
        :attr:`Status.OK`: what a backend sends. The run loop makes batches of
        :attr:`Status.SKIPPED` for the items a resume skips (their recorded
        outputs, times, workers and attempts).
    extras
        What per-item features recorded (:attr:`Outcome.extras`), by
        position, for the items that have any (as :attr:`curator.Work.extras`
        gives them); ``None`` when none has.
    measured
        When :attr:`metrics` holds rows for some items only (quick items are
        sampled): their positions, ascending, one per row. ``None``: a row per
        item (``NaN`` rows for items without a reading).
    """

    _fields = (
        "worker", "indices", "started", "finished", "values", "attempt", "metrics", "status",
        "extras", "measured",
    )  # fmt: skip
    __slots__ = _fields
    worker: str
    indices: Sequence[int]
    started: Sequence[float]
    finished: Sequence[float]
    values: Sequence[Any]
    attempt: int
    metrics: Sequence[float] | None
    status: Status
    extras: dict[int, dict[str, Any]] | None
    measured: Sequence[int] | None

    def __init__(
        self,
        worker: str,
        indices: Sequence[int],
        started: Sequence[float],
        finished: Sequence[float],
        values: Sequence[Any],
        attempt: int = 1,
        metrics: Sequence[float] | None = None,
        status: Status = Status.OK,
        extras: dict[int, dict[str, Any]] | None = None,
        measured: Sequence[int] | None = None,
    ) -> None:
        self.worker = worker
        self.indices = indices
        self.started = started
        self.finished = finished
        self.values = values
        self.attempt = attempt
        self.metrics = metrics
        self.status = status
        self.extras = extras
        self.measured = measured

    def __len__(self) -> int:
        return len(self.indices)

    def metric_width(self) -> int:
        """Floats per row of :attr:`metrics` (0 without metrics)."""
        rows = len(self.indices) if self.measured is None else len(self.measured)
        return len(self.metrics) // rows if self.metrics and rows else 0

    def __iter__(self) -> Iterator[Outcome]:
        count = len(self.indices)
        if not len(self.started) == len(self.finished) == len(self.values) == count:
            raise ValueError("a Successes batch whose columns differ in length")
        # One map in C over the columns: the per-item cost is Outcome's own __init__.
        repeat = itertools.repeat  # each column its own iterator: map takes one of each per item
        measured = _measured(self.metrics, self.metric_width(), self.measured)
        metrics = map(measured.get, range(count)) if measured else repeat(None)
        extras = map(self.extras.get, range(count)) if self.extras else repeat(None)
        return map(
            Outcome, self.indices, repeat(self.status), self.values, repeat(None),
            repeat(self.worker), self.started, self.finished, repeat(self.attempt), metrics,
            repeat(None), extras,
        )  # fmt: skip


def _measured(
    flat: Sequence[float] | None, width: int, positions: Sequence[int] | None
) -> dict[int, Metrics | None]:
    """The metrics of the rows of ``flat`` that have any, by position.

    Quick items are sampled (see :mod:`curator.observing.metrics`): most rows
    are ``NaN``, or left out (``positions`` name the rows kept).
    """
    if not width or flat is None:
        return {}
    if positions is not None:
        return {
            p: Metrics.from_row(flat[k * width : (k + 1) * width]) for k, p in enumerate(positions)
        }
    return {p: Metrics.from_row(flat[p * width : (p + 1) * width]) for p in rows_read(flat, width)}


Event = TaskStart | Outcome | Successes
"""What a backend yields to the run loop."""
