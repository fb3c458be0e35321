"""pytest plugin of the conformance kit: ``pytest_plugins = ["curator.testing.pytest_plugin"]``.

It makes plugin loading strict for the test session (a broken plugin fails
loudly instead of being skipped) and registers the kit's marker.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Load curator plugins strictly while the tests run."""
    os.environ.setdefault("CURATOR_STRICT_PLUGINS", "1")
    config.addinivalue_line("markers", "curator_conformance: a curator backend conformance test")
