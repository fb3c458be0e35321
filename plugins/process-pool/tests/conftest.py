from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import curator_backend_process_pool.hooks as hooks
from curator import Registry
from curator.testing.registries import default_registry, isolated_registry

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

pytest_plugins = ["curator.testing.pytest_plugin"]


@pytest.fixture
def registry() -> Registry:
    """Built-ins plus this plugin's hook module, independent of what else is installed."""
    return isolated_registry(("process-pool", hooks))


@pytest.fixture(autouse=True)
def _default_registry(registry: Registry) -> Iterator[None]:
    with default_registry(registry):
        yield


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    leftovers = multiprocessing.active_children()
    assert leftovers == [], f"worker processes left behind: {leftovers}"
