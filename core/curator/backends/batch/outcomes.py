"""Outcomes from a task's records: what a job finished, and the items it blamed."""

from __future__ import annotations

import pickle
import time
from typing import Any

from curator.backends.columns import Rows
from curator.model.errors import UsageError
from curator.model.outcome import ErrorInfo, ErrorKind, Outcome, Status


def rows_of(body: tuple[Any, ...], worker: str) -> Rows | None:
    """The finished items' rows a ``ROWS`` record carries.

    ``None`` when it names the running item only.

    Raises
    ------
    UsageError
        When this process cannot load the values a job sent back.
    """
    indices, _, blob = body
    if blob is None:
        return None
    try:
        rows: Rows = pickle.loads(blob)[0]
    except Exception as exc:
        raise UsageError(
            f"this process cannot load what job {worker} sent back for items "
            f"{list(indices)[:5]}: {type(exc).__name__}: {exc}; results must load where "
            "the run is (a module the jobs have and this process lacks?)"
        ) from exc
    return rows


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
