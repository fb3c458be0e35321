"""Outcomes from a task's records: what a job finished, and the items it blamed."""

from __future__ import annotations

import pickle
import time
from typing import Any

from curator.backends.columns import Rows
from curator.model.outcome import ErrorInfo, ErrorKind, Outcome, Status


def rows_of(body: tuple[Any, ...], worker: str) -> Rows | ErrorInfo | None:
    """The finished items' rows a ``ROWS`` record carries.

    ``None`` when it names the running item only; an :class:`~curator.ErrorInfo`
    when this process cannot load them (a value whose class this process
    lacks, or that refuses to load here): those items fail with it (see
    :func:`unloaded`), the rest of the run goes on.
    """
    indices, _, blob = body
    if blob is None:
        return None
    try:
        rows: Rows = pickle.loads(blob)[0]
    except Exception as exc:
        return ErrorInfo(
            ErrorKind.UNPICKLABLE_RESULT.value,
            f"this process cannot load what job {worker} sent back for items "
            f"{list(indices)[:5]}{' ...' if len(indices) > 5 else ''}: "
            f"{type(exc).__name__}: {exc}; results must load where the run is (a module "
            "the jobs have and this process lacks?). They ran; --resume runs them again",
        )
    return rows


def unloaded(indices: Any, error: ErrorInfo, worker: str, attempt: int) -> list[Outcome]:
    """The outcomes of items whose rows this process could not load (see :func:`rows_of`)."""
    now = time.time()
    return [
        Outcome(index, Status.FAILED, None, error, worker, now, now, attempt) for index in indices
    ]


def crashed(body: tuple[Any, ...], worker: str, attempt: int) -> Outcome:
    """The outcome a ``CRASH`` record blames."""
    index, started, code, message = body
    return Outcome.crashed(index, message, worker, started, attempt, code)


def timed_out(body: tuple[Any, ...], worker: str, attempt: int) -> Outcome:
    """The outcome a ``TIMEOUT`` record blames."""
    index, started, seconds, message = body
    error = ErrorInfo(
        ErrorKind.TIMEOUT.value,
        message
        or f"item {index} ran longer than {seconds:g} s; the worker of {worker} was killed "
        "and replaced",
    )
    return Outcome(index, Status.TIMED_OUT, None, error, worker, started, time.time(), attempt)
