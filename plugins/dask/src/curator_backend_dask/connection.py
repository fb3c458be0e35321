"""Reaching a user's scheduler: its address checked, its scheduler file read, the client.

Every run on the ``dask`` backend imports this module (the options check its
address before anything starts), so it imports neither dask nor asyncio.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from curator import UsageError

CONNECT_SECONDS = 10.0
"""How long a run waits to reach an existing scheduler, and for its scheduler file to appear,
unless its ``connect_timeout`` option says otherwise."""
HALF_WRITTEN_SECONDS = 0.5
"""How long a scheduler file that does not read as one is read again (its scheduler may be
writing it: Dask writes the file in place, not atomically)."""
POLL_SECONDS = 0.05
HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss")
"""Dask's transports addressed as ``host:port`` (an address without a scheme is ``tcp``)."""
EXAMPLE = "tcp://10.0.0.5:8786"


def address_problem(address: str) -> str | None:
    """What makes ``address`` no scheduler address, as Dask would judge it; ``None`` if nothing.

    Only the forms of the ``host:port`` transports are checked (Dask's other
    transports, such as ``ucx``, are judged by Dask when the run connects).
    """
    if not address.strip():
        return f"it is empty; give one such as {EXAMPLE}, or leave it out for a LocalCluster"
    scheme, sep, location = address.rpartition("://")
    if sep and scheme not in HOST_PORT_SCHEMES:
        return None
    if location.startswith("["):  # an IPv6 host: [::1]:8786
        _, bracket, tail = location[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            return "write an IPv6 host in brackets, such as tcp://[::1]:8786"
        port = tail[1:] if tail else None
    else:
        host, colon, port_text = location.rpartition(":")
        if ":" in host:
            return "write an IPv6 host in brackets, such as tcp://[::1]:8786"
        port = port_text if colon else None
    if port is None:
        return f"it has no port number, such as {EXAMPLE}"
    try:
        number = int(port)  # as Dask reads it
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        return f"its port {port!r} is not a number from 1 to 65535"
    return None


def read_scheduler_file(
    path: str, stopping: Callable[[], bool], seconds: float = CONNECT_SECONDS
) -> str | None:
    """The scheduler's address in the scheduler file ``path``.

    A scheduler started just before the run writes its file once it listens:
    a missing file is waited for, up to ``seconds`` (as long as an
    unreachable address is tried), and one that does not read as a scheduler
    file is read again for :data:`HALF_WRITTEN_SECONDS`. ``None`` when the run
    is stopped meanwhile.

    Raises
    ------
    UsageError
        The file did not appear in time, cannot be read, or is no scheduler file.
    """
    deadline = time.monotonic() + seconds
    folder = os.path.dirname(os.path.abspath(path))
    given_up_at: float | None = None  # when a file that is no scheduler file is given up
    while True:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            if not os.path.isdir(folder):  # no scheduler can write it there
                raise UsageError(
                    f"scheduler file {path} does not exist, nor does its folder {folder}"
                ) from None
            problem = ""
        except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, binary
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot read the scheduler file {path} ({reason})") from None
        else:
            address, problem = _address_in(text)
            if address is not None:
                return address
        now = time.monotonic()
        if problem:
            given_up_at = given_up_at or now + HALF_WRITTEN_SECONDS
            if now >= min(given_up_at, deadline):
                raise UsageError(f"scheduler file {path} is not a Dask scheduler file ({problem})")
        elif now >= deadline:
            raise UsageError(
                f"scheduler file {path} does not exist (waited {seconds:g} s for a scheduler "
                "to write it; option connect_timeout waits longer)"
            )
        if stopping():
            return None
        time.sleep(POLL_SECONDS)


def _address_in(text: str) -> tuple[str | None, str]:
    """The address a scheduler file gives, or ``None`` and why there is none."""
    try:
        identity = json.loads(text)
    except ValueError:
        return None, "not JSON" if text.strip() else "it is empty"
    if not isinstance(identity, dict):
        return None, f"JSON, but a {type(identity).__name__}, not an object with an 'address'"
    address = identity.get("address")
    if address is None:
        return None, "it has no 'address'"
    if not isinstance(address, str):
        return None, f"its address {address!r} is not a string"
    problem = address_problem(address)
    if problem is not None:
        return None, f"its address {address!r} is not a scheduler address: {problem}"
    return address, ""


def new_with_loop(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)`` for a Dask Client or cluster; if that fails, what started is closed.

    Both start their IO-loop thread before they connect (a cluster, before its
    scheduler and workers start). distributed stops neither loop when the
    start fails: a cluster whose scheduler cannot start raises with its loop
    running. What is left of a client that failed (held by the error's
    traceback) is otherwise closed by the garbage collector at some later
    moment, in whichever thread collects it. In a thread that is starting
    another client, that close waits on distributed's class-wide loop lock,
    which the start holds: a start on the IO-loop thread waits 10 s and then
    fails, and one on the thread that holds the lock waits forever.
    """
    made = cls.__new__(cls)
    try:
        made.__init__(*args, **kwargs)
    except BaseException:
        with contextlib.suppress(Exception):
            close_with_loop(made)
        raise
    return made


def close_with_loop(made: Any) -> None:
    """Close a Dask Client or cluster and stop its IO loop.

    A client that distributed closed itself (it could not connect, or lost its
    scheduler for good) reads as closed, so ``close()`` returns at once and
    leaves its IO-loop thread running, as does a cluster that failed to start:
    the loop is stopped here, even if ``close()`` raised. Stopping a loop
    already stopped does nothing.
    """
    try:
        made.close()
    finally:
        # distributed's own, and public nowhere: nothing else stops that loop
        runner = getattr(made, "_loop_runner", None)
        if runner is not None:
            runner.stop()


def connect(
    client_cls: Any,
    address: str | None,
    scheduler_file: str | None,
    stopping: Callable[[], bool],
    seconds: float = CONNECT_SECONDS,
) -> Any:
    """A client of the scheduler at ``address`` or named in ``scheduler_file``.

    ``seconds``: how long to wait for the scheduler file, then for the scheduler.
    ``None`` when the run is stopped while the scheduler file is waited for.

    Raises
    ------
    UsageError
        The scheduler file is missing or no scheduler file, or the scheduler
        cannot be reached (or Dask rejects its address).
    """
    if scheduler_file:
        found = read_scheduler_file(scheduler_file, stopping, seconds)
        if found is None:
            return None
        address, where = found, f"{found} (from the scheduler file {scheduler_file})"
    else:
        assert address, "connect() needs an address or a scheduler file"
        where = address
    try:
        return new_with_loop(client_cls, address, timeout=f"{seconds:g}s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {where} within {seconds:g} s: {exc}"
        ) from None
    except ValueError as exc:  # a transport Dask does not know, an address it cannot parse
        named = f"the address {address!r} in the scheduler file {scheduler_file}"
        if not scheduler_file:
            named = f"option address={address!r}"
        raise UsageError(f"{named} is not a Dask scheduler address ({exc})") from None
