"""Bounding a stage's ``setup``/``teardown`` that runs in this process, in this thread.

The in-process backends (``sequential``, every backend at ``jobs=1``, and the
thread pool's shared pipeline) call the stages' hooks in the run's own thread,
and a thread cannot be killed. What can be done, :class:`HookDeadline` does:

- In the main thread the limit arrives as a real signal (SIGINT through
  ``pthread_kill``, as the end of the grace period does, see
  :mod:`curator.running.interrupts`), and its handler raises :class:`HookTimeout`: a
  hook blocked in ``time.sleep``, a socket, a lock or a child process wakes up
  and stops as it would on Ctrl-C. Only C code that never returns to Python
  goes on.
- In any other thread (a run started from a thread) :class:`HookTimeout` is
  raised asynchronously: it stops a hook running Python code at its next line,
  but one blocked in a single call into C only when that call returns.

Either way a warning names the stage when its limit passes, and the hook sees
an exception; a hook that catches ``BaseException`` and goes on defeats it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any

from curator.backends.dispatch import units
from curator.backends.lifecycle import WorkerInfo, hook_call, setup_timed_out, teardown_abandoned
from curator.backends.work import Work
from curator.model.outcome import Outcome

log = logging.getLogger("curator")

SETUP_FATE = "it was interrupted, and this worker runs none of the run's items without it"
TEARDOWN_FATE = "it was interrupted"


class HookTimeout(BaseException):
    """Raised in the thread whose stage hook ran past its limit.

    A ``BaseException``, like :class:`KeyboardInterrupt`: a hook's own
    ``except Exception`` does not swallow it.
    """


class HookDeadline:
    """A context that stops the hook running in it once ``limit`` seconds have passed.

    Parameters
    ----------
    limit
        Seconds; ``None`` bounds nothing.
    hook
        ``"setup"`` or ``"teardown"``, for the warning.
    worker
        The worker's id, for the warning.

    Attributes
    ----------
    stage
        The stage whose hook was called last (pass :meth:`announce` to
        :meth:`curator.Work.setup` or :meth:`curator.Work.teardown`).
    """

    def __init__(self, limit: float | None, hook: str, worker: str) -> None:
        self.limit = limit
        self.hook = hook
        self.worker = worker
        self.stage: str | None = None
        self._fired = False
        self._raised = False
        self._active = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._ident = 0
        self._by_signal = False
        self._previous: Any = None

    def announce(self, hook: str, stage: str) -> None:
        """Note the stage whose hook is called next."""
        self.stage = stage

    def __enter__(self) -> HookDeadline:
        if self.limit is None:
            return self
        self._ident = threading.get_ident()
        if threading.current_thread() is threading.main_thread() and hasattr(
            signal, "pthread_kill"
        ):
            previous = signal.getsignal(signal.SIGINT)
            if previous is not None:  # None: a handler installed outside Python, not ours to wrap
                self._previous = previous
                self._by_signal = True
                signal.signal(signal.SIGINT, self._on_sigint)
        self._active = True
        self._timer = threading.Timer(self.limit, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is None:
            return
        with self._lock:
            self._active = False
        self._timer.cancel()
        if self._by_signal:
            if self._fired and not self._raised:
                _absorb_sigint()  # sent as the hook returned: not the user's Ctrl-C
            signal.signal(signal.SIGINT, self._previous)
        elif self._fired:
            _raise_in(self._ident, None)  # the hook returned before it was raised: withdraw it

    def _expire(self) -> None:
        with self._lock:
            if not self._active:
                return
            self._fired = True
            log.warning(
                "%s has run for %g s on worker %s, past its limit; stopping it%s",
                hook_call(self.stage, self.hook),
                self.limit,
                self.worker,
                ""
                if self._by_signal
                else " (in this thread, a hook blocked in a call "
                "into C stops only when that call returns)",
            )
            if self._by_signal:
                signal.pthread_kill(self._ident, signal.SIGINT)
            else:
                _raise_in(self._ident, HookTimeout)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._fired and not self._raised:
            self._raised = True
            if self._active:
                raise HookTimeout
            return  # the hook had returned: nothing to stop
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt
        # SIG_IGN: the program ignores Ctrl-C, and so does the hook


def _absorb_sigint() -> None:
    """Let a SIGINT already sent to this (main) thread reach the current handler, now.

    With SIGINT blocked, a signal not yet delivered stays pending and is taken
    off the queue; one delivered already has its Python handler run here.
    """
    import ctypes  # only when a limit ran out: importing it costs every run 2.5 ms

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        ctypes.pythonapi.PyErr_CheckSignals()
        if signal.SIGINT in signal.sigpending():
            signal.sigtimedwait({signal.SIGINT}, 0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _raise_in(ident: int, kind: type[BaseException] | None) -> None:
    """Raise ``kind`` in thread ``ident`` at its next line of Python (``None``: withdraw it)."""
    import ctypes  # as above

    exception = ctypes.py_object(kind) if kind is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exception)


def set_up_in_time(
    work: Work, info: WorkerInfo, limit: float | None, worker: str
) -> HookDeadline | None:
    """Set ``work`` up in this thread within ``limit``: the deadline if it passed, else ``None``.

    A :class:`~curator.model.errors.UsageError` of a ``setup`` that raised goes on
    as before; the stages set up before one that overran are not torn down
    (as on a worker process killed for it).
    """
    deadline = HookDeadline(limit, "setup", worker)
    try:
        with deadline:
            work.setup(info, deadline.announce)
    except HookTimeout:
        return deadline
    return None


def tear_down_in_time(work: Work, limit: float | None, worker: str) -> None:
    """Tear ``work`` down in this thread within ``limit``; past it, abandon it with a warning."""
    deadline = HookDeadline(limit, "teardown", worker)
    try:
        with deadline:
            work.teardown(deadline.announce)
    except HookTimeout:
        assert limit is not None
        teardown_abandoned(deadline.stage, limit, worker, TEARDOWN_FATE)


def unrun(
    indices: Sequence[int], deadline: HookDeadline, attempt: int, stopped: Callable[[], bool]
) -> Iterator[Outcome]:
    """The ``SetupTimeout`` outcomes of ``indices``, which the overrun setup kept from running.

    One unit at a time (see :func:`curator.backends.dispatch.units`), until ``stopped()``
    (the core asked the backend to stop: what is left reads cancelled).
    """
    assert deadline.limit is not None
    for unit in units(indices):
        if stopped():
            return
        yield from setup_timed_out(
            list(unit), deadline.stage, deadline.limit, deadline.worker, SETUP_FATE, attempt
        )
