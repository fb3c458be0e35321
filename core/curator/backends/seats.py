"""What each thread of the thread pool is doing, so the run can give up on a hung hook.

A thread cannot be killed. A thread whose stages' ``setup`` or ``teardown``
runs past its limit is *abandoned*: the run reports it (the items it took fail
``SetupTimeout``; a teardown gets a warning) and goes on without it. The
thread itself may still return from the hook one day; then it sees that it
was abandoned, tears down quietly what it set up, and ends without a word, so
nothing it does reaches the run twice. The switch between the thread's
phases and the parent's verdict is taken under one lock per thread.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Iterator, Sequence

from curator.backends.lifecycle import setup_timed_out, teardown_abandoned
from curator.model.outcome import Event, Outcome

TICK_SECONDS = 0.25
"""While a thread is in a limited hook, the parent looks at its threads at least this often."""


class Phase(enum.Enum):
    """Where a worker thread is."""

    IDLE = "idle"
    SETUP = "setup"
    ITEMS = "items"
    TEARDOWN = "teardown"
    DONE = "done"


class Seat:
    """One worker thread's phase, since when, and the stage whose hook it is in."""

    __slots__ = ("_lock", "abandoned", "name", "phase", "since", "stage", "unit")

    def __init__(self, name: str) -> None:
        self.name = name
        self.phase = Phase.IDLE
        self.since = time.monotonic()
        self.stage: str | None = None
        self.unit: Sequence[int] = ()
        """The items the thread took before its setup: they fail if the setup overruns."""
        self.abandoned = False
        self._lock = threading.Lock()

    def announce(self, hook: str, stage: str) -> None:
        """Note the stage whose hook the thread calls next (see :meth:`curator.Work.setup`)."""
        self.stage = stage

    def enter(self, phase: Phase, unit: Sequence[int] = ()) -> bool:
        """Move the thread to ``phase`` (holding ``unit``); false if it was abandoned."""
        with self._lock:
            if self.abandoned:
                return False
            self.phase, self.since, self.stage = phase, time.monotonic(), None
            if unit:
                self.unit = unit
            return True

    def close(self) -> bool:
        """The thread is done; true if it may still say so (it was not abandoned)."""
        return self.enter(Phase.DONE)

    def give_up(self, limits: dict[Phase, float | None], now: float) -> bool:
        """Abandon the thread if it has been in its phase for longer than that phase's limit."""
        with self._lock:
            limit = limits.get(self.phase)
            if self.abandoned or limit is None or now - self.since <= limit:
                return False
            self.abandoned = True
            return True


class SeatWatch:
    """The parent's look at every thread's hook against the setup and teardown limits."""

    def __init__(
        self, seats: list[Seat], setup_limit: float | None, teardown_limit: float | None
    ) -> None:
        self.seats = seats
        self.limits = {Phase.SETUP: setup_limit, Phase.TEARDOWN: teardown_limit}
        self.check_at = time.monotonic()

    def limit(self, phase: Phase) -> float | None:
        """The limit of ``phase`` (``None`` for none)."""
        return self.limits.get(phase)

    def wait(self) -> float | None:
        """Seconds the parent may wait for a record before it must look again (``None``: any).

        While no thread is in a hook, the parent need not look: a thread that
        enters one tells it (a record), and the parent calls :meth:`look_now`.
        """
        if self.check_at == math.inf:
            return None
        return max(0.0, self.check_at - time.monotonic())

    def look_now(self) -> None:
        """A thread entered a hook: look at the threads at the next :meth:`overdue`."""
        self.check_at = time.monotonic()

    def overdue(self) -> list[Seat]:
        """The threads abandoned now, their hook past its limit (looked at when due only)."""
        now = time.monotonic()
        if now < self.check_at:
            return []
        given_up = [seat for seat in self.seats if seat.give_up(self.limits, now)]
        soonest = math.inf
        for seat in self.seats:
            limit = self.limits.get(seat.phase)
            if limit is not None and not seat.abandoned:
                soonest = min(soonest, TICK_SECONDS, seat.since + limit - now)
        self.check_at = now + max(0.01, soonest)
        return given_up


SETUP_FATE = (
    "a thread cannot be killed: it was abandoned (it keeps what it holds) and the run goes on "
    "with the other threads"
)
TEARDOWN_FATE = "a thread cannot be killed: it was abandoned to finish in the background"
NO_THREAD_LEFT = "no thread was left to run it: every thread's setup overran its limit"


def abandoned(seat: Seat, watch: SeatWatch, attempt: int) -> Iterator[Event]:
    """Report a thread given up in its hook: its items fail (setup), or a warning (teardown)."""
    limit = watch.limit(seat.phase)
    assert limit is not None
    if seat.phase is Phase.SETUP:
        yield from setup_timed_out(
            list(seat.unit), seat.stage, limit, seat.name, SETUP_FATE, attempt
        )
    else:
        teardown_abandoned(seat.stage, limit, seat.name, TEARDOWN_FATE)


def unrunnable(indices: list[int], seat: Seat, watch: SeatWatch, attempt: int) -> list[Outcome]:
    """The items no thread was left for: every thread was abandoned in its setup."""
    limit = watch.limit(Phase.SETUP)
    assert limit is not None
    return setup_timed_out(indices, seat.stage, limit, "thread-pool", NO_THREAD_LEFT, attempt)
