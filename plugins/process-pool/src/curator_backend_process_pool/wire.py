"""The records workers send to the parent, in columns, and their decoding.

A worker sends what finished since its last message as one :class:`Batch`:
arrays of indices and times (which pickle as raw bytes, so the parent makes
no object per number) and a list of values. The parent hands the successes on
as one :class:`curator.Successes`, so a fast item costs it no
:class:`curator.Outcome`; failures (rare) become outcomes of their own.

Each message also carries the item running when it was sent, if any, so the
parent can announce long items while they run. An item whose start was not
announced gets its start event just before its outcome.
"""

from __future__ import annotations

from array import array
from typing import Any

from curator import ErrorInfo, Event, Outcome, Status, Successes, TaskStart


class Batch:
    """Items one worker finished, in the order it finished them.

    ``values[p]`` is what the sink of ``indices[p]`` returned, or, when ``p``
    is in ``failed``, the item's :class:`curator.ErrorInfo`. The worker's loop
    appends to the columns (the value last), and its flusher thread sends
    the rows whose value is in: each append is atomic, so the two threads
    need no lock on the hot path.
    """

    __slots__ = ("failed", "finished", "indices", "started", "values")

    def __init__(self) -> None:
        self.indices = array("q")
        self.started = array("d")
        self.finished = array("d")
        self.values: list[Any] = []
        self.failed: list[int] = []

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, start: int, end: int) -> tuple[Any, ...]:
        """Rows ``start:end`` as a picklable message part."""
        failed = [p - start for p in self.failed if start <= p < end]
        return (
            self.indices[start:end],
            self.started[start:end],
            self.finished[start:end],
            self.values[start:end],
            failed,
        )

    def clear(self) -> None:
        """Forget every row (only the worker's own thread calls this)."""
        del self.indices[:], self.started[:], self.finished[:], self.values[:], self.failed[:]


Rows = tuple[Any, ...]
"""``(indices, started, finished, values, failed)``: what :meth:`Batch.rows` gives."""


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
    indices, started, finished, values, failed = rows
    count = len(values)
    if not starts and not failed:
        events.append(Successes(worker, indices, started, finished, values, attempt))
        return count
    append = events.append
    failures = set(failed)
    ok: list[int] = []
    for p in range(count):
        index = indices[p]
        if starts and index != announced:
            append(TaskStart(index, worker, started[p], attempt))
        if p in failures:
            error: ErrorInfo = values[p]
            append(
                Outcome(index, Status.FAILED, None, error, worker, started[p], finished[p], attempt)
            )
        elif starts:
            append(
                Outcome(index, Status.OK, values[p], None, worker, started[p], finished[p], attempt)
            )
        else:
            ok.append(p)
    if ok:
        events.append(
            Successes(
                worker,
                [indices[p] for p in ok],
                [started[p] for p in ok],
                [finished[p] for p in ok],
                [values[p] for p in ok],
                attempt,
            )
        )
    return count
