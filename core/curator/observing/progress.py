"""Live progress of a run, kept by the core, read by reporters at their own pace.

Per-item hooks cost a call per item; a reporter that only draws a bar or writes
a line every few seconds does not need them. :class:`RunProgress` gives such
reporters what they need without any per-item call: counts derived from the
run's ledger, the failures, what each worker is running, and alarms that fire
when the number of finished items reaches a count.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from curator.model.outcome import Outcome, Status, TaskStart
from curator.model.result import RunInfo

if TYPE_CHECKING:
    from curator.running.ledger import Ledger

Activity = Mapping[str, tuple[int, float]]
"""Worker id -> (index it runs, wall-clock start)."""


class RunProgress:
    """Counters of one run, updated by the core in the parent process.

    Reading is safe from any thread (a reporter's drawing thread, say).

    Parameters
    ----------
    run
        The run.
    ledger
        The run's outcome slots; ``done`` is derived from it at no per-item cost.
    activity
        The backend's view of its busy workers (``None`` if it has none).
    """

    def __init__(
        self, run: RunInfo, ledger: Ledger, activity: Callable[[], Activity | None]
    ) -> None:
        self.run = run
        self.total = run.total
        self.started = time.monotonic()
        self.failures: list[Outcome] = []
        """Failed, crashed and timed-out outcomes so far, in arrival order; an item being
        retried leaves the list when its next attempt starts."""
        self._ledger = ledger
        self._activity = activity
        self._starts: dict[str, tuple[int, float]] | None = None
        self._alarms: list[tuple[int, int, Callable[[], None]]] = []
        self._alarm_ids = itertools.count()
        self._failure_watchers: list[Callable[[Outcome], None]] = []
        self._output_watchers: list[Callable[[Outcome], None]] = []
        self.alarm_open = -1
        """The core rings alarms once ``ledger.open`` drops to this (-1: none set)."""
        self.tracking_starts = False
        """Whether start events are recorded (from the first :meth:`busy` call on, or from
        the first item on after :meth:`watch_workers`)."""
        self.watching_workers = False
        """Whether a reporter asked for busy workers from the first item on."""
        self.stopping_since: float | None = None
        """When the first Ctrl-C asked the run to stop (monotonic), or ``None``."""
        self.grace = 0.0
        """Seconds running items get once the run is stopping."""
        self.guard: Callable[[Callable[..., None], str], Callable[..., None]] = _unguarded
        """Wraps each subscription (the core isolates a listener's failures through it)."""
        self.skipped = 0
        """Items a resume skipped (done before this run: not in its rate)."""
        self.cancelled = 0
        """Items that never ran because the run stopped (not done)."""

    # -- reading ------------------------------------------------------------------

    @property
    def done(self) -> int:
        """Items with an outcome so far (skipped ones included, cancelled ones not)."""
        return self.total - self._ledger.open - self.cancelled

    @property
    def failed(self) -> int:
        """Items whose latest attempt failed, crashed or timed out (retried ones count once)."""
        return len(self.failures)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Items this run finished per second so far (skipped ones aside)."""
        elapsed = self.elapsed
        return (self.done - self.skipped) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate; ``None`` before the first item finishes."""
        rate = self.rate
        if rate <= 0 or self.stopping:  # no new items start: the rate says nothing of the end
            return None
        return (self.total - self.done) / rate

    @property
    def stopping(self) -> bool:
        """Whether the run is winding down: no new items, running ones get the grace period."""
        return self.stopping_since is not None

    @property
    def grace_left(self) -> float | None:
        """Seconds of the grace period left while stopping, else ``None``."""
        if self.stopping_since is None:
            return None
        return max(0.0, self.grace - (time.monotonic() - self.stopping_since))

    def counts(self) -> Counter[Status]:
        """Outcomes per status so far (walks the ledger: for summaries, not per frame)."""
        return self._ledger.counts()

    def busy(self) -> list[tuple[str, int, float]]:
        """``(worker, index, seconds running)`` per busy worker, longest first.

        Taken from the backend when it can tell (the process pool reads shared
        memory); otherwise from the start events, which the core records from
        the first call on.
        """
        activity = self._activity()
        if activity is None:
            activity = self.track_starts()
        now = time.time()
        rows = [(worker, index, now - since) for worker, (index, since) in list(activity.items())]
        return sorted(rows, key=lambda row: row[2], reverse=True)

    def track_starts(self) -> dict[str, tuple[int, float]]:
        """Record start events from now on; return what is running by them.

        The core's fallback for a backend without ``activity()``.
        """
        if self._starts is None:
            self._starts = {}
            self.tracking_starts = True
        return self._starts

    # -- subscribing --------------------------------------------------------------

    def watch_workers(self) -> None:
        """Ask for :meth:`busy` rows that include items started before its first call.

        A reporter that will draw busy workers calls this in ``curator_run_start``.
        Otherwise start events are recorded from the first :meth:`busy` call on
        (nobody pays for them before), and an item that started earlier is not
        among the rows until the next one starts on its worker.
        """
        self.watching_workers = True

    def call_at(self, done: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the parent's run loop) once ``done`` items have finished."""
        callback = self.guard(callback, "its progress alarm")
        heapq.heappush(self._alarms, (done, next(self._alarm_ids), callback))
        self.alarm_open = self.total - self._alarms[0][0]

    def on_failure(self, callback: Callable[[Outcome], None]) -> None:
        """Call ``callback(outcome)`` for every failed, crashed or timed-out item, as it arrives."""
        self._failure_watchers.append(self.guard(callback, "its on_failure callback"))

    def on_output(self, callback: Callable[[Outcome], None]) -> None:
        """Call ``callback(outcome)`` for every item that printed something, as it arrives.

        The outcome's ``output`` (a :class:`curator.Captured`) holds what it
        wrote to stdout, stderr and logging (see :mod:`curator.observing.capture`).
        """
        self._output_watchers.append(self.guard(callback, "its on_output callback"))

    # -- fed by the core ----------------------------------------------------------

    def record_output(self, outcome: Outcome) -> None:
        """Hand the output of ``outcome`` to whoever watches it."""
        for watcher in self._output_watchers:
            watcher(outcome)

    def record_start(self, start: TaskStart) -> None:
        """Note a start event (only once somebody asked for :meth:`busy`)."""
        if self._starts is not None:
            self._starts[start.worker] = (start.index, start.started)

    def record_finish(self, outcome: Outcome) -> None:
        """Note an outcome that matters beyond the counts (a failure, a tracked worker)."""
        starts = self._starts
        if starts is not None:
            running = starts.get(outcome.worker)
            if running is not None and running[0] == outcome.index:
                del starts[outcome.worker]
        if outcome.status.is_failure:
            self.failures.append(outcome)
            for watcher in self._failure_watchers:
                watcher(outcome)

    def retrying(self, indices: Sequence[int]) -> None:
        """Forget the failures of items about to be tried again (the core calls this)."""
        again = set(indices)
        self.failures = [outcome for outcome in self.failures if outcome.index not in again]

    def stop_requested(self, grace: float) -> None:
        """Note that the run is stopping, with ``grace`` seconds for running items."""
        self.grace = grace
        self.stopping_since = time.monotonic()

    def ring(self) -> None:
        """Fire the alarms that are due (the core calls this when ``alarm_open`` is reached)."""
        done = self.done
        while self._alarms and self._alarms[0][0] <= done:
            _, _, callback = heapq.heappop(self._alarms)
            callback()
        self.alarm_open = self.total - self._alarms[0][0] if self._alarms else -1


def _unguarded(callback: Callable[..., None], what: str) -> Callable[..., None]:
    return callback


def steps(total: int, fraction: float) -> int:
    """Items in ``fraction`` of ``total``, at least one."""
    return max(1, math.ceil(fraction * total))
