"""The memory the pool and its workers share: what each worker runs, since when, the stop flag.

One block of anonymous shared memory, mapped by the parent and by each
worker, holding three typed views: ``current[slot]`` (the index a worker
runs, or a negative state), ``since[slot]`` (when it started, wall clock) and
``stop[0]`` (see :data:`~curator_backend_process_pool.worker.STOP`). A worker
started by ``spawn`` or a fork server receives the block's file descriptor
with its arguments and maps it; one started by ``fork`` inherits the mapping.

``multiprocessing.RawArray`` would do the same, but unpickling one imports
``ctypes``, ``multiprocessing.heap`` and ``sharedctypes`` in every worker:
about 3 ms of each worker's start, on the critical path of every short run.
"""

from __future__ import annotations

import mmap
import os
import weakref
from multiprocessing.reduction import DupFd
from typing import Any


class SharedBlock:
    """The shared memory of a pool of ``size`` workers; picklable into a starting worker."""

    def __init__(self, size: int, fd: int | None = None) -> None:
        self.size = size
        length = max(16 * size + 8, mmap.PAGESIZE)
        if fd is None:
            fd = _anonymous_file(length)
        self.fd = fd
        weakref.finalize(self, os.close, fd)  # kept open to hand to workers started later
        self.memory = mmap.mmap(fd, length)
        view = memoryview(self.memory)
        self.current: memoryview[int] = view[: 8 * size].cast("q")
        """``current[slot]``: the index the worker in ``slot`` runs, or a negative state."""
        self.since: memoryview[float] = view[8 * size : 16 * size].cast("d")
        """``since[slot]``: when that item (or the worker's setup) started."""
        self.stop: memoryview[int] = view[16 * size : 16 * size + 1].cast("b")
        """``stop[0]``: 0, or how the workers are to stop."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Only while multiprocessing starts a process (DupFd hands the descriptor over).
        return (_attach, (self.size, DupFd(self.fd)))


def _attach(size: int, fd: Any) -> SharedBlock:
    """The block in a starting worker, from the descriptor the parent handed over."""
    return SharedBlock(size, fd.detach())


def _anonymous_file(length: int) -> int:
    """A descriptor of ``length`` zeroed bytes that no path names."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("curator-pool", os.MFD_CLOEXEC)
    else:  # macOS and the BSDs: a temporary file, unlinked at once
        import tempfile

        fd, path = tempfile.mkstemp(prefix="curator-pool-")
        os.unlink(path)
    os.ftruncate(fd, length)
    return fd
