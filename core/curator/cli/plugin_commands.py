"""Commands that plugins add to ``curator`` (the ``curator_add_commands`` hook).

The CLI builds its registry before it parses the command line, then asks each
plugin for its commands. A plugin gets a :class:`Commands`, which adds a
subcommand as argparse's ``add_parser`` does but refuses a name that is taken
(a built-in command or another plugin's): the plugin is then listed broken,
and what it added is taken out again, so a broken plugin never changes how
another command parses.
"""

from __future__ import annotations

import argparse
from typing import Any

from curator.registry import Registry


class Commands:
    """What a plugin's ``curator_add_commands`` hook adds its subcommands through.

    Parameters
    ----------
    subparsers
        The ``curator`` parser's subcommands.
    """

    def __init__(self, subparsers: Any) -> None:
        self._subparsers = subparsers
        self.added: list[str] = []

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add the subcommand ``name``; keyword arguments as argparse's ``add_parser`` takes.

        Give it a handler with ``parser.set_defaults(handler=function)``: the
        function takes the :class:`~curator.registry.Registry` and the parsed
        arguments and returns the exit code.

        Raises
        ------
        ValueError
            When ``name`` or one of its ``aliases`` is a command already.
        """
        wanted = [name, *kwargs.get("aliases", ())]
        taken = [n for n in wanted if n in self._subparsers.choices]
        if taken:
            raise ValueError(f"the command {taken[0]!r} exists already")
        parser: argparse.ArgumentParser = self._subparsers.add_parser(name, **kwargs)
        self.added += wanted
        return parser

    def take_back(self) -> None:
        """Remove every command added through this object."""
        for name in self.added:
            self._subparsers.choices.pop(name, None)
        actions = self._subparsers._choices_actions
        actions[:] = [a for a in actions if a.dest not in self.added]
        self.added = []


def add_plugin_commands(registry: Registry, subparsers: Any) -> None:
    """Ask every loaded plugin for its commands; a plugin whose hook fails is listed broken."""
    host = registry.host
    for impl in host.pm.hook.curator_add_commands.get_hookimpls():
        record = host.plugin_record(impl.plugin_name)
        commands = Commands(subparsers)
        try:
            impl.function(**dict.fromkeys(impl.argnames, commands))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() too: the plugin's failure, not ours
            commands.take_back()
            host.fail(record, f"curator_add_commands raised {type(exc).__name__}: {exc}", exc)
