"""How a worker ended, in words people can act on; and fork-server deaths told apart."""

from __future__ import annotations

import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess


def outlived_its_fork_server(process: BaseProcess) -> int | None:
    """The pid of a forkserver worker whose sentinel closed while it still runs, else ``None``.

    A forkserver worker's sentinel is a pipe from the fork server, which
    reports exit code 255 when the fork server itself dies.
    """
    pid = process.pid
    if process.exitcode != 255 or pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            alive = stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return None
    return pid if alive else None


def name_of(function: Callable[..., object] | None) -> str:
    """``module:function`` of an initializer, for messages."""
    if function is None:
        return "none given"
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', function)}"


def describe_exit(exitcode: int | None) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``, from a process's exit code."""
    if exitcode is None:
        return "disappeared"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"
