"""Dispatch planning for backends: units that must not be split, a queue of them, chunk sizes.

Written once, here, so that every backend keeps groups together the same way
and sizes its chunks the same way. A backend receives its indices as a plain
sequence, or, when the pipeline declares keep-together groups, as a
:class:`Grouped` sequence whose :attr:`Grouped.units` it must dispatch whole:
each unit to one worker, its items in order, one at a time. :class:`Todo`
hands out whole units and puts a dead worker's unfinished items back as
units; :class:`ChunkSizer` sizes chunks from measured item times.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import overload


class Grouped(Sequence[int]):
    """A round's indices in dispatch order, with the units a backend must not split.

    Iterating gives every index, a unit's items next to each other. A backend
    that declares ``Capabilities(keeps_groups=True)`` dispatches each of
    :attr:`units` to one worker, which runs its items in order, one at a time.

    Parameters
    ----------
    units
        Keep-together groups and single free indices, in dispatch order.
    """

    __slots__ = ("_flat", "_unit_of", "units")

    def __init__(self, units: list[list[int]]) -> None:
        self.units = units
        self._flat = [index for unit in units for index in unit]
        self._unit_of = {index: number for number, unit in enumerate(units) for index in unit}

    def __len__(self) -> int:
        return len(self._flat)

    @overload
    def __getitem__(self, item: int) -> int: ...

    @overload
    def __getitem__(self, item: slice) -> Sequence[int]: ...

    def __getitem__(self, item: int | slice) -> int | Sequence[int]:
        return self._flat[item]

    def __iter__(self) -> Iterator[int]:
        return iter(self._flat)

    def __repr__(self) -> str:
        return f"Grouped({self.units!r})"

    def split(self, indices: Sequence[int]) -> list[list[int]]:
        """``indices`` (some of these, in order) cut into the units they belong to.

        Items of one unit that follow each other stay one unit, so the part of
        a group a dead worker did not finish goes out again whole.
        """
        pieces: list[list[int]] = []
        last = None
        for index in indices:
            unit = self._unit_of[index]
            if pieces and unit == last:
                pieces[-1].append(index)
            else:
                pieces.append([index])
            last = unit
        return pieces


def units(indices: Sequence[int]) -> Iterator[Sequence[int]]:
    """The units of ``indices``: each group whole when they are :class:`Grouped`, else one each.

    The iterator is a built-in one (no generator), so threads may share it:
    with the GIL each ``next()`` hands a unit to exactly one of them.
    """
    if isinstance(indices, Grouped):
        return iter(indices.units)
    return zip(indices)  # one-item tuples


class Todo:
    """Indices waiting for dispatch, handed out in whole units: requeued ones first.

    Parameters
    ----------
    indices
        The round's indices; :class:`Grouped` ones go out a unit at a time.
    """

    def __init__(self, indices: Sequence[int]) -> None:
        self._grouped = indices if isinstance(indices, Grouped) else None
        self._units: Iterator[Sequence[int]] | None = (
            iter(indices.units) if isinstance(indices, Grouped) else None
        )
        self._rest = iter(indices) if self._units is None else iter(())
        self._left = len(indices)
        self._requeued: collections.deque[list[int]] = collections.deque()
        self._requeued_items = 0

    def __len__(self) -> int:
        return self._left + self._requeued_items

    def __bool__(self) -> bool:
        return self._left > 0 or bool(self._requeued)

    def take(self, count: int) -> list[int]:
        """About ``count`` indices in whole units: never fewer than one unit, never a unit split.

        A unit larger than ``count`` goes out alone; otherwise units are added
        while they fit.
        """
        chunk: list[int] = []
        while self._requeued and (not chunk or len(chunk) + len(self._requeued[0]) <= count):
            chunk += self._requeued.popleft()
        self._requeued_items -= len(chunk)
        if self._units is None:
            if len(chunk) < count:
                more = list(itertools.islice(self._rest, count - len(chunk)))
                self._left -= len(more)
                chunk += more
            return chunk
        while self._left:
            unit = next(self._units)
            if chunk and len(chunk) + len(unit) > count:
                self._requeued.append(list(unit))  # the next chunk starts with it
                self._requeued_items += len(unit)
                self._left -= len(unit)
                break
            chunk += unit
            self._left -= len(unit)
        return chunk

    def requeue(self, indices: list[int]) -> None:
        """Put ``indices`` back at the front, in order (a dead worker's unfinished items)."""
        if self._grouped is not None:
            pieces = self._grouped.split(indices)
        else:
            pieces = [[index] for index in indices]
        self._requeued.extendleft(reversed(pieces))
        self._requeued_items += len(indices)


class ChunkSizer:
    """Decide how many indices the next chunk gets from measured item times.

    The first chunks hold one item each, to measure. Afterwards a chunk is
    sized to take about ``target_seconds``, but never more than a quarter of
    the remaining work per worker, so the tail of the run stays balanced
    across workers even when some items are much slower than others.

    Parameters
    ----------
    workers
        Number of workers.
    fixed
        A user-chosen chunk size; disables adaptation.
    target_seconds
        How long a chunk should take.
    max_chunk
        Upper bound on adaptive chunks (bounds the records in flight).
    """

    def __init__(
        self,
        workers: int,
        fixed: int | None = None,
        target_seconds: float = 0.05,
        max_chunk: int = 8192,
    ) -> None:
        self.workers = workers
        self.fixed = fixed
        self.target_seconds = target_seconds
        self.max_chunk = max_chunk
        self.seconds_per_item: float | None = None

    def observe(self, items: int, seconds: float) -> None:
        """Learn from a finished chunk of ``items`` that took ``seconds`` in the worker."""
        if items <= 0:
            return
        sample = max(seconds, 1e-7) / items
        if self.seconds_per_item is None:
            self.seconds_per_item = sample
        else:
            # Weighted toward recent chunks, so a change of pace is followed quickly.
            self.seconds_per_item = 0.5 * self.seconds_per_item + 0.5 * sample

    def next_size(self, remaining: int) -> int:
        """The size of the next chunk, given how many indices are left to dispatch."""
        if remaining <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.seconds_per_item is None:
            return 1
        fair = math.ceil(remaining / (4 * self.workers))
        wanted = max(1, int(self.target_seconds / self.seconds_per_item))
        return max(1, min(wanted, fair, remaining, self.max_chunk))
