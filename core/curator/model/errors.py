"""The exceptions curator raises.

Every error a user can cause derives from :class:`UsageError`, so the CLI can
turn it into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curator.model.outcome import Outcome
    from curator.model.result import RunResult


class CuratorError(Exception):
    """Base class of every error raised by curator."""


class UsageError(CuratorError, ValueError):
    """Bad input from the user: a wrong argument, option, name or target."""


class UnknownNameError(UsageError, LookupError):
    """A backend or reporter name that no plugin registered."""


class PluginError(CuratorError):
    """A plugin failed to load or register, or the requested one is broken."""


class HookFailedError(PluginError):
    """Under ``CURATOR_STRICT_PLUGINS=1``: an event hook raised during the run.

    The run itself went on without that listener and finished; ``result``
    holds everything it did.
    """

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class SessionBusyError(CuratorError, RuntimeError):
    """A :class:`~curator.Session` asked to start a run while another of its runs goes on.

    A session runs one run at a time (its workers serve one run): wait for
    the other run to end (a stream ends when it is exhausted or closed), or
    open one session per concurrent run.
    """


class BackendContractError(CuratorError):
    """A backend broke the run contract (lost, duplicated or invented an index).

    ``result`` is the run's result when the break came once every outcome was
    recorded (its ``close()`` raised), else ``None``.
    """

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class StateMergeError(CuratorError):
    """An accumulating stage's ``merge`` (or ``reset``, ``finish``) raised or returned nothing.

    Raised once the run is over: every outcome is recorded and the checkpoint
    is intact, so a resume skips what finished. ``result`` is the run's result
    (set by the run loop before it raises).
    """

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class TeardownError(UsageError):
    """A stage's ``teardown()`` raised: named per stage (and worker), once the items ran.

    The run loop raises it after every outcome is recorded, so a resume finds
    them done; ``result`` is the run's result (set by the run loop). A
    :class:`UsageError`, as the stage's code is the user's: ``except
    UsageError`` catches it too.
    """

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class TaskFailedError(CuratorError):
    """An item failed and the run stopped because ``on_error="raise"``.

    Parameters
    ----------
    outcome
        The outcome of the item that failed; its ``error`` carries the
        exception type, message and the worker's formatted traceback.
    result
        What the run had finished when it stopped; nothing finished is lost.
    """

    def __init__(self, outcome: Outcome, result: RunResult) -> None:
        self.outcome = outcome
        self.result = result
        error = outcome.error
        what = error.headline() if error else outcome.status.label
        super().__init__(f"item {outcome.index} {outcome.status.label}: {what}")

    @property
    def index(self) -> int:
        """The index of the item that stopped the run."""
        return self.outcome.index

    @property
    def remote_traceback(self) -> str:
        """The traceback formatted where the item ran (possibly another process)."""
        return self.outcome.error.traceback if self.outcome.error else ""

    def __str__(self) -> str:
        text = super().__str__()
        error = self.outcome.error
        if error is not None and error.traceback:
            text += "\n\nTraceback from the worker:\n" + error.details()
        return text


class HardStop(KeyboardInterrupt):
    """Raised in the main thread to end a run at once.

    The second Ctrl-C, the end of the grace period after the first, and
    SIGTERM raise it.

    Items never catch it: a :class:`KeyboardInterrupt` or :class:`SystemExit`
    raised by an item's own code is that item's failure, on every backend;
    only this exception, raised by curator's signal handling, stops the run.
    """


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; ``result`` keeps every outcome that had finished.

    It is a :class:`KeyboardInterrupt`, so code that does not know curator
    still stops as usual. A stop that arrives while the run records its end
    waits for the record, then is raised as this too: every item may have
    ended (``result.interrupted`` is then false), but the caller was asked to
    stop.

    Attributes
    ----------
    result
        The run's result.
    terminated
        Whether SIGTERM asked for the stop (``result.terminated``, or a
        SIGTERM that arrived while the run recorded its end).
    """

    def __init__(self, result: RunResult, terminated: bool = False) -> None:
        super().__init__("the run was interrupted")
        self.result = result
        self.terminated = terminated or result.terminated
