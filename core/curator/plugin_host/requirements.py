"""Checking that a plugin's requirements are installed, without importing them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable


def missing_requirements(requires: Iterable[str]) -> str | None:
    """Return ``"missing a, b"`` for the import names that are not installed, else ``None``.

    Only top-level names are looked up with :func:`importlib.util.find_spec`,
    which locates a package without executing it: listing plugins stays cheap
    and never imports a heavy engine.
    """
    missing = [name for name in requires if not _importable(name)]
    return f"missing {', '.join(missing)}" if missing else None


def _importable(name: str) -> bool:
    top = name.split(".", 1)[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
