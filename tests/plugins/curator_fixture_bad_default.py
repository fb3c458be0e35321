"""A plugin whose backend declares an int option with a string default."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curator import Backend, Event, Work, hookimpl, option


@dataclass(frozen=True)
class Options:
    workers: int = option("two", help="how many")


class BadDefault(Backend):
    name = "bad-default"
    Options = Options

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index)


@hookimpl
def curator_register_backends() -> list[Any]:
    return [BadDefault]
