"""Two-stage Ctrl-C and SIGTERM for the duration of a run.

- The first SIGINT stops dispatching and lets running items finish, for at most
  ``grace`` seconds; everything that finishes is recorded.
- A second SIGINT, or the end of the grace period, raises :class:`HardStop` in
  the main thread: the backend hands over what already finished, stops its
  workers at once, and the items still running end ``interrupted``.
- SIGTERM is a hard stop at once (:class:`Terminated`); the checkpoint is still written.
- While the run records its end (backend let go, stage state and shards merged,
  checkpoint closed: :class:`Finishing`), SIGINT and SIGTERM wait: a stop asked
  for then must not cost what already finished. A third Ctrl-C there gives up
  at once, for a finish that hangs.
- A backend's own release of its workers (closing a cluster, cancelling batch
  jobs) runs in :class:`uninterrupted`: a hard stop that arrives then waits
  until the release is done (with a message), so it is not abandoned half-way;
  the third Ctrl-C there gives up.

The end of the grace period is delivered as a real SIGINT to the main thread
(``pthread_kill``), not as a flag: a flag is only seen when the main thread
runs Python code, and a run waiting on a worker that never finishes would
never see it.

Handlers are installed only in the main thread, and only where the signal has
its default disposition (a program that ignores SIGINT keeps ignoring it).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from curator.backends.releasing import uninterrupted
from curator.model.errors import HardStop
from curator.observing import capture

Handler = Callable[[int, FrameType | None], None]


def _take_over(on_sigint: Handler, on_sigterm: Handler) -> dict[int, Any]:
    """Install the handlers where the signal has its default disposition (main thread only).

    Returns the handlers replaced, for :func:`_give_back`.
    """
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum, default, handler in (
            (signal.SIGINT, signal.default_int_handler, on_sigint),
            (signal.SIGTERM, signal.SIG_DFL, on_sigterm),
        ):
            if signal.getsignal(signum) is default:
                previous[signum] = signal.signal(signum, handler)
    return previous


def _give_back(previous: dict[int, Any]) -> None:
    """Restore what :func:`_take_over` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    previous.clear()


_LOCK_STEPS = frozenset({"__enter__", "__exit__"})
"""Functions that take or give back a lock around a ``with`` block, where an exception
raised leaves it held (``threading.Condition.__enter__`` between its lock's acquire and
its return, before the block that lets go) or given back twice. A signal's handler runs
right after the C call that took it."""

_MODULE_LOCK_STEPS = {
    # Condition.wait() gives its lock back and takes it again in steps of its own.
    "threading": frozenset({"_release_save", "_acquire_restore", "_is_owned", "release"}),
    # Handler.acquire() (3.10 to 3.12) takes the lock; the try that gives it back is
    # in the caller. The module's lock too.
    "logging": frozenset({"acquire", "release", "_acquireLock", "_releaseLock"}),
}
"""Such steps by module: names that any module's code may use for other things."""

SLEEP_SLICE = 0.05
"""Seconds between looks at the stop flags while a run waits between retry rounds."""

PATIENCE = 1.0
"""Seconds a signal waits for the main thread to leave a lock's step or a write to
stderr (then it acts there all the same)."""


def _mid_lock_step(frame: FrameType | None) -> bool:
    """Whether ``frame`` is inside a step that takes or gives back a lock (see _LOCK_STEPS)."""
    if frame is None:
        return False
    name = frame.f_code.co_name
    if name in _LOCK_STEPS:
        return True
    steps = _MODULE_LOCK_STEPS.get(frame.f_globals.get("__name__", ""))
    return steps is not None and name in steps


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a ``__del__``, where an exception raised is dropped."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class Terminated(HardStop):
    """SIGTERM arrived during a run."""


