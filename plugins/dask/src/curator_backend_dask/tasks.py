"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import os

from curator import Outcome, Work


def run_chunk(work: Work, indices: list[int]) -> list[Outcome]:
    """Run ``indices`` in order on this worker and return their outcomes."""
    worker = f"dask-{os.getpid()}"
    return [work(index, worker) for index in indices]
