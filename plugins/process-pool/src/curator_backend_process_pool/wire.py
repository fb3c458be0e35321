"""The compact records workers send to the parent, and their decoding.

Records are plain tuples, which pickle several times faster than dataclasses;
the parent turns them into :class:`curator.TaskStart` and :class:`curator.Outcome`.

- ``(START, index, started)``: the item is running (sent only when a flush
  happens while it runs);
- ``(OK, index, started, finished, value, announced)``;
- ``(FAILED, index, started, finished, error, announced)``.

``announced`` says whether a START record was already sent for the item; if
not, the parent emits the start event just before the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curator import ErrorInfo, Event, Outcome, Status, TaskStart

START = 0
OK = 1
FAILED = 2

Record = tuple[Any, ...]


def encode(outcome: Outcome, announced: bool) -> Record:
    """Turn a worker-side outcome into a record."""
    if outcome.status is Status.OK:
        return (OK, outcome.index, outcome.started, outcome.finished, outcome.value, announced)
    return (FAILED, outcome.index, outcome.started, outcome.finished, outcome.error, announced)


def decode(records: list[Record], worker: str) -> Iterator[Event]:
    """Turn records from ``worker`` into start events and outcomes, in order."""
    for record in records:
        tag = record[0]
        if tag == START:
            yield TaskStart(record[1], worker, record[2])
            continue
        _, index, started, finished, payload, announced = record
        if not announced:
            yield TaskStart(index, worker, started)
        if tag == OK:
            yield Outcome(index, Status.OK, payload, None, worker, started, finished)
        else:
            error: ErrorInfo = payload
            yield Outcome(index, Status.FAILED, None, error, worker, started, finished)
