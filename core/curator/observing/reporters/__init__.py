"""The built-in reporters, registered through the same hook as third-party ones."""

from __future__ import annotations

import os

from curator.observing.reporter import Reporter
from curator.observing.reporters.jsonlines import JsonReporter
from curator.observing.reporters.live import RichReporter
from curator.observing.reporters.log import LogReporter
from curator.observing.reporters.summary import NoneReporter, SummaryReporter
from curator.plugin_host.hookspecs import hookimpl

__all__ = [
    "JsonReporter",
    "LogReporter",
    "NoneReporter",
    "RichReporter",
    "SummaryReporter",
    "auto_reporter",
]


@hookimpl
def curator_register_reporters() -> list[type[Reporter]]:
    """Provide ``rich``, ``log``, ``json``, ``summary`` and ``none``."""
    return [RichReporter, LogReporter, JsonReporter, SummaryReporter, NoneReporter]


def auto_reporter() -> str:
    """The reporter ``auto`` stands for: ``rich`` on an interactive terminal, else ``log``.

    A set ``CI`` variable (GitHub Actions, GitLab, ...) means ``log`` even on a
    pseudo-terminal. Whether stderr is interactive is rich's decision, so
    ``FORCE_COLOR``, ``TTY_INTERACTIVE`` and ``TERM=dumb`` are honoured; ``NO_COLOR``
    keeps the live view but drops colour.
    """
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "log"
    from rich.console import Console

    return "rich" if Console(stderr=True).is_interactive else "log"
