"""The built-in reporters, registered through the same hook as third-party ones.

By reference, as a plugin's: a run imports the module of the reporters it uses only
(none for ``reporter=None``; rich's live view only where it is shown).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from curator.observing.reporter import Reporter
from curator.plugin_host.class_ref import ClassRef, loaded_on_access
from curator.plugin_host.hookspecs import hookimpl

if TYPE_CHECKING:
    from curator.observing.reporters.jsonlines import JsonReporter
    from curator.observing.reporters.live import RichReporter
    from curator.observing.reporters.log import LogReporter
    from curator.observing.reporters.summary import NoneReporter, SummaryReporter

__all__ = [
    "JsonReporter",
    "LogReporter",
    "NoneReporter",
    "Reporter",
    "RichReporter",
    "SummaryReporter",
    "auto_reporter",
]

_HERE = "curator.observing.reporters"
_CLASSES = {
    "RichReporter": ClassRef("rich", f"{_HERE}.live:RichReporter"),
    "LogReporter": ClassRef("log", f"{_HERE}.log:LogReporter"),
    "JsonReporter": ClassRef("json", f"{_HERE}.jsonlines:JsonReporter"),
    "SummaryReporter": ClassRef("summary", f"{_HERE}.summary:SummaryReporter"),
    "NoneReporter": ClassRef("none", f"{_HERE}.summary:NoneReporter"),
}


# The classes stay importable from here, without importing them all eagerly.
__getattr__ = loaded_on_access(__name__, _CLASSES)


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLASSES})


@hookimpl
def curator_register_reporters() -> list[type[Reporter] | ClassRef]:
    """Provide ``rich``, ``log``, ``json``, ``summary`` and ``none``."""
    return list(_CLASSES.values())


def auto_reporter() -> str:
    """The reporter ``auto`` stands for: ``rich`` on an interactive terminal, else ``log``.

    A set ``CI`` variable (GitHub Actions, GitLab, ...) means ``log`` even on a
    pseudo-terminal. Whether stderr is interactive is rich's decision, so
    ``FORCE_COLOR``, ``TTY_INTERACTIVE`` and ``TERM=dumb`` are honoured; ``NO_COLOR``
    keeps the live view but drops colour.
    """
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "log"
    if not _may_be_interactive():
        return "log"  # rich's answer too, without importing it (about 25 ms)
    from rich.console import Console

    return "rich" if Console(stderr=True).is_interactive else "log"


def _may_be_interactive() -> bool:
    """Whether rich could find stderr interactive.

    Not when stderr is no terminal, unless a variable that overrides rich's own check
    (``FORCE_COLOR`` and the others) is set.
    """
    if any(name in os.environ for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")):
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stderr, as rich says (the end of a pytest run)
        return False
