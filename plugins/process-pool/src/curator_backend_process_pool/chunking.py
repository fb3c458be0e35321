"""Adaptive chunk sizes: large chunks for fast items, single items for slow ones."""

from __future__ import annotations

import math

MAX_CHUNK = 8192
"""Upper bound on adaptive chunks: bounds the records in flight, hence parent memory."""


class ChunkSizer:
    """Decide how many indices the next chunk gets.

    The first chunks hold one item each, to measure. Afterwards a chunk is
    sized to take about ``target_seconds``, but never more than a quarter of
    the remaining work per worker, so the tail of the run stays balanced
    across workers even when some items are much slower than others.

    Parameters
    ----------
    workers
        Number of worker processes.
    fixed
        A user-chosen chunk size; disables adaptation.
    target_seconds
        How long a chunk should take.
    """

    def __init__(self, workers: int, fixed: int | None = None, target_seconds: float = 0.05):
        self.workers = workers
        self.fixed = fixed
        self.target_seconds = target_seconds
        self.seconds_per_item: float | None = None

    def observe(self, items: int, seconds: float) -> None:
        """Learn from a finished chunk of ``items`` that took ``seconds`` in the worker."""
        if items <= 0:
            return
        sample = max(seconds, 1e-7) / items
        if self.seconds_per_item is None:
            self.seconds_per_item = sample
        else:
            # Weighted toward recent chunks, so a change of pace is followed quickly.
            self.seconds_per_item = 0.5 * self.seconds_per_item + 0.5 * sample

    def next_size(self, remaining: int) -> int:
        """The size of the next chunk, given how many indices are left to dispatch."""
        if remaining <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.seconds_per_item is None:
            return 1
        fair = math.ceil(remaining / (4 * self.workers))
        wanted = max(1, int(self.target_seconds / self.seconds_per_item))
        return max(1, min(wanted, fair, remaining, MAX_CHUNK))
