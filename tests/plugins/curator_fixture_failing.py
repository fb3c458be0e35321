"""A plugin whose backends fail: one in execute after 4 items, one in close() after a full run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Capabilities, Work, hookimpl
from curator.model.outcome import Event


class Unreachable(Backend):
    name = "unreachable"
    description = "Loses its cluster after 4 items."
    capabilities = Capabilities(parallel=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for done, index in enumerate(indices):
            if done == 4:
                raise ConnectionError("the cluster is unreachable")
            yield work.start(index)
            yield work(index)


class CloseRaises(Backend):
    name = "close-raises"
    description = "Runs every item, then fails to close."
    capabilities = Capabilities(parallel=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work.start(index)
            yield work(index)

    def close(self) -> None:
        raise RuntimeError("close exploded")


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [Unreachable, CloseRaises]
