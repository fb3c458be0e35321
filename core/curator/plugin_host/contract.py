"""What a backend or reporter class must be to register, checked once at registration.

A class that breaks the contract is reported as a broken plugin with every
problem named (and is fatal under ``CURATOR_STRICT_PLUGINS=1``), instead of
failing later in the middle of a run or, worse, being silently half-used.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from typing import Any

import pluggy

from curator.backends.backend import Backend, Capabilities, normalize_name
from curator.observing.reporter import Reporter
from curator.plugin_host import hookspecs
from curator.plugin_host.hookspecs import EVENT_HOOKS
from curator.plugin_host.options import schema_problems

NAME_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
"""A backend or reporter name: lowercase words of letters and digits joined by dashes."""

OUT_OF_PROCESS_CAPABILITIES = ("isolates_crashes", "timeouts", "checks_results")
"""Capabilities that only work out of the caller's process, so they need picklable work."""


def backend_problems(cls: type[Backend]) -> list[str]:
    """Everything wrong with a backend class, one sentence each; empty when it is fine."""
    problems = _common_problems(cls)
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        problems.append(f"it does not implement {missing}")
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, Capabilities):
        problems.append(f"capabilities must be a curator.Capabilities, got {caps!r}")
    else:
        flags = {f.name: getattr(caps, f.name) for f in dataclasses.fields(caps)}
        wrong = [name for name, value in flags.items() if not isinstance(value, bool)]
        if wrong:
            problems.append(f"capability flags must be true or false: {', '.join(wrong)}")
        needing = [name for name in OUT_OF_PROCESS_CAPABILITIES if flags.get(name) is True]
        if needing and not caps.needs_picklable_work:
            problems.append(
                f"capabilities {', '.join(needing)} describe items run in other processes, "
                "which needs needs_picklable_work=True"
            )
    return problems


def reporter_problems(cls: type[Reporter]) -> list[str]:
    """Everything wrong with a reporter class, one sentence each; empty when it is fine."""
    problems = _common_problems(cls)
    known = ", ".join(sorted(EVENT_HOOKS))
    for attr in sorted(dir(cls)):  # dir(): what mixins and base classes define counts too
        marked = getattr(getattr(cls, attr, None), "curator_impl", None) is not None
        if not attr.startswith("curator_"):
            if marked:  # pluggy would take it for a hook of that name, which none calls
                problems.append(
                    f"method {attr} is marked @curator.hookimpl but is not an event hook "
                    f"(reporters implement {known})"
                )
            continue
        if attr not in EVENT_HOOKS:
            problems.append(f"method {attr} is not an event hook (reporters implement {known})")
        elif not marked:
            problems.append(f"method {attr} is not marked @curator.hookimpl, so it is never called")
    if not problems:
        # pluggy checks each hook's arguments against its specification.
        manager = _validation_manager()
        try:
            manager.register(cls)
        except (pluggy.PluginValidationError, ValueError) as exc:
            problems.append(str(exc))
        else:
            manager.unregister(cls)
    return problems


@functools.cache
def _validation_manager() -> pluggy.PluginManager:
    # One for the process: building a manager costs more than the check itself,
    # and registries are built on every command's start.
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _common_problems(cls: type[Any]) -> list[str]:
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(normalize_name(name)):
        problems.append(
            f"name must be lowercase words of letters and digits joined by dashes, got {name!r}"
        )
    if not isinstance(getattr(cls, "description", ""), str):
        problems.append("description must be a string")
    requires = getattr(cls, "requires", ())
    if not isinstance(requires, tuple) or not all(isinstance(r, str) for r in requires):
        problems.append(f"requires must be a tuple of import names, got {requires!r}")
    problems += schema_problems(getattr(cls, "Options", None))
    return problems
