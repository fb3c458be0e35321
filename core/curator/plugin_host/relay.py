"""One run's event hooks: every listener called in turn, none able to cost the run.

Reporters and plugins observe a run through the event hooks. An observer that
raises must not end the run or lose its result: its hook implementation is
disabled for the rest of the run with a warning naming its plugin, and the
other listeners and the run go on. A listener raising :class:`~curator.UsageError`
(say, a report file that cannot be written) is the exception: that is the user's
input at fault, so it ends the run like any other bad argument.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from curator.model.errors import HookFailedError, UsageError
from curator.plugin_host.hookspecs import EVENT_HOOKS

if TYPE_CHECKING:
    from curator.model.result import RunResult

log = logging.getLogger("curator")


@dataclass(frozen=True)
class HookFailure:
    """A listener that raised and was disabled for the rest of the run."""

    plugin: str
    hook: str
    error: str
    traceback: str


@dataclass
class _Listener:
    plugin: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


class EventRelay:
    """Calls one run's event hooks on every listener, isolating their failures.

    Parameters
    ----------
    manager
        A plugin manager holding every listener (plugins and this run's reporters).
    describe
        Turns a registered plugin name into how messages name it.
    trace
        Where to write each call (``CURATOR_DEBUG_PLUGINS=1``), or ``None``.
    strict
        Make a failing listener fatal once the run has finished
        (``CURATOR_STRICT_PLUGINS=1``): see :meth:`check`.
    """

    def __init__(
        self,
        manager: pluggy.PluginManager,
        describe: Callable[[str], str] = repr,
        trace: Callable[[str], None] | None = None,
        strict: bool = False,
    ) -> None:
        self.describe = describe
        self.trace = trace
        self.strict = strict
        self.failures: list[HookFailure] = []
        self._listeners = {hook: self._collect(manager, hook) for hook in EVENT_HOOKS}
        self._calling: str | None = None
        """The plugin whose listener runs now (a subscription it makes is its own)."""

    @staticmethod
    def _collect(manager: pluggy.PluginManager, hook: str) -> list[_Listener]:
        # pluggy's order: the last registered first (tryfirst/trylast respected).
        impls = getattr(manager.hook, hook).get_hookimpls()
        return [
            _Listener(impl.plugin_name, impl.function, tuple(impl.argnames))
            for impl in reversed(impls)
        ]

    def listens(self, hook: str) -> bool:
        """Whether any listener implements ``hook`` (callers skip building its records)."""
        return bool(self._listeners[hook])

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on every listener that still listens."""
        listeners = self._listeners[hook]
        for listener in listeners:
            if self.trace is not None:
                self.trace(f"{hook} [{listener.plugin}]")
            self._calling = listener.plugin
            try:
                listener.function(*[kwargs[name] for name in listener.argnames])
            except (UsageError, KeyboardInterrupt, BrokenPipeError):
                # Bad input; Ctrl-C or curator's own hard stop; or the reader of the
                # output went away (`curator run ... --reporter json | head`): the run
                # stops as a program killed by SIGPIPE would, its checkpoint written.
                raise
            except BaseException as exc:
                self._disable(hook, listener, exc)
            finally:
                self._calling = None

    def check(self, result: RunResult) -> None:
        """In strict mode, raise :class:`~curator.HookFailedError` if a listener failed."""
        if self.strict and self.failures:
            first = self.failures[0]
            raise HookFailedError(
                f"{self.describe(first.plugin)}: {first.hook} raised {first.error} "
                f"({len(self.failures)} hook failure(s) in this run; strict plugin mode)",
                result,
            )

    def guarded(self, callback: Callable[..., None], what: str) -> Callable[..., None]:
        """``callback`` (a listener's subscription to the run's progress), isolated as hooks are.

        Once it raises, it is dropped with a warning naming its plugin, and the run
        goes on (in strict plugin mode, :meth:`check` fails the run at its end).
        """
        owner = getattr(callback, "__self__", None)
        plugin = self._calling or next(
            (
                listener.plugin
                for listeners in self._listeners.values()
                for listener in listeners
                if owner is not None and getattr(listener.function, "__self__", None) is owner
            ),
            getattr(callback, "__qualname__", repr(callback)),
        )
        dropped = False

        def call(*args: Any) -> None:
            nonlocal dropped
            if dropped:
                return
            try:
                callback(*args)
            except (UsageError, KeyboardInterrupt, BrokenPipeError):
                raise  # as from a hook (see call)
            except BaseException as exc:
                dropped = True
                self._record(plugin, what, exc)

        return call

    def _disable(self, hook: str, listener: _Listener, exc: BaseException) -> None:
        self._listeners[hook] = [other for other in self._listeners[hook] if other is not listener]
        self._record(listener.plugin, hook, exc)

    def _record(self, plugin: str, hook: str, exc: BaseException) -> None:
        failure = HookFailure(
            plugin,
            hook,
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        )
        self.failures.append(failure)
        log.warning(
            "%s: %s raised %s; it is disabled for the rest of this run, which goes on",
            self.describe(plugin),
            hook,
            failure.error,
        )
        if self.trace is not None:  # as broken plugins' tracebacks are shown
            log.warning("%s", failure.traceback)
