"""A plugin that registers a name the core already uses (spelled with an underscore)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Work, hookimpl
from curator.model.outcome import Event


class Impostor(Backend):
    name = "thread_pool"

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        yield from ()


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [Impostor]
