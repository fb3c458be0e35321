"""A plugin whose backend loses the last index (a contract violation: an internal error)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Capabilities, Work, hookimpl
from curator.model.outcome import Event


class Lossy(Backend):
    name = "lossy"
    description = "Forgets the last item."
    capabilities = Capabilities(parallel=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices[:-1]:
            yield work(index)


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [Lossy]
