"""Every number the conformance kit enforces, in one place.

The kit's checks are a contract: how promptly a stop must take effect, how
many items may still run after the run asked to stop, what exit code a crash
reports. Those numbers live here, and ``docs/testing.md`` lists them (a test
keeps the two in step). A check never waits without a limit: each has the
time budget :attr:`KitLimits.check`, and fails naming what it waited for
when that runs out (see :mod:`curator.testing.timelimit`); a check with a
number of its own (``timed_out_within``, ``hard_stop``, ``grace_end``,
``sigterm``) acts once the run overruns it: the probe lets go of its items, and
the run has :attr:`KitLimits.released_within` to end before the check fails.

A backend's tests may give the kit other limits (``limits = KitLimits(check=900)``
on the test class): a batch system that queues each job for a while needs
a larger budget. The checks' own numbers are the contract a user relies on;
loosen them only where the backend documents why.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class KitLimits:
    """The numbers the conformance kit checks a backend against (seconds unless said)."""

    check: float = 300.0
    """Time budget of one check: past it the check fails, naming what it waited for."""
    released_within: float = 30.0
    """How long a run past a check's own limit has to end once the probe let go of its
    items; and after the budget ran out, how long the check may take to give up before
    the kit ends the test process (with every thread's stack on stderr)."""
    item_timeout: float = 1.0
    """The per-item ``timeout`` the timeout check gives a hung item."""
    timed_out_within: float = 60.0
    """The run with one hung item must end within this (``timeouts``)."""
    stop_dispatch_base: int = 20
    """``on_error="raise"`` at the third of 300 items: at most this many items run, ..."""
    stop_dispatch_per_job: int = 10
    """... plus this many per job."""
    hard_stop: float = 30.0
    """A hard stop (a second Ctrl-C) ends a run of hung items within this (``cancel_running``)."""
    grace: float = 1.0
    """The grace period the grace check gives after its Ctrl-C."""
    grace_end: float = 15.0
    """The run must end within this of its start, once that grace period is over."""
    sigterm: float = 15.0
    """SIGTERM ends a run of hung items within this, a 60 s grace period notwithstanding."""
    signal_after: float = 60.0
    """How long a signal check waits for the run to get far enough to be signalled."""
    leftovers: float = 5.0
    """After a run ends, its threads and child processes must be gone within this."""
    meet: float = 20.0
    """How long an item of the parallelism check waits for another to start beside it."""
    hook_limit: float = 1.0
    """The ``setup_timeout``/``teardown_timeout`` the lifecycle-limit checks give."""
    hook_run_bound: float = 120.0
    """A run whose stage hook hangs must end within this (``lifecycle_timeouts``)."""
    crash_exit_code: int = 7
    """The exit code the probe's crashing item exits with, which its outcome must report."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"KitLimits.{field.name} must be a number > 0, not {value!r}")


DEFAULT_LIMITS = KitLimits()
"""The limits of the published contract (what docs/testing.md lists)."""
