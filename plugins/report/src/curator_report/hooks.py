"""The plugin's hook: it adds ``curator report`` (imported by every ``curator``: kept light).

Every run loads the plugins, so the command's module (and argparse) is imported only
when the command line is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curator import hookimpl

if TYPE_CHECKING:
    from curator.cli.plugin_commands import Commands


@hookimpl
def curator_add_commands(commands: Commands) -> None:
    """Add ``curator report``."""
    from curator_report import command

    command.add_parser(commands)
