"""A well-behaved third-party plugin: one backend and one reporter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from curator import Backend, Reporter, RunResult, Work, hookimpl
from curator.outcome import Event


class EchoBackend(Backend):
    name = "echo"
    description = "Runs items in reverse order, in-process."

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in reversed(indices):
            yield work(index, worker="echo")


class LastResult(Reporter):
    name = "last-result"
    description = "Remembers the last result."
    last: RunResult | None = None

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        type(self).last = result


@hookimpl
def curator_register_backends() -> list[Any]:
    return [EchoBackend]


@hookimpl
def curator_register_reporters() -> list[Any]:
    return [LastResult]
