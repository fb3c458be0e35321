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
    """

    __slots__ = ("pipeline",)

    def __init__(self, pipeline: Pipeline[Any]) -> None:
        self.pipeline = pipeline

    def __call__(self, index: int, worker: str = "main", attempt: int = 1) -> Outcome:
        """Run ``index`` and describe how it ended.

        Exceptions raised by the item (including :class:`SystemExit`) become a
        ``failed`` outcome carrying the formatted traceback. Only
        :class:`KeyboardInterrupt` and :class:`GeneratorExit` propagate: they
        stop the worker, not just the item.
        """
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

    @staticmethod
    def start(index: int, worker: str = "main", attempt: int = 1) -> TaskStart:
        """Make the start record for ``index`` (stamped now)."""
        return TaskStart(index, worker, time.time(), attempt)

    def __getstate__(self) -> Pipeline[Any]:
        return self.pipeline

    def __setstate__(self, state: Pipeline[Any]) -> None:
        self.pipeline = state
