"""Helpers shared by the core tests.

A module of its own rather than ``conftest``: test modules import it by a name
no other suite uses, so the core and plugin suites can be collected together.
"""

from __future__ import annotations

import atexit
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte

from curator import Backend, Registry, hookimpl
from curator.testing import processes
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
    return processes.run_curator(*args, cwd=cwd or workdir(), env=env or subprocess_env())


def without_write_access(folder: Path) -> Any:
    """:func:`curator.testing.processes.without_write_access` with these tests' environment."""
    return processes.without_write_access(folder, subprocess_env())


def in_process_curator(monkeypatch: Any) -> Callable[[list[str]], int]:
    """``curator`` as a function in this process, much faster than a subprocess per command.

    The registry is loaded once, and the command's logging set-up (a handler on
    the ``curator`` logger that stops propagation) is skipped, so that the
    tests after it see logging as it was.
    """
    import curator.cli.main as cli

    registry = Registry.load()
    monkeypatch.setattr(Registry, "load", lambda *args, **kwargs: registry)
    monkeypatch.setattr(cli, "_setup_logging", lambda: None)
    return cli.main


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def registry_with(*backends: type[Backend]) -> Registry:
    class Plugin:
        @hookimpl
        def curator_register_backends(self) -> list[type[Backend]]:
            return list(backends)

    return isolated_registry(("test", Plugin()))


def run_in_pty(
    args: list[str],
    env: dict[str, str],
    raw: bytearray | None = None,
    *,
    columns: int = 100,
    interrupt_on: Callable[[str], bool] | None = None,
    cwd: Path | None = None,
) -> tuple[int, list[str], str]:
    """Run `curator` on a pseudo-terminal; return exit code, screen samples, final screen.

    With ``interrupt_on`` (a test of the screen), the process gets one SIGINT
    as soon as it first passes; the samples taken from then on follow
    ``INTERRUPTED`` in the list.
    """
    screen = pyte.Screen(columns, 40)
    stream = pyte.ByteStream(screen)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "40"},
        cwd=cwd or workdir(),
        close_fds=True,
    )
    os.close(terminal)
    samples: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.1)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            stream.feed(data)
            if raw is not None:
                raw.extend(data)
            if select.select([controller], [], [], FRAME_SECONDS)[0]:
                continue  # the rest of a frame is on its way: sample whole frames only
            samples.append("\n".join(screen.display))
            if interrupt_on is not None and interrupt_on(samples[-1]):
                interrupt_on = None
                samples.append(INTERRUPTED)
                proc.send_signal(signal.SIGINT)
        elif proc.poll() is not None:
            break
    os.close(controller)
    code = proc.wait(timeout=30)
    return code, samples, "\n".join(screen.display)


INTERRUPTED = "<SIGINT sent>"
FRAME_SECONDS = 0.02
"""A pause in the output this long ends a frame (rich writes one frame in one go)."""
