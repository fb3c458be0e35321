"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import os

from curator import Outcome, Work


def run_chunk(work: Work, indices: list[int], topic: str, token: int) -> list[Outcome]:
    """Run ``indices`` in order on this worker and return their outcomes.

    Before the first item, ``token`` is logged to the scheduler under ``topic``
    and acknowledged: if this worker dies, the parent can tell a chunk that was
    running (it holds the culprit) from one that only waited in the worker's queue.
    """
    from distributed import get_client

    get_client().log_event(topic, token)
    worker = f"dask-{os.getpid()}"
    return [work(index, worker) for index in indices]
