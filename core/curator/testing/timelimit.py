"""A time limit for each check of the conformance kit: it fails, naming what it waited for.

A backend under test may never send the outcome a check waits for: a batch
backend that reports a chunk only when its job ends, a relay that lost a
record. Without a limit the check, and the whole test session, would hang.
With one, the check fails with what it was waiting for, every thread's stack
is written to stderr, and items the probe holds are released.

The failure reaches the check's thread as a real signal (``pthread_kill``),
so it also interrupts a run blocked on a queue or a pipe: the handler raises
pytest's failure, which the run's own cleanup lets pass. If the check has
still not given up :attr:`~curator.testing.limits.KitLimits.released_within`
seconds later (a thread stuck in C code that ignores signals), the test
process ends with exit code 70 and every thread's stack on stderr, rather
than hang CI.

A part of a check with a documented limit of its own (a hard stop must end
the run within 30 s) is watched too (:meth:`TimeLimit.waiting_for`): past
that limit the probe lets go of its items and the run has ``released_within``
seconds to end by itself, so that a backend's clean-up is not cut short,
before the check is failed as above.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

import pytest

EXIT_CODE = 70
"""How the test process ends when a check ignores its failure (EX_SOFTWARE)."""
_SIGNAL = signal.SIGALRM
"""Sent to the check's thread when its time is up (never through the process-wide timer)."""


