"""The pipeline of the wave-2 checkpoint fixture: frozen, never edit it.

``wave2-checkpoint.sqlite`` beside this module was written by curator at
commit 300d37d (the last release before the third wave's reshaping), signed
with ``wave2-checkpoint.key``, by two runs from the repository root::

    curator run tests/legacy/wave2_pipeline.py:pipeline -b thread-pool -j 2 \
        --indices 0:12 --keep-going --checkpoint C --reporter log
    curator run tests/legacy/wave2_pipeline.py:pipeline -b sequential \
        --indices 12:16 --keep-going --checkpoint C --reporter log

so it holds 14 ok items (0-15 but 3 and 10), 2 failed ones and two runs.
``test_legacy_checkpoint.py`` reads, reports and resumes it with today's
code. Changing this module changes the pipeline's fingerprint: never edit it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from curator import Filter, Sink, Source

FAILING = frozenset({3, 10})
"""Indices whose item raises (the fixture records them failed)."""


class Squares(Source[int]):
    """Index i yields i."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index


class Seen(Filter[int]):
    """Accumulates the indices that passed (stage state: reset/state/merge); prints each."""

    def __init__(self) -> None:
        self.seen: tuple[int, ...] = ()

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        for item in items:
            print(f"seen {item}")
            self.seen = (*self.seen, item)
            yield item

    def reset(self) -> None:
        self.seen = ()

    def state(self) -> tuple[int, ...]:
        return self.seen

    def merge(self, states: list[tuple[int, ...]]) -> tuple[int, ...]:
        self.seen = tuple(sorted(i for state in states for i in state))
        return self.seen


class Square(Sink[int]):
    """Returns the square as text; raises for the indices in ``FAILING``."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        values = list(items)
        if index in FAILING:
            print(f"about to fail on {index}", file=sys.stderr)
            raise ValueError(f"item {index} is bad on purpose")
        return [str(v * v) for v in values]


def build() -> object:
    """A fresh pipeline of 20 items (the fixture's)."""
    return Squares(20).filter(Seen()).write(Square())


pipeline = build()
