"""Looking at processes from a test: is it running, what did it start, what is left.

Linux reads ``/proc``; elsewhere only multiprocessing's own children are seen.
The conformance kit uses these to prove a backend leaves nothing behind, and a
backend's own tests can use them the same way.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import json
import multiprocessing
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and runs (a zombie counts as gone: it runs no code)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int | None = None) -> set[int]:
    """The running processes whose parent is ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        if pid != os.getpid():
            return set()
        return {p.pid for p in multiprocessing.active_children() if p.pid is not None}
    found: set[int] = set()
    for task in tasks.iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return {p for p in found if running(p)}


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``: its workers, a fork server, a resource tracker, ..."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        below = children(todo.pop()) - found
        found |= below
        todo += below
    return found


def interpreter_helpers() -> set[int]:
    """The pids of multiprocessing's fork server and resource tracker in this process.

    They live as long as the interpreter, started by whichever run needed them
    first, and are not a backend's leak.
    """
    pids = set()
    for module, attribute, field in (
        ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid"),
        ("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
    ):
        helper = getattr(sys.modules.get(module), attribute, None)
        pid = getattr(helper, field, None)
        if isinstance(pid, int):
            pids.add(pid)
    return pids


def read_until(stream: IO[str], text: str, seconds: float) -> str:
    """Read a child's pipe until ``text`` appears; return everything read.

    Fails with the output so far if ``text`` does not appear within ``seconds``
    or the pipe closes first. Use it to wait for what a process says (say, that
    it is stopping) before acting on it; keep the returned text, the pipe will
    not give it again.
    """
    deadline = time.monotonic() + seconds
    fd = stream.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    seen = ""
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {text!r}: {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"the pipe closed before {text!r} appeared: {seen!r}")
        seen += decoder.decode(chunk)
    return seen


def child_env(*paths: Path | str, **overrides: str) -> dict[str, str]:
    """The environment of this process for a child, ``paths`` first on ``PYTHONPATH``.

    A child interpreter sees the same installed packages; ``paths`` make a test's
    own helper modules (pipelines, fixture plugins) importable in it; ``overrides``
    are set last.
    """
    env = dict(os.environ)
    entries = [str(path) for path in paths]
    if env.get("PYTHONPATH"):
        entries.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env.update(overrides)
    return env


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
    folder: Path, env: dict[str, str]
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Make ``folder`` and its files read-only; yield ``curator(*args)`` run there by a reader.

    The reader cannot write the folder nor its files. As root permissions do not
    bind, so the reader's process then drops the capabilities that bypass them
    from its bounding set before it executes: root's program runs as the files'
    owner, under their read-only bits. ``env`` is the reader's environment.
    The premise is checked (the reader fails to create a file) before the
    reader is used; permissions are restored on exit.
    """
    bypass = _drop_permission_bypass if os.geteuid() == 0 else None
    modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path == folder else 0o444)

    def reader(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env,
            cwd=folder, timeout=120, preexec_fn=bypass,
        )  # fmt: skip

    try:
        probe = reader("-c", "open('probe', 'x')")
        assert "PermissionError" in probe.stderr, f"the reader can write {folder}: {probe}"
        yield lambda *args: reader("-m", "curator", *args)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def shown_while_running(read: Callable[[], subprocess.CompletedProcess[str]]) -> Any:
    """Call ``read()`` (``curator status --json``, ``report --json``) until it shows recorded items.

    Returns that JSON. While a run creates its checkpoint, the file exists a
    moment before its tables: polled past, as is a checkpoint not made yet.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = read()
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
    raise AssertionError("a reader of the running run never showed a recorded item")


def wait_until_written(checkpoint: Path, run: subprocess.Popen[str], seconds: float = 60) -> None:
    """Wait until the run ``run`` has made the files of ``checkpoint`` (its ``-wal``)."""
    deadline = time.monotonic() + seconds
    wal = checkpoint.with_name(checkpoint.name + "-wal")
    while not wal.exists():  # the writer has made its files
        assert run.poll() is None, "the run ended before it wrote its checkpoint"
        assert time.monotonic() < deadline, "the run never wrote its checkpoint"
        time.sleep(0.02)


def run_curator(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The ``curator`` command run with this interpreter in ``cwd``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "curator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
