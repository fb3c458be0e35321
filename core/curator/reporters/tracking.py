"""What reporters need to know about a run in progress, kept cheap to update per event."""

from __future__ import annotations

import heapq
import time
from collections import Counter

from curator.outcome import Outcome, Status, TaskStart
from curator.result import RunInfo

SLOWEST_KEPT = 5


class RunTracker:
    """Counts, busy workers, failures and the slowest items of one run.

    Updating costs a few dictionary operations per event; everything derived
    (rate, ETA, percentages) is computed only when a reporter draws.

    Parameters
    ----------
    run
        The run being tracked.
    """

    def __init__(self, run: RunInfo) -> None:
        self.run = run
        self.total = run.total
        self.started = time.monotonic()
        self.done = 0
        self.counts: Counter[Status] = Counter()
        self.busy: dict[str, tuple[int, float]] = {}  # worker -> (index, monotonic start)
        self.failures: list[Outcome] = []
        self._slowest: list[tuple[float, int]] = []  # min-heap of (duration, index)

    def start(self, start: TaskStart) -> None:
        """Note that ``start.worker`` is running ``start.index``."""
        self.busy[start.worker] = (start.index, time.monotonic())

    def finish(self, outcome: Outcome) -> None:
        """Count a finished item."""
        self.done += 1
        status = outcome.status
        self.counts[status] += 1
        busy = self.busy.get(outcome.worker)
        if busy is not None and busy[0] == outcome.index:
            del self.busy[outcome.worker]
        if status.is_failure:
            self.failures.append(outcome)
        duration = outcome.finished - outcome.started
        if len(self._slowest) < SLOWEST_KEPT:
            heapq.heappush(self._slowest, (duration, outcome.index))
        elif duration > self._slowest[0][0]:
            heapq.heapreplace(self._slowest, (duration, outcome.index))

    @property
    def failed(self) -> int:
        """Items that failed, crashed or timed out so far."""
        return len(self.failures)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Finished items per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or ``None`` before the first item finishes."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def slowest(self) -> list[tuple[float, int]]:
        """The slowest items so far as ``(seconds, index)``, slowest first."""
        return sorted(self._slowest, reverse=True)

    def busy_workers(self) -> list[tuple[str, int, float]]:
        """``(worker, index, seconds running)`` for every busy worker, longest first."""
        now = time.monotonic()
        rows = [(worker, index, now - since) for worker, (index, since) in list(self.busy.items())]
        return sorted(rows, key=lambda row: row[2], reverse=True)


def format_duration(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03`` style, or ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
