"""The ``sequential`` backend: one item after another in the calling process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from curator.backend import Backend, Capabilities
from curator.lifecycle import WorkerInfo
from curator.outcome import Event
from curator.work import Work


class SequentialBackend(Backend):
    """Run items one after another in the calling thread.

    Stateful filters and sinks keep their state in the caller's pipeline
    object. This is also what every backend does with ``jobs=1``.
    """

    name = "sequential"
    description = "One item after another in the calling process (no parallelism)."
    capabilities = Capabilities(parallel=False, keeps_groups=True, worker_lifecycle=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Run each index in turn until the core asks to stop (a group's items are in order).

        Stages' ``setup(worker)`` runs before the first item (worker slot 0),
        ``teardown()`` after the last.
        """
        ready = False
        try:
            for index in indices:
                if self.stop_requested:
                    break
                if not ready:
                    work.setup(WorkerInfo(0, self.name, 1))
                    ready = True
                start = work.start(index)
                yield start
                try:
                    outcome = work(index)
                except KeyboardInterrupt:  # the core's hard stop (curator.errors.HardStop)
                    yield work.interrupted(index, start.started)
                    raise
                yield outcome
        except BaseException:
            with contextlib.suppress(Exception):  # the run's own end matters more
                work.teardown()
            raise
        work.teardown()
