"""Outcomes in columns: the one layout batches of outcomes are gathered in.

An :class:`OutcomeColumns` holds many outcomes as parallel columns (indices,
status codes, times and attempts as raw arrays, workers as numbers into a
list of names, errors and captured output by row, metrics as one flat array
of rows). It fills from the three shapes outcomes come in, each column by
column in C: single :class:`~curator.model.outcome.Outcome` objects, a worker's
:class:`~curator.model.outcome.Successes`, and a batch decoded from a checkpoint's
journal. The journal's writer gathers each batch it stores in one; the report
gathers a whole checkpoint in one.
"""

from __future__ import annotations

import array
import itertools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from curator.model.captured import Captured
from curator.model.measures import MISSING
from curator.model.outcome import ErrorInfo, Outcome, Status, Successes

if TYPE_CHECKING:
    from curator.checkpoint.journal import Batch

STATUSES = list(Status)
"""Status codes: a status's position in :class:`~curator.model.outcome.Status`."""
CODES = {status: code for code, status in enumerate(STATUSES)}
OK_CODE = CODES[Status.OK]

_index = operator.attrgetter("index")
_status = operator.attrgetter("status")
_value = operator.attrgetter("value")
_worker = operator.attrgetter("worker")
_started = operator.attrgetter("started")
_finished = operator.attrgetter("finished")
_attempt = operator.attrgetter("attempt")
_metrics = operator.attrgetter("metrics")
_output = operator.attrgetter("output")
_extras = operator.attrgetter("extras")


class OutcomeColumns:
    """Outcomes in columns, row after row in the order they were added.

    Parameters
    ----------
    values
        Whether to keep what each sink returned (:attr:`values`): the journal
        stores them, the report does not read them.
    """

    def __init__(self, values: bool = True) -> None:
        self.indices = array.array("q")
        self.codes = bytearray()
        self.started = array.array("d")
        self.finished = array.array("d")
        self.attempts = array.array("q")
        self.workers = array.array("q")
        """Numbers into :attr:`names`: few distinct workers, many items."""
        self.names: list[str] = []
        self.errors: dict[int, ErrorInfo] = {}
        """By row."""
        self.printed: dict[int, Captured] = {}
        """Captured output, by row."""
        self.extras: dict[int, dict[str, Any]] = {}
        """What per-item features recorded (see :mod:`curator.observing.features`), by row."""
        self.metrics = array.array("d")
        """:attr:`width` floats per row once a measured row came in (``NaN``: not measured)."""
        self.width = 0
        self.values: list[Any] | None = [] if values else None
        self._numbers: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def number(self, worker: str) -> int:
        """``worker``'s number in :attr:`names` (added if new)."""
        number = self._numbers.get(worker)
        if number is None:
            number = self._numbers[worker] = len(self.names)
            self.names.append(worker)
        return number

    def add_outcomes(self, batch: Sequence[Outcome]) -> None:
        """Add single outcomes (any status)."""
        base = len(self.indices)
        codes = bytes(map(CODES.__getitem__, map(_status, batch)))
        if codes.count(OK_CODE) != len(codes):
            for row, outcome in enumerate(batch, base):
                if outcome.error is not None:
                    self.errors[row] = outcome.error
        printed, extra = self.printed, self.extras
        for row, output, extras in zip(
            itertools.count(base), map(_output, batch), map(_extras, batch)
        ):  # one pass for the columns kept by row
            if output is not None:
                printed[row] = output
            if extras is not None:
                extra[row] = extras
        self.codes += codes
        self.indices.extend(map(_index, batch))
        self.started.extend(map(_started, batch))
        self.finished.extend(map(_finished, batch))
        self.attempts.extend(map(_attempt, batch))
        self.workers.extend(map(self.number, map(_worker, batch)))
        if self.values is not None:
            self.values += map(_value, batch)
        rows = [None if m is None else m.row() for m in map(_metrics, batch)]
        width = next((len(row) for row in rows if row is not None), 0)
        if width:
            self._measured(width, base)
        if self.width:
            blank = _blank(self.width)
            for measured in rows:
                if measured is not None and len(measured) == self.width:
                    self.metrics.extend(measured)
                else:
                    self.metrics.extend(blank)

    def add_successes(self, batch: Successes) -> None:
        """Add a worker's ``ok`` outcomes as the columns they came in."""
        count = len(batch.indices)
        base = len(self.indices)
        self.codes += bytes((OK_CODE,)) * count
        self.indices.extend(batch.indices)
        self.started.extend(batch.started)
        self.finished.extend(batch.finished)
        self.attempts.extend((batch.attempt,) * count)
        self.workers.extend((self.number(batch.worker),) * count)
        if self.values is not None:
            self.values += batch.values
        if batch.extras:
            for position, extras in batch.extras.items():
                self.extras[base + position] = extras
        self._add_metrics(batch.metrics, batch.metric_width(), count, base)

    def add_batch(self, batch: Batch) -> None:
        """Add a batch decoded from the journal (:func:`curator.checkpoint.journal.read_batch`)."""
        base = len(self.indices)
        mine = array.array("q", map(self.number, batch.names))
        self.indices.extend(batch.indices)
        self.codes += batch.codes
        self.started.extend(batch.started)
        self.finished.extend(batch.finished)
        self.attempts.extend(batch.attempts)
        self.workers.extend(map(mine.__getitem__, batch.workers))
        for position, error in batch.errors.items():
            self.errors[base + position] = error
        for position, output in batch.printed.items():
            self.printed[base + position] = output
        for position, extras in batch.extras.items():
            self.extras[base + position] = extras
        self._add_metrics(batch.metrics, batch.width, len(batch.indices), base)

    def _add_metrics(self, flat: Sequence[float] | None, width: int, count: int, base: int) -> None:
        """Add ``count`` rows of metrics, ``width`` floats each one after another in ``flat``."""
        if width and flat:
            self._measured(width, base)
        if not self.width:
            return
        if flat and width == self.width:
            self.metrics.extend(flat)
        else:  # unmeasured (or of another shape): blank rows
            self.metrics.extend(_blank(self.width) * count)

    def _measured(self, width: int, base: int) -> None:
        """The first measured rows came in: the ``base`` rows before them get blank ones."""
        if not self.width:
            self.width = width
            self.metrics.extend(_blank(width) * base)


def _blank(width: int) -> array.array[float]:
    """A row of ``width`` floats that stands for no measurement."""
    return array.array("d", (MISSING,)) * width
