"""Looking at processes from a test: is it running, what did it start, what is left.

Linux reads ``/proc``; elsewhere only multiprocessing's own children are seen.
The conformance kit uses these to prove a backend leaves nothing behind, and a
backend's own tests can use them the same way.
"""

from __future__ import annotations

import codecs
import multiprocessing
import os
import select
import sys
import time
from pathlib import Path
from typing import IO


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
