"""One of two plugins that register the same backend name ("twin")."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Event, Work, hookimpl


class TwinB(Backend):
    name = "twin"
    description = "twin B"

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index)


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [TwinB]
