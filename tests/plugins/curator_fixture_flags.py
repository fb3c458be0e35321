"""Backends and reporters whose options declare ``curator run`` flags; some flags are taken."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Sequence

from curator import Backend, Reporter, RunResult, Work, hookimpl
from curator.model.outcome import Event
from curator.plugin_host.options import option


@dataclasses.dataclass(frozen=True)
class DeepOptions:
    depth: int = option(1, help="how deep to go", flag="--depth")


class Deep(Backend):
    name = "deep"
    description = "Runs items in-process and says how deep."
    Options = DeepOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        print(f"deep: depth {self.options.depth}", file=sys.stderr)
        for index in indices:
            yield work(index, worker="deep")


@dataclasses.dataclass(frozen=True)
class GreedyOptions:
    workers: int = option(1, help="wants the name of a built-in flag", flag="--jobs")


class GreedyFlags(Backend):
    name = "greedy-flags"
    description = "Declares a flag curator run has already."
    Options = GreedyOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index, worker="greedy")


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [Deep]


class Greedy:
    @hookimpl
    def curator_register_backends(self) -> list[type[Backend]]:
        return [GreedyFlags]


greedy = Greedy()


@dataclasses.dataclass(frozen=True)
class TallyOptions:
    path: str = option("", help="write the number of finished items here", flag="--tally-file")


class TallyFile(Reporter):
    name = "tally"
    description = "Writes how many items finished into a file."
    Options = TallyOptions

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        with open(self.options.path, "w") as out:
            out.write(f"{len(result.outcomes)}\n")


class Tally:
    @hookimpl
    def curator_register_reporters(self) -> list[type[Reporter]]:
        return [TallyFile]


tally = Tally()


@dataclasses.dataclass(frozen=True)
class LoudOptions:
    level: str = option("", help="wants the name of a built-in flag", flag="--json")


class LoudReporter(Reporter):
    name = "loud"
    description = "Declares a flag curator run has already."
    Options = LoudOptions


class Loud:
    @hookimpl
    def curator_register_reporters(self) -> list[type[Reporter]]:
        return [LoudReporter]


loud = Loud()


@dataclasses.dataclass(frozen=True)
class CrookedOptions:
    depth: int = option(1, help="a bare word", flag="depth")


class CrookedFlags(Backend):
    name = "crooked-flags"
    description = "Declares a flag that is not one."
    Options = CrookedOptions

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index, worker="crooked")


class Crooked:
    @hookimpl
    def curator_register_backends(self) -> list[type[Backend]]:
        return [CrookedFlags]


crooked = Crooked()
