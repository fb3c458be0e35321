"""Start worker processes that neither re-run the user's script nor keep a stale world.

Under ``spawn`` and ``forkserver``, multiprocessing makes each new process
import the parent's main module again (as ``__mp_main__``), so that objects
defined there can be unpickled by reference. A backend that ships such
objects by value (cloudpickle, as loky and Dask do) gains nothing from that
import and pays for it: a script without an ``if __name__ == "__main__":``
guard runs its whole top level again in every worker (starting runs of its
own), and a notebook kernel's main module is imported for nothing. Inside
:func:`main_module_stays_home`, processes started by multiprocessing skip it.

A worker forked from a long-lived process (the fork server, a worker kept
between runs) also keeps that process's environment variables, import path
and working directory; :func:`parent_world` captures the run's, and
:func:`adopt_world` applies them in the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from curator.model.record import Record

_lock = threading.Lock()
_active = 0
_original: Callable[[str], dict[str, Any]] | None = None

MAIN_MODULE_KEYS = ("init_main_from_path", "init_main_from_name")
"""What multiprocessing's preparation data uses to import the main module in a child."""


def _preparation_data(name: str) -> dict[str, Any]:
    """Multiprocessing's own preparation data, without the main module while a block is open."""
    assert _original is not None
    data = _original(name)
    if _active:
        for key in MAIN_MODULE_KEYS:
            data.pop(key, None)
    return data


@contextlib.contextmanager
def main_module_stays_home() -> Iterator[None]:
    """Within this block, processes that multiprocessing starts do not import ``__main__``.

    It applies to every thread while any such block is open, because some
    engines (Dask's nanny) start their processes from a thread of their own.
    Processes started with ``fork`` never import it anyway.
    """
    global _active, _original
    from multiprocessing import spawn  # not at import: listing backends needs none of it

    with _lock:
        if _original is None:
            _original = spawn.get_preparation_data
            spawn.get_preparation_data = _preparation_data
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1


class World(Record):
    """What a worker takes over from the run's process when the run starts.

    A :class:`~curator.model.record.Record`, not a ``NamedTuple``: making that
    class costs every fork server about 1 ms of its start.
    """

    _fields = ("environ", "path", "cwd")
    __slots__ = _fields
    environ: dict[str, str]
    path: list[str]
    cwd: str | None

    def __init__(self, environ: dict[str, str], path: list[str], cwd: str | None) -> None:
        self.environ = environ
        self.path = path
        self.cwd = cwd


def parent_world() -> World:
    """The environment variables, ``sys.path`` and working directory of this process, now."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the directory was deleted: the worker keeps its own
        cwd = None
    return World(dict(os.environ), list(sys.path), cwd)


def adopt_world(world: World) -> None:
    """Make this (worker) process's environment, ``sys.path`` and directory those of ``world``."""
    environ, path, cwd = world.environ, world.path, world.cwd
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    if sys.path != path:
        sys.path[:] = path
    if cwd is not None:
        with contextlib.suppress(OSError):
            os.chdir(cwd)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number that names no signal."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(exitcode: int | None) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``, from a process's exit code.

    A negative code is a signal, as :attr:`multiprocessing.Process.exitcode`
    and :func:`os.waitstatus_to_exitcode` give it; ``None``: ``disappeared``.
    """
    if exitcode is None:
        return "disappeared"
    if exitcode < 0:
        return f"was killed by {signal_name(-exitcode)}"
    return f"exited with code {exitcode}"
