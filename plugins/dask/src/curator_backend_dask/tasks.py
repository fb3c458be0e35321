"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from curator import Outcome, Work, WorkerInfo

_SET_UP: dict[tuple[str, str], Work] = {}
"""The works set up in this process, by run and worker address, until teardown.

Held here, not looked up in the worker's data: Dask's active memory manager
drops a scattered replica a worker no longer needs, and a worker's death can
lose the last one (the parent then scatters the work again, under a new key),
so the copy a worker set up may be gone from its data by the time the run
ends, and a later task may get a fresh copy. Each worker keeps using, and
finally tears down, the copy it set up first (several workers may share a
process: the address tells them apart).
"""

_STOPPED: set[str] = set()
"""Runs whose parent asked to stop: their tasks start no further item."""


def run_chunk(
    work: Work,
    indices: list[int],
    topic: str,
    token: int,
    slots: dict[str, int],
    jobs: int,
) -> list[Outcome]:
    """Run ``indices`` in order on this worker and return their outcomes.

    ``topic`` names the run. Before the first item, ``token`` and this
    worker's address are logged to the scheduler under ``topic`` and
    acknowledged; after the last, the end is logged on the worker's ordered
    stream to the scheduler, so the scheduler knows of it before it knows
    the result. If this worker dies, the parent can tell a chunk that was
    running (it holds the culprit) from one that only waited in the worker's
    queue and from one that had finished. Once the parent asks the run to
    stop (:func:`stop`), no further item starts: the outcomes of those that
    ran come back, the others have none.

    The stages' ``setup(worker)`` runs before this worker's first item of the
    run (``work`` is the worker's own copy, shared by its tasks); ``slots`` maps
    worker addresses to slots (a worker that joined later gets the next one).
    """
    from distributed import get_client, get_worker

    dask_worker = get_worker()
    address = dask_worker.address
    get_client().log_event(topic, {"token": token, "worker": address})
    outcomes: list[Outcome] = []
    if topic not in _STOPPED:  # a stopped run sets nothing up
        work = _SET_UP.setdefault((topic, address), work)
        work.setup(WorkerInfo(slots.get(address, len(slots)), "dask", jobs))
        worker = f"dask-{os.getpid()}"
        for index in indices:
            if topic in _STOPPED:
                break
            outcomes.append(work(index, worker))
    dask_worker.log_event(topic, {"token": token, "done": True})
    return outcomes


def stop(dask_worker: Any, topic: str) -> None:
    """Let the tasks of run ``topic`` on this worker start no further item."""
    _STOPPED.add(topic)


def tear_down(dask_worker: Any, topic: str) -> str | None:
    """Tear down this worker's copy of the work of run ``topic``; what went wrong, or ``None``.

    Run on every worker with ``client.run`` when the run's items are done; a
    worker that ran none of them has nothing to tear down.
    """
    _STOPPED.discard(topic)
    work = _SET_UP.pop((topic, dask_worker.address), None)
    if work is None:
        return None
    try:
        work.teardown()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def dask_setup(worker: Any) -> None:
    """Preloaded into each worker process of the LocalCluster curator starts.

    Ctrl-C in a terminal reaches every process of the foreground group, these
    workers too. The run's process decides what stops (its grace period lets
    running items finish), so the workers ignore it, as the process pool's do.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
