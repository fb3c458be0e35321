from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from curator import Registry
from curator.testing.registries import default_registry, isolated_registry

# The fixture plugins are plain modules; their distributions (dist-info with
# entry points) are written per test into a temporary folder.
sys.path.insert(0, str(Path(__file__).parent / "plugins"))

pytest_plugins = ["curator.testing.pytest_plugin", "pytester"]


@pytest.fixture
def registry() -> Registry:
    """A fresh registry with only the built-ins, strict, independent of what is installed."""
    return isolated_registry()


@pytest.fixture(autouse=True)
def _isolated_default_registry(registry: Registry) -> Iterator[None]:
    # run() without registry= uses the process default; never let it read the environment.
    with default_registry(registry):
        yield


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture
def default_signal_handlers() -> Iterator[None]:
    """The test starts, and must end, with SIGINT's and SIGTERM's default dispositions."""
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    yield
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert handlers == (signal.default_int_handler, signal.SIG_DFL), "handlers left behind"
