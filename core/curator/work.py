"""The unit of work a backend executes: one pipeline index in, one Outcome out."""

from __future__ import annotations

import time
from typing import Any

from curator.outcome import ErrorInfo, Outcome, Status, TaskStart
from curator.pipeline import Pipeline


class Work:
    """Turns an index into an :class:`~curator.outcome.Outcome`; never raises for an item.

    A backend receives one ``Work`` per run. It is picklable when the pipeline
    is, and is meant to be sent to each worker once (an initializer, a
    broadcast) and then called for many indices.

    Parameters
    ----------
    pipeline
        The pipeline to run; it must have a sink.
    attempt
        Which try this is (1 for the first); outcomes and start records carry it.
    """

    __slots__ = ("attempt", "pipeline")

    def __init__(self, pipeline: Pipeline[Any], attempt: int = 1) -> None:
        self.pipeline = pipeline
        self.attempt = attempt

    def __call__(self, index: int, worker: str = "main", attempt: int | None = None) -> Outcome:
        """Run ``index`` and describe how it ended.

        Exceptions raised by the item (including :class:`SystemExit`) become a
        ``failed`` outcome carrying the formatted traceback. Only
        :class:`KeyboardInterrupt` and :class:`GeneratorExit` propagate: they
        stop the worker, not just the item.
        """
        if attempt is None:
            attempt = self.attempt
        started = time.time()
        try:
            value = self.pipeline[index]
        except (Exception, SystemExit) as exc:
            return Outcome(
                index,
                Status.FAILED,
                error=ErrorInfo.from_exception(exc),
                worker=worker,
                started=started,
                finished=time.time(),
                attempt=attempt,
            )
        return Outcome(
            index,
            Status.OK,
            value=value,
            worker=worker,
            started=started,
            finished=time.time(),
            attempt=attempt,
        )

    def start(self, index: int, worker: str = "main") -> TaskStart:
        """Make the start record for ``index`` (stamped now)."""
        return TaskStart(index, worker, time.time(), self.attempt)

    def __getstate__(self) -> tuple[Pipeline[Any], int]:
        return (self.pipeline, self.attempt)

    def __setstate__(self, state: tuple[Pipeline[Any], int]) -> None:
        self.pipeline, self.attempt = state
