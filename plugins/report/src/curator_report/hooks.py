"""The plugin's hook: it adds ``curator report`` (imported by every ``curator``: kept light)."""

from __future__ import annotations

from curator import hookimpl
from curator.cli.plugin_commands import Commands
from curator_report import command


@hookimpl
def curator_add_commands(commands: Commands) -> None:
    """Add ``curator report``."""
    command.add_parser(commands)
