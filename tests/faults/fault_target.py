"""The pipeline the fault campaign runs: it records every completed execution.

Settings come from the environment *when an item runs* (``os.environ`` is
read inside the sink), so they do not change the pipeline's fingerprint and a
resumed run matches the checkpoint of the run it continues:

- ``FAULT_MARKERS``: a folder; each completed execution leaves
  ``<tag>.<index>.<pid>`` there (``FAULT_TAG``, default ``run``);
- ``FAULT_SLOW``: seconds an item in seven takes (the others take a tenth);
- ``FAULT_TALLY``: a file the accumulating stage writes its merged state to when
  a run ends (its ``finish()``, in the run's process);
- ``FAULT_HANG``: ``setup`` or ``teardown``: the first worker to get there hangs
  in that hook of the ``hooks`` stage (until ``release`` appears beside the
  markers folder, or 600 s).

Read when the module is imported (they shape the pipeline, so a resume must
give the same): ``FAULT_ITEMS`` (default 300) and ``FAULT_STAGES``, the stage
state styles between source and sink, joined by ``+``: ``tally``
(reset/state/merge), ``shards`` (a :class:`~curator.testing.shard_rows.ShardRows`:
flush()/merge into ``FAULT_SHARDS``), and
``hooks`` (per-worker setup/teardown that hang as ``FAULT_HANG`` says).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curator import Filter, Pipeline, Sink, WorkerInfo
from curator.testing.probes import Numbers, Tally, claim, crash, hold
from curator.testing.shard_rows import ShardRows, rows

__all__ = ["build", "pipeline", "rows"]


def _local(value: object) -> object:
    """``value`` wrapped in an instance of a class local to this call: cloudpickle only."""

    class Local:
        def __init__(self, value: object) -> None:
            self.value = value

    return Local(value)


class Marked(Sink[int]):
    """Sleeps, misbehaves on request, then leaves a marker for the completed execution."""

    def __init__(
        self,
        exit_at: frozenset[int] = frozenset(),
        kill_at: frozenset[int] = frozenset(),
        segfault_at: frozenset[int] = frozenset(),
        unpicklable_at: frozenset[int] = frozenset(),
        local_at: frozenset[int] = frozenset(),
        bytes_at: frozenset[int] = frozenset(),
    ) -> None:
        self.exit_at = exit_at
        self.kill_at = kill_at
        self.segfault_at = segfault_at
        self.unpicklable_at = unpicklable_at
        self.local_at = local_at
        self.bytes_at = bytes_at

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index in self.exit_at:
            crash("exit", 3)
        if index in self.kill_at:
            crash("kill")
        if index in self.segfault_at:
            crash("segfault")
        if index in self.bytes_at:
            sys.stdout.write(b"bytes, not text\n")  # type: ignore[arg-type]
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
        if index in self.local_at:
            return [_local(index)]  # type: ignore[list-item]
        return [str(index)]


class Tallied(Tally):
    """The probes' tally (reset/state/merge; its state: the indices it saw).

    Items of ``local_state_at`` hand out their partial inside a local class (only
    cloudpickle pickles it); ``finish()`` writes the merged tally to ``FAULT_TALLY``.
    """

    def __init__(self, local_state_at: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.local_state_at = local_state_at

    def state(self) -> Any:
        """The indices seen, wrapped in a local class for the items that ask for it."""
        if self.local_state_at.intersection(self.seen):
            return _local(self.seen)
        return self.seen

    def merge(self, states: list[Any]) -> tuple[int, ...]:
        """Hold every index of ``states`` (plain or wrapped), sorted."""
        return super().merge([getattr(s, "value", s) for s in states])

    def finish(self) -> None:
        """Write the merged tally where ``FAULT_TALLY`` says, if it says."""
        target = os.environ.get("FAULT_TALLY")
        if target:
            Path(target).write_text(json.dumps(self.seen))


class Hooks(Filter[int]):
    """Per-worker ``setup``/``teardown``; the first worker to reach the hook ``FAULT_HANG`` hangs.

    ``FAULT_HANG`` is read when the hook runs: a resume without it runs the same pipeline.
    """

    def setup(self, worker: WorkerInfo) -> None:
        self._maybe_hang("setup")

    def teardown(self) -> None:
        self._maybe_hang("teardown")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        yield from items

    @staticmethod
    def _maybe_hang(hook: str) -> None:
        markers = os.environ.get("FAULT_MARKERS")
        if markers and os.environ.get("FAULT_HANG") == hook:
            folder = Path(markers).parent
            if claim(folder, "hung"):
                hold(folder)


def build(
    count: int,
    stages: str = "",
    shards: str | Path | None = None,
    local_state_at: frozenset[int] = frozenset(),
    **faults: frozenset[int],
) -> Pipeline[int]:
    """``count`` items through the stage state ``stages`` into a :class:`Marked` sink."""
    pipeline: Pipeline[int] = Pipeline(Numbers(count))
    for style in filter(None, stages.split("+")):
        if style == "tally":
            pipeline = pipeline.filter(Tallied(local_state_at))
        elif style == "shards":
            assert shards is not None, "shard-style stages need an output path"
            pipeline = pipeline.filter(ShardRows(os.fspath(shards)))
        elif style == "hooks":
            pipeline = pipeline.filter(Hooks())
        else:
            raise ValueError(f"unknown stage state style {style!r}")
    return pipeline.write(Marked(**faults))


pipeline = build(
    int(os.environ.get("FAULT_ITEMS", "300")),
    stages=os.environ.get("FAULT_STAGES", ""),
    shards=os.environ.get("FAULT_SHARDS"),
)
