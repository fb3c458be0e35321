"""The Reporter base class: a plugin object that observes one run's events.

A reporter implements any of the event hooks (``curator_run_start``,
``curator_task_start``, ``curator_task_finish``, ``curator_run_finish``) as
methods marked with :data:`curator.hookimpl`. The core creates one instance per
run and registers it for that run only; the hooks are always called in the
parent process, so a reporter never needs to be picklable or thread-safe.
"""

from __future__ import annotations

from typing import Any, ClassVar

from curator.plugin_host.options import NoOptions
from curator.plugin_host.requirements import missing_requirements


class Reporter:
    """Base class of reporters, built-in or third-party.

    Attributes
    ----------
    name
        Stable short name used with ``--reporter``.
    description
        One line for ``curator reporters list``.
    requires
        Import names that must be installed.
    Options
        A dataclass of typed options.

    Parameters
    ----------
    options
        An instance of :attr:`Options`, validated by the core.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type[Any]] = NoOptions

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Say why the reporter cannot run here (a missing requirement), or ``None``."""
        return missing_requirements(cls.requires)


def check_stream(value: object) -> None:
    """Refuse a reporter's ``stream`` option that is no text stream (``ValueError``).

    A stream is given from Python; on the command line it would be a word
    (``--reporter-option log.stream=x``), which fails only at the first line written.
    """
    if value is not None and not callable(getattr(value, "write", None)):
        raise ValueError(
            f"stream must be a text stream (an object with write()), not {value!r}: "
            "give it from Python"
        )
