"""pytest plugin of the conformance kit: ``pytest_plugins = ["curator.testing.pytest_plugin"]``.

It makes plugin loading strict for the test session (a broken plugin fails
loudly instead of being skipped) and registers the kit's marker. Under
pytest-xdist it also takes away the 80x24 terminal size xdist gives its
workers (``COLUMNS``, ``LINES``): curator's output, and that of the CLI the
tests start, is then laid out as for a user's pipe, the same with or without
``-n``.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Load curator plugins strictly while the tests run."""
    os.environ.setdefault("CURATOR_STRICT_PLUGINS", "1")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
    config.addinivalue_line("markers", "curator_conformance: a curator backend conformance test")
