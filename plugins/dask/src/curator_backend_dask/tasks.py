"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import os
from typing import Any

from curator import Outcome, Work, WorkerInfo


def run_chunk(
    work: Work, indices: list[int], topic: str, token: int, slots: dict[str, int], jobs: int
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
    work.setup(WorkerInfo(slots.get(address, len(slots)), "dask", jobs))
    worker = f"dask-{os.getpid()}"
    return [work(index, worker) for index in indices]


def tear_down(dask_worker: Any, key: str) -> str | None:
    """Tear down this worker's copy of the work under ``key``; what went wrong, or ``None``.

    Run on every worker with ``client.run`` when the run's items are done; a
    worker that ran none of them has nothing to tear down.
    """
    work = dask_worker.data.get(key) if key in dask_worker.data else None
    if work is None:
        return None
    try:
        work.teardown()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
