"""A backend's release of its workers, which a hard stop waits for instead of abandoning.

The run's signal handlers (:mod:`curator.running.interrupts`) ask
:meth:`uninterrupted.defers` before they raise a hard stop.
"""

from __future__ import annotations

import sys
import threading
from typing import ClassVar

from curator.model.errors import HardStop
from curator.observing import capture


class uninterrupted:  # lower case: used like a function, ``with curator.uninterrupted(...)``
    """A block that a hard stop does not abandon half-way: a backend's release of its workers.

    A backend that closes a cluster, cancels batch jobs or ends worker
    processes wraps that in ``with curator.uninterrupted("closing the Dask
    cluster"):``. A hard stop (the second Ctrl-C, the end of the grace
    period, SIGTERM) that arrives inside is told to wait, with a message,
    and raised when the block ends, unless an exception is already on its way
    (raised in the block, or being handled where the block sits: a
    ``finally`` or ``except`` clause); the run is stopping then anyway.
    Without it, the stop would be raised in the middle of the release and
    leave workers or jobs behind. A third Ctrl-C inside gives up at once, for
    a release that hangs.

    Acts only in the main thread, during a run with curator's signal handling
    (elsewhere the block runs as plain code); blocks nest.

    Parameters
    ----------
    what
        What the block does, for the message (``"closing the Dask cluster"``).
    """

    PATIENCE = 3
    """Ctrl-C presses inside the block after which it is abandoned."""

    _open: ClassVar[list[uninterrupted]] = []  # the main thread's blocks, innermost last
    _presses: ClassVar[int] = 0
    _deferred: ClassVar[HardStop | None] = None

    def __init__(self, what: str) -> None:
        self.what = what
        self._entered = False

    def __enter__(self) -> uninterrupted:
        if threading.current_thread() is threading.main_thread():
            self._entered = True
            uninterrupted._open.append(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if not self._entered:
            return
        self._entered = False
        uninterrupted._open.remove(self)
        if uninterrupted._open:
            return
        deferred = uninterrupted.forget()
        # Blocks sit in `finally` and `except` clauses: an exception already on its way
        # there (a backend's error, the stream's GeneratorExit) must not be replaced.
        if deferred is not None and kind is None and sys.exc_info()[1] is None:
            raise deferred

    @classmethod
    def forget(cls) -> HardStop | None:
        """Drop the deferred stop and the presses counted; return what was deferred.

        A run's signal handling calls it as it starts and ends, so nothing a block
        left behind (a signal that landed as the block ended) reaches another run.
        """
        deferred, cls._deferred = cls._deferred, None
        cls._presses = 0
        return deferred

    @classmethod
    def defers(cls, stop: HardStop, terminating: bool) -> bool:
        """Whether the hard stop ``stop``, about to be raised by a handler, waits for a block.

        Called by the run's signal handlers (``terminating``: for SIGTERM);
        ``False`` outside every block, and at the :attr:`PATIENCE`-th Ctrl-C
        inside one (then it is raised).
        """
        if not cls._open:
            return False
        if terminating:
            said = "(SIGTERM)"
        else:
            cls._presses += 1
            if cls._presses >= cls.PATIENCE:
                return False
            left = cls.PATIENCE - cls._presses
            said = f"(Ctrl-C {left} more time(s) to abandon it)"
        if cls._deferred is None or terminating:
            cls._deferred = stop
        capture.notice(f"\ncurator: {cls._open[-1].what} before stopping {said}\n")
        return True