class Interrupts:
    """Install the run's signal handlers on enter, restore the previous ones on exit.

    Parameters
    ----------
    on_first
        Called at the first SIGINT: ask the backend to stop dispatching.
    grace
        Seconds to wait for running items after the first SIGINT.
    """

    def __init__(self, on_first: Callable[[], None], grace: float) -> None:
        self.on_first = on_first
        self.grace = grace
        self.requested = False
        """The first stage happened: the run is winding down."""
        self.terminated = False
        """SIGTERM arrived."""
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None
        self._active = threading.Lock()
        self._installed = False
        self._inside = False
        """Between enter and exit: the handlers act (after it, a late signal is only noted)."""
        self._grace_sent = False
        self._late: int | None = None
        self._raised = 0  # hard stops raised (not dropped in a finalizer)
        self._handling = False  # inside the first SIGINT's handler (see _on_sigint)
        self._waiting_since: float | None = None  # a signal waits (see _waits)

    def __enter__(self) -> Interrupts:
        uninterrupted.forget()
        self._inside = True  # before the handlers: one that runs at once must act
        self._previous = _take_over(self._on_sigint, self._on_sigterm)
        self._installed = signal.SIGINT in self._previous
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        if self._late is None:  # a stop asked for as the run left: act on it now
            return
        if self._late == signal.SIGTERM:
            self.terminated = True
            if kind is None:  # an exception already on its way ends the run anyway
                raise Terminated
        else:
            self.requested = True

    def close(self) -> None:
        """Give the previous handlers back (again: nothing); :meth:`__exit__` does it.

        A signal's handler may still raise at the very start of ``__exit__``
        (Python runs pending handlers on entering a function), before anything
        is restored: so the run calls this once more after leaving, whatever
        happened. Otherwise every later run in the process would find the
        handlers taken and install none (its grace period would never end).
        """
        with self._active:  # the grace timer must not signal a thread that left the run
            self._installed = False
            self._inside = False  # from here on the handlers raise nothing
            if self._timer is not None:
                self._timer.cancel()
        _give_back(self._previous)
        uninterrupted.forget()

    def _left(self, signum: int) -> bool:
        """Whether the run already left (a signal that was on its way as it did).

        Its handlers are still installed for a moment, and a handler that raised
        there would skip restoring the previous ones (see :meth:`close`). So a
        late signal is only noted, and acted on once the
        previous handlers are back (a SIGTERM raises :class:`Terminated`, a
        SIGINT marks the run stopped); the grace period's own SIGINT is dropped.
        """
        if self._inside:
            return False
        if signum == signal.SIGINT and self._grace_sent:
            self._grace_sent = False
        elif self._late is None:
            self._late = signum
        return True

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._left(signum):
            return
        if self.requested:
            self._hard_stop(HardStop(), signum, frame)
            return
        # The backend's request_stop() and the reporters run here, in the main thread,
        # wherever it stands: not while it takes or gives back a lock they may want.
        # Nor while it writes to stderr itself (a write blocked on a full pipe runs
        # handlers too): the message would raise "reentrant call" into that write.
        mid_lock = _mid_lock_step(frame)
        said = not mid_lock and self._say_stopping()
        if self._waits(not said):
            self._again(signum)
            return
        if not said:  # waited long enough: say it if stderr lets us, and stop all the same
            self._say_stopping()
        self.requested = True
        # A second signal's handler runs at the next bytecode, nested in this one: a
        # hard stop raised there, inside an Event's set() between its lock's acquire
        # and its with-block, left that lock held, and the backend's own set() of the
        # same event then waited for ever (seen in CI). Until this handler is done,
        # a hard stop is delivered again a moment later (see _hard_stop).
        self._handling = True
        try:
            self.on_first()
            self._timer = threading.Timer(self.grace, self._grace_over)
            self._timer.daemon = True
            self._timer.start()
        finally:
            self._handling = False

    def _say_stopping(self) -> bool:
        """Tell the user the run stops; false if stderr is in the middle of a write here."""
        return capture.notice(
            f"\ncurator: stopping: no new items; waiting up to {self.grace:g} s for "
            "running ones (Ctrl-C again to stop them at once)\n"
        )

    def _grace_over(self) -> None:
        with self._active:
            if self._installed:
                sys.stderr.write(
                    f"curator: the grace period of {self.grace:g} s is over; "
                    "stopping running items\n"
                )
                sys.stderr.flush()
                self._grace_sent = True
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._left(signum):
            return
        if self._handling:  # nested in the first SIGINT's handler (see _on_sigint)
            self._again(signum)
            return
        self.terminated = True
        self._hard_stop(Terminated(), signum, frame)

    def _hard_stop(self, stop: HardStop, signum: int, frame: FrameType | None) -> None:
        """Raise ``stop`` here, unless a backend's release defers it, or here is a finalizer.

        The grace period ends with it (its own SIGINT would count as one more
        press inside a release). Python prints and drops what a ``__del__``
        raises, and runs signal handlers wherever the main thread is,
        finalizers included (found on Dask: a SIGTERM raised inside a
        ``Future.__del__`` was lost, and the run waited for its items
        forever): there, inside the first SIGINT's handler, and in the middle
        of taking or giving back a lock (see :meth:`_waits_for_lock`), the
        signal is delivered again 20 ms later.
        """
        if self._timer is not None:
            self._timer.cancel()
        if uninterrupted.defers(stop, terminating=isinstance(stop, Terminated)):
            return
        if not self._handling and not _in_finalizer(frame) and not self._waits_for_lock(frame):
            self._raised += 1
            raise stop
        self._again(signum)

    def _waits_for_lock(self, frame: FrameType | None) -> bool:
        """Whether a signal waits: the main thread is taking or giving back a lock.

        A hard stop raised there would leave the lock held for ever (another
        thread's ``Event.set()``, or the backend's own cleanup, then waits on
        it: the hazard seen inside the first handler), and the first Ctrl-C's
        request_stop() may want that lock. So the signal is delivered again a
        moment later (see :meth:`_waits`).
        """
        return self._waits(_mid_lock_step(frame))

    def _waits(self, reason: bool) -> bool:
        """Whether a signal waits for ``reason`` to pass: for at most :data:`PATIENCE` seconds.

        So an ``__exit__`` that blocks, or a stderr that nobody reads, does not
        hold a stop back for longer.
        """
        if not reason:
            self._waiting_since = None
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since < PATIENCE:
            return True
        self._waiting_since = None
        return False

    def _again(self, signum: int) -> None:
        """Deliver ``signum`` to the main thread again in 20 ms (where it could not act now)."""
        again = threading.Timer(0.02, self._resend, (signum, self._raised))
        again.daemon = True
        again.start()

    def _resend(self, signum: int, raised: int) -> None:
        with self._active:
            # Not when a stop was raised since (another signal's): that one is on its way.
            # Not _installed (SIGINT's): with SIGINT ignored, only SIGTERM's handler is ours.
            if self._inside and signum in self._previous and self._raised == raised:
                signal.pthread_kill(threading.main_thread().ident or 0, signum)

    @property
    def stopped_hard(self) -> bool:
        """Whether a hard stop was raised (a second Ctrl-C, the grace period's end, SIGTERM).

        A stream's consumer may get it in its own loop body, where the run
        only sees its generator closed.
        """
        return self._raised > 0

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (between retry rounds); return early, true, if a stop was asked."""
        # Slices of time.sleep, not an Event's wait: the handlers then set plain flags
        # and take no lock the main thread may hold when they run.
        deadline = time.monotonic() + seconds
        while not (self.requested or self.terminated):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, SLEEP_SLICE))
        return self.requested or self.terminated


class Finishing:
    """Hold SIGINT and SIGTERM while a run records its end; restore them on exit.

    The run's end is short and bounded work that keeps what finished (the
    checkpoint's last records, the merged shards, the summary a ``--json``
    caller reads), so a Ctrl-C or SIGTERM that arrives then is told to wait,
    not raised; the run passes the stop on once its end is recorded (see
    :attr:`stop_asked`). The third Ctrl-C raises :class:`KeyboardInterrupt`
    after all: the way out of a finish that hangs.
    """

    PATIENCE = 3
    """Ctrl-C presses during the finish after which it is abandoned."""

    def __init__(self) -> None:
        self.presses = 0
        """Ctrl-C presses during the finish (a SIGTERM waits too, but never abandons it)."""
        self.terminated = False
        """Whether SIGTERM arrived during the finish."""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Finishing:
        self._previous = _take_over(self._on_signal, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _give_back(self._previous)

    @property
    def stop_asked(self) -> bool:
        """Whether a Ctrl-C or SIGTERM waited for the finish: the caller must still stop."""
        return self.presses > 0 or self.terminated

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self.presses += 1
            if self.presses >= self.PATIENCE:
                raise KeyboardInterrupt
            said = f"(Ctrl-C {self.PATIENCE - self.presses} more time(s) to abandon it)"
        else:
            self.terminated = True
            said = "(SIGTERM)"
        capture.notice(f"\ncurator: recording what finished before stopping {said}\n")
