"""The records workers send to the parent, in columns, and their decoding.

Shared by the backends whose workers run chunks of items away from the run's process
(the process pool, the batch-job machinery of :mod:`curator.backends.batch`). A worker
sends what finished since its last message as one :class:`Batch`: arrays of indices and
times (which pickle as raw bytes, so the parent makes no object per number) and a list
of values. The parent hands the successes on as one :class:`curator.Successes`, so a
fast item costs it no :class:`curator.Outcome`; failures (rare) become outcomes of their
own.

Each message also carries the item running when it was sent, if any, so the parent can
announce long items while they run. An item whose start was not announced gets its start
event just before its outcome.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from curator.backends.work import Work
from curator.model.captured import Captured
from curator.model.measures import Metrics
from curator.model.outcome import ErrorInfo, Event, Outcome, Status, Successes, TaskStart


class Batch:
    """Items one worker finished, in the order it finished them.

    ``values[p]`` is what the sink of ``indices[p]`` returned, or, when ``p``
    is in ``failed``, the item's :class:`curator.ErrorInfo`. ``metrics`` holds
    the rows of the measured items one after another (``width`` floats each;
    empty when the run measures nothing), ``measured`` their positions: the
    meter samples quick items, and an unmeasured item costs the wire nothing.
    ``captured`` pairs the positions of items
    that printed something with their :class:`curator.Captured`, ``extras``
    those of items the run's per-item features recorded something for with
    that data (:attr:`curator.Work.extras`). The worker's loop
    appends to the columns (the value last), and its flusher thread sends
    the rows whose value is in: each append is atomic, so the two threads
    need no lock on the hot path.
    """

    __slots__ = (
        "captured", "extras", "failed", "finished", "indices", "measured", "metrics", "started",
        "values", "width",
    )  # fmt: skip

    def __init__(self, width: int = 0) -> None:
        self.indices = array("q")
        self.started = array("d")
        self.finished = array("d")
        self.metrics = array("d")
        self.measured = array("q")
        self.width = width
        self.values: list[Any] = []
        self.failed: list[int] = []
        self.captured: list[tuple[int, Captured]] = []
        self.extras: list[tuple[int, dict[str, Any]]] = []

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, start: int, end: int) -> tuple[Any, ...]:
        """Rows ``start:end`` as a picklable message part."""
        failed = [p - start for p in self.failed if start <= p < end]
        width = self.width
        # A measured row's position and floats are in before its value: rows below
        # ``end`` are complete, whatever the worker's thread appends meanwhile.
        measured = self.measured
        first, last = bisect_left(measured, start), bisect_left(measured, end)
        return (
            self.indices[start:end],
            self.started[start:end],
            self.finished[start:end],
            self.values[start:end],
            failed,
            self.metrics[first * width : last * width],
            # list() copies in one step: the worker's thread may append meanwhile
            {p - start: c for p, c in list(self.captured) if start <= p < end},
            {p - start: e for p, e in list(self.extras) if start <= p < end},
            array("q", [p - start for p in measured[first:last]]),
            width,
        )

    def clear(self) -> None:
        """Forget every row (only the worker's own thread calls this)."""
        del self.indices[:], self.started[:], self.finished[:], self.values[:], self.failed[:]
        del self.metrics[:], self.measured[:]
        del self.captured[:]
        del self.extras[:]


Rows = tuple[Any, ...]
"""``(indices, started, finished, values, failed, metrics, captured, extras, measured, width)``.

What :meth:`Batch.rows` gives."""


def decode(
    rows: Rows,
    worker: str,
    announced: int | None,
    events: list[Event],
    starts: bool,
    attempt: int = 1,
) -> int:
    """Append the outcomes (and start events) in ``rows`` to ``events``.

    Parameters
    ----------
    rows
        What one message from ``worker`` carried.
    announced
        The index whose start was already reported while it ran, if any.
    events
        Where the decoded events go.
    starts
        Whether to make start events (someone listens to them): then every
        item is an :class:`~curator.Outcome` after its start, in order.
    attempt
        The attempt number of the run's work.

    Returns
    -------
    int
        How many outcomes the rows hold.
    """
    indices, started, finished, values, failed, metrics, captured, extras, measured_at, width = rows
    count = len(values)
    if not measured_at:
        width = 0
    if not starts and not failed and not captured:
        events.append(
            Successes(
                worker, indices, started, finished, values, attempt, metrics if width else None,
                extras=extras or None,
                measured=None if len(measured_at) == count else measured_at,
            )
        )  # fmt: skip
        return count
    append = events.append
    failures = set(failed)
    number_of = dict(zip(measured_at, range(len(measured_at)), strict=True)).get

    def measured(p: int) -> Metrics | None:
        k = number_of(p)
        return None if k is None else Metrics.from_row(metrics[k * width : (k + 1) * width])

    ok: list[int] = []
    for p in range(count):
        index = indices[p]
        if starts and index != announced:
            append(TaskStart(index, worker, started[p], attempt))
        if p in failures or starts or p in captured:
            failed = p in failures
            error: ErrorInfo | None = values[p] if failed else None
            append(
                Outcome(
                    index,
                    Status.FAILED if failed else Status.OK,
                    None if failed else values[p],
                    error,
                    worker,
                    started[p],
                    finished[p],
                    attempt,
                    measured(p),
                    captured.get(p),
                    extras.get(p),
                )
            )
        else:
            ok.append(p)
    if ok:
        kept = [(n, k) for n, k in enumerate(map(number_of, ok)) if k is not None]
        events.append(
            Successes(
                worker,
                [indices[p] for p in ok],
                [started[p] for p in ok],
                [finished[p] for p in ok],
                [values[p] for p in ok],
                attempt,
                array("d", [m for _, k in kept for m in metrics[k * width : (k + 1) * width]])
                if kept
                else None,
                extras={n: extras[p] for n, p in enumerate(ok) if p in extras} or None,
                measured=[n for n, _ in kept] if kept else None,
            )
        )
    return count


def pickled(message: Any, dumps: Callable[[Any], bytes | memoryview], rows_at: int = 1) -> bytes:
    """``message`` pickled with ``dumps``; a value the run's process cannot store fails.

    ``message`` is a tuple whose element ``rows_at`` is :data:`Rows` (or
    ``None``). Pickling the whole message is the fast path: what plain pickle
    takes, the checkpoint stores. Otherwise each value is checked with the
    checkpoint's own pickler (:meth:`curator.Work.value_error`): one it refuses
    (an object of a class defined in a function, which cloudpickle could carry
    home but the checkpoint could not store) becomes its item's ``failed``
    error. The rest goes by value with cloudpickle
    (:func:`curator.backends.shipping.dumps`): a result holding an object of a
    class that came by value (defined in the user's ``__main__``) goes back by
    value too, and the run's process gets its own class back. The other items,
    and the worker, are unharmed.
    """
    try:
        return bytes(dumps(message))
    except Exception:
        pass
    from curator.backends.shipping import dumps as by_value

    parts = list(message)
    parts[rows_at] = sendable(parts[rows_at], Work.value_error)
    try:
        return by_value(tuple(parts))
    except Exception:
        parts[rows_at] = sendable(parts[rows_at], _shipping_error)
        return by_value(tuple(parts))


def sendable(rows: Rows | None, error_of: Callable[[Any], ErrorInfo | None]) -> Rows | None:
    """``rows`` with each value that ``error_of`` finds fault with replaced by its item's error."""
    if rows is None:
        return None
    indices, started, finished, values, failed, *rest = rows
    values, failed = list(values), list(failed)
    errors = set(failed)
    for p, value in enumerate(values):
        if p in errors:
            continue
        error = error_of(value)
        if error is not None:
            values[p] = error
            failed.append(p)
    return (indices, started, finished, values, failed, *rest)


def _shipping_error(value: Any) -> ErrorInfo | None:
    """The error of an item whose value cloudpickle cannot send, or ``None``."""
    from curator.backends.shipping import dumps as by_value

    try:
        by_value(value)
    except Exception as exc:
        return Work.travel_error(value, exc)
    return None
