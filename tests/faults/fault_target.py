"""The pipeline the fault campaign runs: it records every completed execution.

Settings come from the environment *when an item runs* (``os.environ`` is
read inside the sink), so they do not change the pipeline's fingerprint and a
resumed run matches the checkpoint of the run it continues:

- ``FAULT_MARKERS``: a folder; each completed execution leaves
  ``<tag>.<index>.<pid>`` there (``FAULT_TAG``, default ``run``);
- ``FAULT_SLOW``: seconds an item in seven takes (the others take a tenth).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

from curator import Pipeline, Sink
from curator.testing.probes import Numbers, crash


class Marked(Sink[int]):
    """Sleeps, misbehaves on request, then leaves a marker for the completed execution."""

    def __init__(
        self,
        exit_at: frozenset[int] = frozenset(),
        kill_at: frozenset[int] = frozenset(),
        segfault_at: frozenset[int] = frozenset(),
        unpicklable_at: frozenset[int] = frozenset(),
    ) -> None:
        self.exit_at = exit_at
        self.kill_at = kill_at
        self.segfault_at = segfault_at
        self.unpicklable_at = unpicklable_at

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index in self.exit_at:
            crash("exit", 3)
        if index in self.kill_at:
            crash("kill")
        if index in self.segfault_at:
            crash("segfault")
        slow = float(os.environ.get("FAULT_SLOW", "0"))
        if slow:
            time.sleep(slow if index % 7 == 0 else slow / 10)
        folder = os.environ.get("FAULT_MARKERS")
        if folder:
            tag = os.environ.get("FAULT_TAG", "run")
            with open(os.path.join(folder, f"{tag}.{index}.{os.getpid()}"), "w"):
                pass
        if index in self.unpicklable_at:
            return [threading.Lock()]  # type: ignore[list-item]
        return [str(index)]


def build(count: int, **faults: frozenset[int]) -> Pipeline[int]:
    """``count`` items into a :class:`Marked` sink with the given faults."""
    return Numbers(count).write(Marked(**faults))


pipeline = build(int(os.environ.get("FAULT_ITEMS", "300")))
