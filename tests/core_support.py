"""Helpers shared by the core tests.

A module of its own rather than ``conftest``: test modules import it by a name
no other suite uses, so the core and plugin suites can be collected together.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyte

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


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_permission_bypass() -> None:
    """In a child about to exec as root: lose the capabilities that ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@contextlib.contextmanager
def without_write_access(
    folder: Path,
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Make ``folder`` and its files read-only; yield ``curator(*args)`` run there by a reader.

    The reader cannot write the folder nor its files. As root permissions do not
    bind, so the reader's process then drops the capabilities that bypass them
    from its bounding set before it executes: root's program runs as the files'
    owner, under their read-only bits. The premise is checked (the reader fails
    to create a file) before the reader is used; permissions are restored on exit.
    """
    bypass = _drop_permission_bypass if os.geteuid() == 0 else None
    modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path == folder else 0o444)

    def reader(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=subprocess_env(),
            cwd=folder, timeout=120, preexec_fn=bypass,
        )  # fmt: skip

    try:
        probe = reader("-c", "open('probe', 'x')")
        assert "PermissionError" in probe.stderr, f"the reader can write {folder}: {probe}"
        yield lambda *args: reader("-m", "curator", *args)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def report_while_running(report: Callable[[], subprocess.CompletedProcess[str]]) -> Any:
    """Call ``report()`` (a ``curator report --json``) until it shows recorded items: that JSON.

    While a run creates its checkpoint, the file exists a moment before its
    tables: polled past, as is a checkpoint not made yet.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = report()
        if shown.returncode and (
            "no checkpoint" in shown.stderr or "not a curator" in shown.stderr
        ):
            time.sleep(0.1)
            continue
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        if data["recorded"]:
            return data
        time.sleep(0.1)
    raise AssertionError("the report of the running run never showed a recorded item")


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
