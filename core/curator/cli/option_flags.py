"""Flags of ``curator run`` that installed backends and reporters declare for their options.

A backend option declared with ``option(..., flag="--memory-limit")`` becomes
a flag of ``curator run`` while the backend is installed: short for ``-o
memory_limit=VALUE``, remembered by ``--resume`` with the other options. The
process pool's ``--memory-limit`` is one. A reporter's option declared the
same way is short for ``--reporter-option NAME.FIELD=VALUE`` (the reporter
must be selected, as for that), remembered with the other reporter options.
A flag that ``curator run`` has already (a built-in one, or another plugin's
for another option) is refused: the plugin is listed broken with the reason,
and the option stays reachable through ``-o`` or ``--reporter-option``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any, NamedTuple

from curator.plugin_host.plugins import PluginRecord
from curator.plugin_host.registry import Registry


class OptionFlag(NamedTuple):
    """A backend option's flag: what the user typed, the option it sets, who declares it."""

    flag: str
    """The flag, ``--memory-limit``."""
    option: str
    """The option it sets, ``memory_limit``."""
    backends: tuple[str, ...]
    """The installed backends that declare it, for the message when another is chosen."""


def add_option_flags(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """Add the flags of every installed backend's options to the ``run`` parser.

    The parsed arguments then hold ``option_flags``: each flag's destination
    and its :class:`OptionFlag`.
    """
    group = parser.add_argument_group(
        "backend options", "Flags installed backends declare: each is short for -o NAME=VALUE."
    )
    flags: dict[str, str] = {}  # flag -> the option it sets
    declared: dict[str, list[str]] = {}  # flag -> the backends that declare it
    for backend, entry in sorted(registry.backends.items()):
        if entry.cls is None:
            continue
        for field in dataclasses.fields(entry.cls.Options):
            flag = field.metadata.get("flag")
            if flag is None or _malformed(registry, entry.plugin, f"backend {backend!r}", field):
                continue
            if flags.get(flag) == field.name:  # another backend's, same option
                declared[flag].append(backend)
                continue
            try:
                group.add_argument(
                    flag,
                    dest=f"option_{field.name}",
                    metavar="VALUE",
                    help=f"{field.metadata.get('help', '')} (-o {field.name}=VALUE; {backend})",
                )
            except argparse.ArgumentError:
                registry.host.fail(
                    entry.plugin,
                    f"backend {backend!r} declares the flag {flag} for its option "
                    f"{field.name!r}, but curator run has that flag already (use -o "
                    f"{field.name}=VALUE)",
                )
                continue
            flags[flag] = field.name
            declared[flag] = [backend]
    parser.set_defaults(
        option_flags={
            f"option_{name}": OptionFlag(flag, name, tuple(declared[flag]))
            for flag, name in flags.items()
        }
    )
    _add_reporter_flags(parser, registry)


def _add_reporter_flags(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """The flags of installed reporters' options; ``reporter_flags``: destination -> option."""
    group = parser.add_argument_group(
        "reporter options",
        "Flags installed reporters declare: each is short for --reporter-option NAME.KEY=VALUE.",
    )
    taken: dict[str, tuple[str, str]] = {}  # destination -> (reporter, option)
    for reporter, entry in sorted(registry.reporters.items()):
        if entry.cls is None:
            continue
        for field in dataclasses.fields(entry.cls.Options):
            flag = field.metadata.get("flag")
            if flag is None or _malformed(registry, entry.plugin, f"reporter {reporter!r}", field):
                continue
            dest = f"reporter_option_{reporter}_{field.name}"
            try:
                group.add_argument(
                    flag,
                    dest=dest,
                    metavar="VALUE",
                    help=f"{field.metadata.get('help', '')} (--reporter-option "
                    f"{reporter}.{field.name}=VALUE)",
                )
            except argparse.ArgumentError:
                registry.host.fail(
                    entry.plugin,
                    f"reporter {reporter!r} declares the flag {flag} for its option "
                    f"{field.name!r}, but curator run has that flag already (use "
                    f"--reporter-option {reporter}.{field.name}=VALUE)",
                )
                continue
            taken[dest] = (reporter, field.name)
    parser.set_defaults(reporter_flags=taken)


def _malformed(registry: Registry, plugin: PluginRecord, who: str, field: Any) -> bool:
    """Whether ``field``'s flag is malformed: its plugin is then broken, as for a taken flag."""
    problem = flag_problem(field.metadata["flag"])
    if problem is not None:
        registry.host.fail(
            plugin, f"{who} declares a flag for its option {field.name!r}, but {problem}"
        )
    return problem is not None


def flag_problem(flag: object) -> str | None:
    """Why ``flag`` cannot be an option's flag of ``curator run``; ``None`` when it can.

    A flag is ``--`` and a name without spaces or ``=``: argparse would take a
    bare word for a positional argument, and the lean parse of ``curator run``
    (see :func:`curator.cli.main._parse`) relies on every plugin's flag
    starting with ``--``.
    """
    if isinstance(flag, str) and re.fullmatch(r"--[^-\s=][^\s=]*", flag):
        return None
    return (
        f"the flag {flag!r} is not a long flag: it must be -- and a name without spaces "
        "or = (--memory-limit)"
    )
