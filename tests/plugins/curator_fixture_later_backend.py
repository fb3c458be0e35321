"""The classes :mod:`curator_fixture_later` refers to: imported only when a run needs them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Work
from curator.model.outcome import Event


class Later(Backend):
    name = "later"
    description = "Runs items in-process; its module is imported when first used."

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index, worker="later")


class NeedsEngine(Later):
    name = "later-unavailable"
    description = "Needs an engine that is not installed."
    requires = ("curator_fixture_missing_engine",)


class NotABackend:
    name = "not-a-backend"
