"""A well-behaved third-party plugin: one backend and one reporter."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

from curator import Backend, Reporter, RunResult, Work, hookimpl
from curator.model.outcome import Event


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


class Tally(Reporter):
    name = "tally"
    description = "Counts finished items and says so on stderr."

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.finished = 0

    @hookimpl
    def curator_task_finish(self) -> None:
        self.finished += 1

    @hookimpl
    def curator_run_finish(self) -> None:
        sys.stderr.write(f"tally: {self.finished} items finished\n")


@hookimpl
def curator_register_backends() -> list[Any]:
    return [EchoBackend]


@hookimpl
def curator_register_reporters() -> list[Any]:
    return [LastResult, Tally]
