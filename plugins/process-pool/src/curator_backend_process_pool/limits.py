"""The time limits the parent enforces on its workers: items, and the stages' setup/teardown.

A worker writes what it does into shared memory (``current[slot]``: an
index, :data:`~.worker.IDLE`, or :data:`~.worker.SETTING_UP`) and since when
(``since[slot]``, written first). The parent reads both while it waits for
results and kills a worker past its limit: the item is then ``timed_out``; a
setup's chunk fails ``SetupTimeout`` (see :mod:`~.deaths`). A teardown is
bounded where the parent waits for it, at the run's end (``Pool._end_run``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from curator_backend_process_pool import worker
from curator_backend_process_pool.slots import WorkerSlot

POLL_SECONDS = 0.25
"""With a limit set, the parent checks its busy workers at least this often."""


@dataclass(frozen=True)
class Limits:
    """Seconds an item, a worker's setup and its teardown may take (``None``: no limit)."""

    item: float | None = None
    setup: float | None = None
    teardown: float | None = None

    def of(self, doing: int) -> float | None:
        """The limit of what ``current`` says a worker does: an item, its setup, or nothing."""
        if doing >= 0:
            return self.item
        return self.setup if doing == worker.SETTING_UP else None

    def wait(self, slots: Iterable[int], current: Any, since: Any) -> float | None:
        """Seconds until the earliest item or setup of ``slots`` hits its limit (``None``: none)."""
        if self.item is None and self.setup is None:
            return None
        now = time.time()
        soonest = POLL_SECONDS
        for slot in slots:
            limit = self.of(current[slot])
            if limit is not None:
                soonest = min(soonest, since[slot] + limit - now)
        return max(0.0, soonest)

    def overdue(self, workers: dict[int, WorkerSlot], current: Any, since: Any) -> list[WorkerSlot]:
        """The workers past a limit, marked with what for (to be killed by the caller)."""
        now = time.time()
        found = []
        for slot, w in workers.items():
            doing = current[slot]
            limit = self.of(doing)
            if limit is None or w.timed_out is not None or w.setup_overran:
                continue
            # The worker writes `since` before `current`: a fresh index never pairs
            # with a stale start time.
            if now - since[slot] > limit and current[slot] == doing:
                if doing == worker.SETTING_UP:
                    w.setup_overran = True
                else:
                    w.timed_out = doing
                found.append(w)
        return found
