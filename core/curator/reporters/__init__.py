"""The built-in reporters, registered through the same hook as third-party ones."""

from __future__ import annotations

from curator.hookspecs import hookimpl
from curator.reporter import Reporter
from curator.reporters.summary import NoneReporter, SummaryReporter

__all__ = ["NoneReporter", "SummaryReporter"]


@hookimpl
def curator_register_reporters() -> list[type[Reporter]]:
    """Provide ``summary`` and ``none``."""
    return [SummaryReporter, NoneReporter]
