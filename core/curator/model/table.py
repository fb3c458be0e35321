"""Outcomes kept in columns, read as :class:`~curator.model.outcome.Outcome` objects on demand.

:attr:`curator.RunResult.outcomes` of a run is an :class:`OutcomeTable`: a
read-only sequence over the run's columns (status bytes, values, timestamps,
attempts, workers, errors). Reading an item builds its ``Outcome``; the
questions asked of every outcome at the end of a run (the outputs, the
failures, the slowest items, counts) are answered from the columns directly.
:meth:`curator.RunStream.batches` hands out a stream's outcomes as one such table
per batch.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import re
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, overload

from curator.model.captured import Captured
from curator.model.measured import MeasuredRows
from curator.model.measures import Metrics
from curator.model.outcome import ErrorInfo, Outcome, Status

STATUS_CODES = {status: code for code, status in enumerate(Status, 1)}
"""The byte that stands for each status in a column (0: no outcome yet)."""
STATUSES = [Status.CANCELLED, *Status]  # by code; an open slot reads as cancelled
FAILURE_CODES = frozenset(STATUS_CODES[s] for s in Status if s.is_failure)
_FAILED = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(FAILURE_CODES)) + b"]")
"""Any one failure's byte in a status column."""


class OutcomeTable(Sequence[Outcome]):
    """Outcomes built from columns when read: a run's, in requested order, or a stream's batch.

    :attr:`curator.RunResult.outcomes` holds a run's in requested order; each
    table :meth:`curator.RunStream.batches` hands out holds the outcomes of
    one batch, in the order they completed.

    Compares equal to a list of the same outcomes. Reading the same item
    twice builds two equal ``Outcome`` objects; changing one changes nothing
    here.
    """

    __slots__ = (
        "_attempts",
        "_codes",
        "_errors",
        "_extras",
        "_indices",
        "_metrics",
        "_printed",
        "_times",
        "_values",
        "_when",
        "_worker_names",
        "_workers",
    )

    def __init__(
        self,
        indices: Sequence[int],
        codes: bytearray,
        values: list[Any],
        times: array[float],
        attempts: array[int],
        workers: array[int],
        worker_names: list[str],
        errors: dict[int, ErrorInfo],
        when: float,
        metrics: MeasuredRows | None = None,
        printed: dict[int, Captured] | None = None,
        extras: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        self._indices = indices
        self._codes = codes
        self._values = values
        self._times = times
        self._attempts = attempts
        self._workers = workers
        self._worker_names = worker_names
        self._errors = errors
        self._when = when
        self._metrics = metrics
        self._printed = printed or {}
        self._extras = extras or {}

    def __len__(self) -> int:
        return len(self._indices)

    def _at(self, position: int) -> Outcome:
        code = self._codes[position]
        index = self._indices[position]
        if not code:
            return Outcome(index, Status.CANCELLED, started=self._when, finished=self._when)
        times = self._times
        return Outcome(
            index,
            STATUSES[code],
            self._values[position],
            self._errors.get(position),
            self._worker_names[self._workers[position]],
            times[2 * position],
            times[2 * position + 1],
            self._attempts[position],
            self._metrics_at(position),
            self._printed.get(position),
            self._extras.get(position),
        )

    def _metrics_at(self, position: int) -> Metrics | None:
        metrics = self._metrics
        if metrics is None:
            return None
        row = metrics.row(position)
        return None if row is None else Metrics.from_row(row)

    @overload
    def __getitem__(self, item: int) -> Outcome: ...

    @overload
    def __getitem__(self, item: slice) -> list[Outcome]: ...

    def __getitem__(self, item: int | slice) -> Outcome | list[Outcome]:
        if isinstance(item, slice):
            return [self._at(p) for p in range(*item.indices(len(self)))]
        position = operator.index(item)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("outcome index out of range")
        return self._at(position)

    def __iter__(self) -> Iterator[Outcome]:
        count = len(self)
        if 0 in self._codes:  # open slots read as cancelled at the run's end: item by item
            return map(self._at, range(count))
        # One map in C over the columns, as Successes does: the per-item cost is
        # Outcome's own __init__, where _at would add a Python call of its own.
        repeat, positions = itertools.repeat, range(count)
        times = self._times
        return map(
            Outcome,
            self._indices,
            map(STATUSES.__getitem__, self._codes),
            self._values,
            map(self._errors.get, positions) if self._errors else repeat(None),
            map(self._worker_names.__getitem__, self._workers),
            times[0::2],
            times[1::2],
            self._attempts,
            self._metrics_by_position(),
            map(self._printed.get, positions) if self._printed else repeat(None),
            map(self._extras.get, positions) if self._extras else repeat(None),
        )

    def _metrics_by_position(self) -> Iterator[Metrics | None]:
        """Each position's metrics, in order (what :meth:`_metrics_at` reads one by one)."""
        rows = self._metrics.present() if self._metrics is not None else None
        if not rows:
            return itertools.repeat(None)
        metrics = {p: Metrics.from_row(row) for p, row in rows.items()}
        return map(metrics.get, range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OutcomeTable | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        return f"OutcomeTable({len(self)} outcomes)"

    # -- questions answered from the columns -----------------------------------------

    def indices(self) -> list[int]:
        """The items' indices, in order."""
        return list(self._indices)

    def values(self) -> list[Any]:
        """What the sink returned per item, in order (``None`` where it did not return)."""
        return list(self._values)  # open and reopened slots hold None

    def metric_columns(self) -> tuple[array[float], int]:
        """The metrics rows one after another, in no particular order, and their width.

        Only items with metrics have a row (``NaN`` rows: not measured).
        """
        metrics = self._metrics
        if metrics is None or not metrics.width:
            return array("d"), 0
        return metrics.rows(), metrics.width

    def failures(self) -> list[Outcome]:
        """The failed, crashed and timed-out outcomes, in order."""
        # Found in C: every run asks at its end, and most runs have few or none.
        return [self._at(found.start()) for found in _FAILED.finditer(self._codes)]

    def slowest(self, count: int) -> list[Outcome]:
        """The ``count`` items that ran longest, slowest first (cancelled ones left out)."""
        times = self._times
        durations = list(map(operator.sub, times[1::2], times[0::2]))
        codes = self._codes
        cancelled = STATUS_CODES[Status.CANCELLED]
        ran = (p for p in range(len(durations)) if codes[p] and codes[p] != cancelled)
        return [self._at(p) for p in heapq.nlargest(count, ran, key=durations.__getitem__)]
