"""The pool and its workers share one block of memory, however the workers start."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from curator_backend_process_pool.shared import SharedBlock

METHODS = [
    m for m in ("forkserver", "spawn", "fork") if m in multiprocessing.get_all_start_methods()
]


def _answer(block: SharedBlock) -> None:
    """In the worker: check what the parent wrote, then write back."""
    if (block.current[1], block.since[2], block.stop[0]) != (41, 1.5, 0):
        raise SystemExit(3)
    block.current[1] = 42
    block.since[2] = 2.5
    block.stop[0] = 2


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "temporary-file"])
@pytest.mark.parametrize("method", METHODS)
def test_a_worker_reads_and_writes_the_memory_the_pool_reads(
    method: str, memfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not memfd:  # as on macOS and the BSDs
        monkeypatch.delattr(os, "memfd_create", raising=False)
    block = SharedBlock(3)
    assert list(block.current) == [0, 0, 0]
    assert list(block.since) == [0.0, 0.0, 0.0]
    block.current[1] = 41
    block.since[2] = 1.5
    process = multiprocessing.get_context(method).Process(target=_answer, args=(block,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert (block.current[1], block.since[2], block.stop[0]) == (42, 2.5, 2)
    assert (block.current[0], block.current[2], block.since[0]) == (0, 0, 0.0)
