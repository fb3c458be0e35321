"""Commands that plugins add to ``curator`` (the ``curator_add_commands`` hook).

The CLI builds its registry before it parses the command line, then asks each
plugin for its commands. A plugin gets a :class:`Commands`, which adds a
subcommand as argparse's ``add_parser`` does but refuses a name that is taken
(a built-in command or another plugin's): the plugin is then listed broken,
and what it added is taken out again, so a broken plugin never changes how
another command parses.

This module is the public API of plugin commands: besides :class:`Commands`
it gives them what curator's own commands use, so a plugin's command reads
and prints like them: :func:`add_checkpoint_argument` and
:func:`checkpoint_of` (the ``CHECKPOINT|TARGET`` argument of ``curator
status``, ``logs`` and ``report``), and the output functions
:func:`print_json`, :func:`print_text`, :func:`print_table` and
:func:`print_fields` (JSON on stdout for machines, rich tables for people).

Commands that curator's own plugin distributions provide (``report``) are
known by name: without their plugin, ``curator report`` says which
distribution to install and exits 2, as a missing backend does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from curator.cli.output import print_fields, print_json, print_table, print_text
from curator.model.errors import PluginError, UsageError
from curator.plugin_host.registry import Registry

__all__ = [
    "KNOWN_COMMANDS",
    "Commands",
    "add_checkpoint_argument",
    "checkpoint_of",
    "print_fields",
    "print_json",
    "print_table",
    "print_text",
]

KNOWN_COMMANDS = {
    "report": "curator-report",
    "status": "builtin-checkpoint",
    "logs": "builtin-checkpoint",
    "bench": "builtin-bench",
}
"""Commands of curator's own plugins (a distribution, or a built-in plugin's name), for the
hint when they are missing."""


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
        function takes the :class:`~curator.plugin_host.registry.Registry` and the parsed
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
            continue
        record.provides += [f"command:{name}" for name in commands.added]


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """Add the optional ``CHECKPOINT|TARGET`` argument (as ``args.what``) of ``curator status``."""
    from curator.cli.status import add_one_checkpoint

    add_one_checkpoint(parser)


def checkpoint_of(args: argparse.Namespace, usage: str) -> Path:
    """The checkpoint :func:`add_checkpoint_argument`'s argument names, else the newest one.

    A TARGET (``module:attr``, a file) names its pipeline's checkpoint; without
    the argument, the most recently written checkpoint in ``.curator/`` is
    read (newer files that are not checkpoints are passed over with a
    warning). ``usage`` is the command as the user types it (``report``), for
    the message when there is none.

    Raises
    ------
    UsageError
        When there is none, or the argument names a folder.
    """
    from curator.cli.status_views import one_checkpoint

    return one_checkpoint(args.what, usage)


def add_missing_commands(registry: Registry, subparsers: Any) -> None:
    """List each known plugin command that no plugin added, with the plugin it needs."""
    for name, distribution in KNOWN_COMMANDS.items():
        if name not in subparsers.choices:
            placeholder = subparsers.add_parser(name, help=f"(needs the plugin {distribution})")
            placeholder.set_defaults(missing_plugin=distribution)


def check_missing_command(registry: Registry, arguments: list[str], subparsers: Any) -> None:
    """Refuse a known plugin command whose plugin is missing, naming what to install.

    Raises
    ------
    UsageError
        When the plugin is not installed, disabled, or plugins are off.
    PluginError
        When it is installed but broken.
    """
    command = next((a for a in arguments if not a.startswith("-")), None)
    chosen = subparsers.choices.get(command) if command is not None else None
    distribution = chosen.get_default("missing_plugin") if chosen is not None else None
    if distribution is None:
        return  # not a placeholder of add_missing_commands: its plugin (or the core) added it
    host = registry.host
    builtin = host.records.get(distribution)
    if builtin is not None and builtin.distribution is None:  # a built-in plugin, switched off
        raise UsageError(
            f"curator {command} comes with the built-in plugin {distribution}, which is "
            "disabled (CURATOR_DISABLE_PLUGINS)"
        )
    said = f"curator {command} comes with the plugin {distribution}"
    if host.settings.no_plugins:
        raise UsageError(f"{said}, and plugins are off (--no-plugins or CURATOR_NO_PLUGINS=1)")
    for record in host.records.values():
        if record.distribution == distribution:
            if record.status == "broken":
                raise PluginError(f"{said}, which is broken: {record.error}")
            if record.status == "disabled":
                raise UsageError(f"{said}, which is disabled (CURATOR_DISABLE_PLUGINS)")
    raise UsageError(f"{said}, which is not installed: pip install {distribution}")