class TimeLimit:
    """Fail the check running in this thread if it takes longer than ``seconds``.

    Parameters
    ----------
    check
        The check's name, for the message.
    seconds
        Its time budget.
    released_within
        How long it may take to give up once failed, before the process ends;
        and how long a run past a block's own limit has to end by itself.
    release
        Called when the time is up, before the check is failed: lets go of
        whatever the probe holds (hung items), so the backend can wind down.
    """

    def __init__(
        self,
        check: str,
        seconds: float,
        released_within: float,
        release: Callable[[], None],
        uncapture: Callable[[], None] | None = None,
    ) -> None:
        self.uncapture = uncapture
        """Called before the process ends: hands what pytest captured to the terminal."""
        self.check = check
        self.seconds = seconds
        self.released_within = released_within
        self.release = release
        self.waiting = "the check to end"
        """What the check waits for now (see :meth:`waiting_for`)."""
        self.failure: str | None = None
        """Why the check was failed, once it was."""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._wake = threading.Event()  # the check ended, or was failed early
        self._thread = threading.current_thread()
        self._previous: object = None
        self._installed = False
        self._raised = False
        self._watcher = threading.Thread(target=self._watch, name="curator-kit-limit", daemon=True)
        self._overruns: list[_Overrun] = []  # every block's own limit: ended by close() at last

    def __enter__(self) -> TimeLimit:
        if self._thread is threading.main_thread():  # elsewhere: the last resort alone
            self._previous = signal.signal(_SIGNAL, self._on_signal)
            self._installed = True
        self._watcher.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the limit (again: nothing). :meth:`__exit__` does it.

        The failure's signal may land on ``__exit__``'s first line (Python runs
        a pending handler on entering a function) and skip it: so the kit calls
        this once more after the check, whatever happened. The failure is
        raised at most once, so this second call always runs through.
        """
        with self._lock:
            self._done.set()
            self._wake.set()
        for overrun in self._overruns:  # a failure that landed in a block's finally skipped it
            overrun.end()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join()
        if self._installed:
            self._installed = False
            previous = self._previous
            signal.signal(_SIGNAL, signal.SIG_DFL if previous is None else previous)  # type: ignore[arg-type]

    @contextmanager
    def waiting_for(
        self,
        what: str,
        *,
        within: float | None = None,
        limit: str = "",
        after: threading.Event | None = None,
    ) -> Iterator[None]:
        """Name what the check waits for while in the block (the failure says it).

        With ``within``, the block has that many seconds of its own, counted from
        its start and named by ``limit`` (a :class:`~curator.testing.limits.KitLimits`
        field). Past them the items the probe holds are let go, and the block has
        :attr:`released_within` seconds to end (the check's own assertion then says
        by how much it overran); if it does not, the check fails at once, rather than
        only when its whole budget ran out. With ``after``, that limit is enforced
        only once the event is set (a signal sent: until then the check's wait for
        the run to get that far governs).
        """
        before, self.waiting = self.waiting, what
        overrun = None
        if within is not None:
            why = f"{self.check}: {what} took longer than {within:g} s" + (
                f" (KitLimits.{limit})" if limit else ""
            )
            overrun = _Overrun(self, why, time.monotonic() + within, after)
            self._overruns.append(overrun)
            overrun.thread.start()
        try:
            yield
        finally:
            if overrun is not None:
                overrun.end()
            self.waiting = before

    def signal_unless_failed(self, signum: int) -> bool:
        """Send ``signum`` to the main thread, unless the check failed or ended: whether sent.

        Under the lock :meth:`fail_now` takes, so that a check failed meanwhile is not
        sent a Ctrl-C or a SIGTERM it no longer handles (which would end the session).
        """
        with self._lock:
            if self._done.is_set() or self.failure is not None:
                return False
            signal.pthread_kill(threading.main_thread().ident or 0, signum)
            return True

    def release_probe(self) -> None:
        """Let go of what the probe holds; a failure to is written to stderr, never raised."""
        try:
            self.release()
        except Exception as exc:  # the check's failure matters more than the release
            os.write(2, f"curator.testing: releasing the probe failed: {exc!r}\n".encode())

    def fail_now(self, why: str) -> None:
        """Fail the check at once with ``why``, as if its time were up (from any thread).

        Returns at once: the check's own thread is failed by the watcher.
        """
        with self._lock:
            if self._done.is_set() or self.failure is not None:
                return
            self.failure = why
            self._wake.set()

    def _watch(self) -> None:
        self._wake.wait(self.seconds)
        with self._lock:
            if self._done.is_set():
                return
            if self.failure is None:
                self.failure = (
                    f"{self.check} did not finish within its {self.seconds:g} s: it was "
                    f"waiting for {self.waiting}"
                )
        self._give_up()

    def _give_up(self) -> None:
        """Say why, show every stack, release the probe, fail the check; end the process last."""
        os.write(2, f"\ncurator.testing: {self.failure}; every thread's stack:\n".encode())
        faulthandler.dump_traceback(all_threads=True)
        self.release_probe()
        ident = self._thread.ident
        if self._installed and ident is not None:
            signal.pthread_kill(ident, _SIGNAL)
        if self._done.wait(self.released_within):
            return
        if self.uncapture is not None:
            # pytest holds the check's stderr until the check ends, which it will not:
            # what it holds (the failure, the stacks) and what follows go to the terminal.
            try:
                self.uncapture()
            except Exception as exc:
                os.write(2, f"curator.testing: could not stop pytest's capture: {exc!r}\n".encode())
        os.write(
            2,
            f"curator.testing: {self.check} did not give up within {self.released_within:g} s "
            f"of failing; ending the test process (exit code {EXIT_CODE})\n".encode(),
        )
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(EXIT_CODE)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.failure is not None and not self._done.is_set() and not self._raised:
            self._raised = True  # once: the kit's cleanup must run through
            pytest.fail(self.failure, pytrace=False)


class _Overrun:
    """A block's own time limit (see :meth:`TimeLimit.waiting_for`), watched from a thread."""

    def __init__(
        self, limit: TimeLimit, why: str, deadline: float, armed: threading.Event | None
    ) -> None:
        self.limit = limit
        self.why = why
        self.deadline = deadline
        self.armed = armed
        self.ended = threading.Event()
        self._gate = threading.Lock()  # the block ends, or the check is failed: not both
        self.thread = threading.Thread(target=self._watch, name="curator-kit-within", daemon=True)

    def end(self) -> None:
        """The block ended: nothing more to watch."""
        with self._gate:
            self.ended.set()

    def _watch(self) -> None:
        if self.armed is not None:
            while not self.armed.is_set():
                if self.ended.wait(0.02):
                    return
        if self.ended.wait(max(0.0, self.deadline - time.monotonic())):
            return
        limit = self.limit
        # Let go first: a backend past its limit may be in its own clean-up (cancelling
        # jobs, closing a cluster), which a failure raised into the run would cut short.
        os.write(
            2,
            f"\ncurator.testing: {self.why}; letting go of the items the probe holds, the "
            f"run has {limit.released_within:g} s to end\n".encode(),
        )
        limit.release_probe()
        if self.ended.wait(limit.released_within):
            return  # the check's own assertion says by how much the run overran
        with self._gate:
            if not self.ended.is_set():
                limit.fail_now(
                    f"{self.why}, and it had not ended {limit.released_within:g} s after the "
                    "probe let go of its items"
                )
