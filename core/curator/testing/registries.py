"""Registries for tests: exactly the plugins a test names, whatever else is installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from curator import Registry
from curator.plugin_host.plugins import PluginSettings
from curator.plugin_host.registry import set_default_registry


def isolated_registry(*plugins: tuple[str, object]) -> Registry:
    """The built-ins plus ``plugins`` (name, module or object), loaded strictly.

    Installed distributions are not read, so a test sees the same backends on
    every machine, and a plugin that fails to register fails the test.
    """
    return Registry.load(PluginSettings(strict=True), entrypoints=False, plugins=plugins)


@contextmanager
def default_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the one ``curator.run`` uses when given none, for the ``with`` block."""
    set_default_registry(registry)
    try:
        yield registry
    finally:
        set_default_registry(None)
