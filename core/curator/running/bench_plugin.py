"""``curator bench`` as a built-in plugin (``builtin-bench``), added through the command hook.

Like the checkpoint's ``status`` and ``logs``: listed by ``curator plugins
list``, switched off by name (``CURATOR_DISABLE_PLUGINS=builtin-bench``), and
its command module is imported only when the command line is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curator.plugin_host.hookspecs import hookimpl

if TYPE_CHECKING:
    from curator.cli.plugin_commands import Commands

NAME = "builtin-bench"
"""The plugin's name: what ``CURATOR_DISABLE_PLUGINS`` takes."""


class BenchPlugin:
    """Adds ``curator bench``."""

    @hookimpl
    def curator_add_commands(self, commands: Commands) -> None:
        """Add the command that measures a pipeline on each backend."""
        from curator.cli import bench

        bench.add_parser(commands)


bench = BenchPlugin()
