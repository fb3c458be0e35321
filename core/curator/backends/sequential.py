"""The ``sequential`` backend: one item after another in the calling process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from curator.backends.backend import Backend, Capabilities
from curator.backends.lifecycle import WorkerInfo
from curator.backends.watchdog import set_up_in_time, tear_down_in_time, unrun
from curator.backends.work import Work
from curator.model.outcome import Event


class SequentialBackend(Backend):
    """Run items one after another in the calling thread.

    Stateful filters and sinks keep their state in the caller's pipeline
    object. This is also what every backend does with ``jobs=1``.
    """

    name = "sequential"
    description = "One item after another in the calling process (no parallelism)."
    capabilities = Capabilities(
        parallel=False, keeps_groups=True, worker_lifecycle=True, lifecycle_timeouts=True
    )

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Run each index in turn until the core asks to stop (a group's items are in order).

        Stages' ``setup(worker)`` runs before the first item (worker slot 0),
        ``teardown()`` after the last, each within its limit (see
        :mod:`curator.backends.watchdog`): past the setup limit, every item fails
        with ``SetupTimeout`` (there is no other worker to run it); past the
        teardown limit, the teardown is abandoned with a warning.
        """
        try:
            if self.stop_requested:
                return
            overrun = set_up_in_time(work, WorkerInfo(0, self.name, 1), self.setup_timeout, "main")
            if overrun is not None:
                yield from unrun(indices, overrun, work.attempt, lambda: self.stop_requested)
                return
            for index in indices:
                if self.stop_requested:
                    break
                start = work.start(index)
                yield start
                try:
                    outcome = work(index)
                except KeyboardInterrupt:  # the core's hard stop (curator.model.errors.HardStop)
                    yield work.interrupted(index, start.started)
                    raise
                yield outcome
        except BaseException:
            with contextlib.suppress(Exception):  # the run's own end matters more
                tear_down_in_time(work, self.teardown_timeout, "main")
            raise
        tear_down_in_time(work, self.teardown_timeout, "main")
