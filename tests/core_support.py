"""Helpers shared by the core tests.

A module of its own rather than ``conftest``: test modules import it by a name
no other suite uses, so the core and plugin suites can be collected together.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from curator import Backend, Registry, hookimpl
from curator.testing.processes import child_env
from curator.testing.registries import isolated_registry

TESTS = Path(__file__).parent
PLUGIN_FIXTURES = TESTS / "plugins"


def make_distribution(
    site: Path,
    name: str,
    version: str,
    entry_points: dict[str, str],
    group: str = "curator",
    requires: tuple[str, ...] = (),
) -> Path:
    """Write an installed-distribution record (dist-info) with entry points into ``site``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = [f"Requires-Dist: {requirement}\n" for requirement in requires]
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(lines)
    )
    lines = [f"[{group}]"] + [f"{ep} = {target}" for ep, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return info


def subprocess_env(*extra_paths: Path, **overrides: str) -> dict[str, str]:
    """Environment for a `curator` subprocess that sees the test helpers and fixture plugins."""
    # Not strict: some tests install broken fixture plugins on purpose.
    env = child_env(*extra_paths, TESTS, PLUGIN_FIXTURES)
    env.pop("CURATOR_STRICT_PLUGINS", None)
    env.update(overrides)
    return env


_WORKDIR: list[Path] = []


def workdir() -> Path:
    """A folder for CLI runs that name no other: they never write into the repository."""
    if not _WORKDIR:
        _WORKDIR.append(Path(tempfile.mkdtemp(prefix="curator-tests-")))
        atexit.register(shutil.rmtree, _WORKDIR[0], True)
    return _WORKDIR[0]


def curator(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curator", *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        cwd=cwd or workdir(),
        timeout=120,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def registry_with(*backends: type[Backend]) -> Registry:
    class Plugin:
        @hookimpl
        def curator_register_backends(self) -> list[type[Backend]]:
            return list(backends)

    return isolated_registry(("test", Plugin()))
