"""The compact records workers send to the parent, and their decoding.

Records are plain tuples, which pickle several times faster than dataclasses;
workers build them from :meth:`curator.Work.run_index` and the parent turns
them into :class:`curator.TaskStart` and :class:`curator.Outcome`.

- ``(OK, index, started, finished, value)``;
- ``(FAILED, index, started, finished, error)``.

Each message also carries the item running when it was sent, if any, so the
parent can announce long items while they run. An item whose start was not
announced gets its start event just before its outcome.
"""

from __future__ import annotations

from typing import Any

from curator import ErrorInfo, Event, Outcome, Status, TaskStart

OK = 1
FAILED = 2

Record = tuple[Any, ...]


def decode(
    records: list[Record],
    worker: str,
    announced: int | None,
    events: list[Event],
    starts: bool,
    attempt: int = 1,
) -> int:
    """Append the outcomes (and start events) in ``records`` to ``events``, in order.

    Parameters
    ----------
    records
        What one message from ``worker`` carried.
    announced
        The index whose start was already reported while it ran, if any.
    events
        Where the decoded events go.
    starts
        Whether to make start events at all (nobody may be listening).
    attempt
        The attempt number of the run's work.

    Returns
    -------
    int
        How many outcomes were appended.
    """
    append = events.append
    for tag, index, started, finished, payload in records:
        if starts and index != announced:
            append(TaskStart(index, worker, started, attempt))
        if tag == OK:
            append(Outcome(index, Status.OK, payload, None, worker, started, finished, attempt))
        else:
            error: ErrorInfo = payload
            append(Outcome(index, Status.FAILED, None, error, worker, started, finished, attempt))
    return len(records)
