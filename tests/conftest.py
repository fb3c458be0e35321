from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from curator.plugins import PluginSettings
from curator.registry import Registry, set_default_registry

TESTS = Path(__file__).parent
PLUGIN_FIXTURES = TESTS / "plugins"

# The fixture plugins are plain modules; their distributions (dist-info with
# entry points) are written per test into a temporary folder.
sys.path.insert(0, str(PLUGIN_FIXTURES))

pytest_plugins = ["curator.testing.pytest_plugin", "pytester"]


@pytest.fixture
def registry() -> Registry:
    """A fresh registry with only the built-ins, strict, independent of what is installed."""
    return Registry.load(PluginSettings(strict=True), entrypoints=False)


@pytest.fixture(autouse=True)
def _isolated_default_registry(registry: Registry) -> Iterator[None]:
    # run() without registry= uses the process default; never let it read the environment.
    set_default_registry(registry)
    yield
    set_default_registry(None)


def make_distribution(
    site: Path, name: str, version: str, entry_points: dict[str, str], group: str = "curator"
) -> Path:
    """Write an installed-distribution record (dist-info) with entry points into ``site``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{group}]"] + [f"{ep} = {target}" for ep, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return info


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def subprocess_env(*extra_paths: Path, **overrides: str) -> dict[str, str]:
    """Environment for a `curator` subprocess that sees the test helpers and fixture plugins."""
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(TESTS), str(PLUGIN_FIXTURES)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("CURATOR_STRICT_PLUGINS", None)
    env.update(overrides)
    return env
