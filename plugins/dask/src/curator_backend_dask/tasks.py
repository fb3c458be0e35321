"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import os
from typing import Any

from curator import Outcome, Work, WorkerInfo

_SET_UP: dict[tuple[str, str], Work] = {}
"""The works set up in this process, by scatter key and worker address, until teardown.

Held here, not looked up in the worker's data: Dask's active memory manager
drops a scattered replica a worker no longer needs, so the copy a worker set
up may be gone from its data by the time the run ends, and a later task may
get a fresh copy. Each worker keeps using, and finally tears down, the copy it
set up first (several workers may share a process: the address tells them apart).
"""


def run_chunk(
    work: Work,
    indices: list[int],
    topic: str,
    token: int,
    slots: dict[str, int],
    jobs: int,
    key: str = "",
) -> list[Outcome]:
    """Run ``indices`` in order on this worker and return their outcomes.

    Before the first item, ``token`` is logged to the scheduler under ``topic``
    and acknowledged: if this worker dies, the parent can tell a chunk that was
    running (it holds the culprit) from one that only waited in the worker's queue.
    The stages' ``setup(worker)`` runs before this worker's first item of the
    run (``work`` is the worker's own copy, shared by its tasks); ``slots`` maps
    worker addresses to slots (a worker that joined later gets the next one).
    """
    from distributed import get_client, get_worker

    get_client().log_event(topic, token)
    address = get_worker().address
    work = _SET_UP.setdefault((key, address), work)
    work.setup(WorkerInfo(slots.get(address, len(slots)), "dask", jobs))
    worker = f"dask-{os.getpid()}"
    return [work(index, worker) for index in indices]


def tear_down(dask_worker: Any, key: str) -> str | None:
    """Tear down this worker's copy of the work under ``key``; what went wrong, or ``None``.

    Run on every worker with ``client.run`` when the run's items are done; a
    worker that ran none of them has nothing to tear down.
    """
    work = _SET_UP.pop((key, dask_worker.address), None)
    if work is None:
        return None
    try:
        work.teardown()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
