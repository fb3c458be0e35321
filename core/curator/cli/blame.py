"""Whom a run's failure is on: a plugin's backend is named as such (exit 4).

A built-in backend's failure is curator's own bug, and goes on as an internal
error (exit 3).
"""

from __future__ import annotations

import os
import sys
import traceback

from curator.backends.backend import normalize_name
from curator.model.errors import BackendContractError, PluginError
from curator.plugin_host.registry import Registry


def blame_the_backend(registry: Registry, backend: str, exc: BackendContractError) -> None:
    """A plugin's backend broke the contract: its bug, named as such (exit 4, its traceback).

    A built-in backend's is curator's own bug: it goes on as an internal error.
    """
    record = registry.installed_plugin_of(backend)
    if record is None:
        return
    sys.stderr.write(traceback.format_exc())  # for the plugin's authors
    raise PluginError(
        f"{exc}\nthat is a bug in {record.describe()}, not in your pipeline; please report "
        "it to the plugin's authors (what finished is recorded)"
    ) from exc


def blame_a_failing_backend(registry: Registry, backend: str, exc: Exception) -> None:
    """An error raised through a plugin's backend code: the plugin is named (exit 4).

    Not a bug in curator (exit 3), which the message would otherwise ask to
    report, with a ``--no-plugins`` hint that leaves no such backend. Raised
    elsewhere (the core's own code), it stays an internal error.
    """
    record = registry.installed_plugin_of(backend)
    if record is None or not _raised_in(exc, registry.backend(backend)):
        return
    sys.stderr.write(traceback.format_exc())
    raise PluginError(
        f"backend {normalize_name(backend)!r} failed: {type(exc).__name__}: {exc}\n"
        f"raised in {record.describe()} (the traceback is above): a bug in the plugin, "
        "or a problem it met (its cluster, its configuration); what finished is recorded"
    ) from exc


def _raised_in(exc: BaseException, cls: type) -> bool:
    """Whether ``exc``'s traceback passes through the package that defines ``cls``."""
    package = sys.modules.get(cls.__module__.partition(".")[0])
    where = getattr(package, "__path__", None) or [
        os.path.dirname(getattr(package, "__file__", "") or "")
    ]
    roots = [os.path.join(os.path.abspath(folder), "") for folder in where if folder]
    tb = exc.__traceback__
    while tb is not None:
        filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if any(filename.startswith(root) for root in roots):
            return True
        tb = tb.tb_next
    return False
