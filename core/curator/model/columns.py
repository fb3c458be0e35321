"""Outcomes in columns: the one layout batches of outcomes are gathered in.

An :class:`OutcomeColumns` holds many outcomes as parallel columns (indices,
status codes, times and attempts as raw arrays, workers as numbers into a
list of names, errors and captured output by row, metrics as the rows that
hold a reading, one after another, with their row numbers). It fills from the
three shapes outcomes come in, each column by column in C: single
:class:`~curator.model.outcome.Outcome` objects, a worker's
:class:`~curator.model.outcome.Successes`, and a batch decoded from a
checkpoint's journal. The journal's writer gathers each batch it stores in one; the report
gathers a whole checkpoint in one; ``stream().batches()`` gathers each batch of the run
loop in one and hands it out as an :class:`~curator.model.table.OutcomeTable`.
"""

from __future__ import annotations

import array
import itertools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from curator.model.captured import Captured
from curator.model.measured import MeasuredRows
from curator.model.measures import rows_read
from curator.model.outcome import ErrorInfo, Outcome, Status, Successes
from curator.model.table import OutcomeTable

if TYPE_CHECKING:
    from curator.checkpoint.journal import Batch

STATUSES = list(Status)
"""Status codes: a status's position in :class:`~curator.model.outcome.Status`."""
CODES = {status: code for code, status in enumerate(STATUSES)}
OK_CODE = CODES[Status.OK]
_TABLE_CODES = bytes(range(1, 256)) + b"\0"
"""Status codes here to those of :data:`curator.model.table.STATUS_CODES` (one more: 0 is open)."""

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
        """The rows that hold a reading, :attr:`width` floats each, in the order of
        :attr:`measured`. Quick items are sampled (see :mod:`curator.observing.metrics`),
        so most rows of a run of small items have none and take no room."""
        self.measured = array.array("q")
        """The row numbers of the :attr:`metrics` rows, ascending."""
        self.width = 0
        """Floats per metrics row, set by the first one that came in."""
        self._numbers_of_rows: dict[int, int] | None = None
        self.values: list[Any] | None = [] if values else None
        self._numbers: dict[str, int] = {}

    @classmethod
    def of(cls, batch: Sequence[Outcome | Successes]) -> OutcomeColumns:
        """The outcomes of ``batch`` (single ones and whole ``Successes``), in its order.

        A ``Successes`` goes in as its columns, without an ``Outcome`` per item;
        a run of single outcomes goes in column by column. Either way every loop
        runs in C.
        """
        columns = cls()
        single: list[Outcome] = []
        for entry in batch:
            if type(entry) is Successes:
                if single:
                    columns.add_outcomes(single)
                    single = []
                columns.add_successes(entry)
            else:
                single.append(entry)  # type: ignore[arg-type]
        if single:
            columns.add_outcomes(single)
        return columns

    def __len__(self) -> int:
        return len(self.indices)

    def table(self) -> OutcomeTable:
        """These outcomes as a read-only :class:`~curator.model.table.OutcomeTable`, in order.

        The table shares the columns (nothing is copied per item but the
        timestamps, which it keeps in pairs); add nothing after making it.
        """
        count = len(self.indices)
        times = array.array("d", bytes(16 * count))
        times[0::2] = self.started
        times[1::2] = self.finished
        metrics = None
        if self.width:
            metrics = MeasuredRows(self.width, count)
            metrics.put_rows(0, self.metrics, self.measured)
        return OutcomeTable(
            self.indices,
            self.codes.translate(_TABLE_CODES),
            self.values if self.values is not None else [None] * count,
            times,
            self.attempts,
            self.workers,
            self.names,
            self.errors,
            0.0,  # every row holds a final outcome: no open slot reads the time
            metrics,
            self.printed,
            self.extras,
        )

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
        for row, metrics in enumerate(map(_metrics, batch), base):
            if metrics is not None:
                self._add_row(row, metrics.row())

    def add_successes(self, batch: Successes) -> None:
        """Add a worker's ``ok`` outcomes (or a resume's ``skipped`` ones) as their columns."""
        count = len(batch.indices)
        base = len(self.indices)
        self.codes += bytes((CODES[batch.status],)) * count  # ok; skipped from a resume
        self.indices.extend(batch.indices)
        self.started.extend(batch.started)
        self.finished.extend(batch.finished)
        # An array times a count fills in C; extending from a tuple converts item by item.
        self.attempts += array.array("q", (batch.attempt,)) * count
        self.workers += array.array("q", (self.number(batch.worker),)) * count
        if self.values is not None:
            self.values += batch.values
        if batch.extras:
            for position, extras in batch.extras.items():
                self.extras[base + position] = extras
        if batch.metrics:
            self._add_rows(batch.metrics, batch.metric_width(), batch.measured, base)

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
        if batch.width:
            self._add_rows(batch.metrics, batch.width, batch.measured, base)

    def metric_row(self, row: int) -> Sequence[float] | None:
        """The metrics row of ``row``, or ``None`` when it holds no reading."""
        number = self._rows_measured().get(row)
        if number is None:
            return None
        return self.metrics[number * self.width : (number + 1) * self.width]

    def metric_numbers(self, rows: Sequence[int]) -> list[int]:
        """The numbers in :attr:`metrics` of the rows among ``rows`` that have one, in order."""
        numbers = self._rows_measured()
        return [numbers[row] for row in rows if row in numbers]

    def _rows_measured(self) -> dict[int, int]:
        """The number in :attr:`metrics` of each measured row (rows are only ever added)."""
        numbers, measured = self._numbers_of_rows, self.measured
        if numbers is None or len(numbers) != len(measured):
            numbers = self._numbers_of_rows = dict(zip(measured, range(len(measured)), strict=True))
        return numbers

    def _add_row(self, row: int, values: Sequence[float]) -> None:
        """Keep one row's metrics (of another width than the first: not kept)."""
        if not self.width:
            self.width = len(values)
        if len(values) == self.width:
            self.measured.append(row)
            self.metrics.extend(values)

    def _add_rows(
        self, flat: Sequence[float], width: int, positions: Sequence[int] | None, base: int
    ) -> None:
        """Keep the rows in ``flat`` (``width`` floats each) of the rows ``base + position``.

        ``positions`` are the rows' positions, ascending; ``None``: a row per
        position, of which those holding a reading are kept.
        """
        if not self.width:
            self.width = width
        if width != self.width:  # another shape: not kept
            return
        if positions is not None:
            self.measured.extend(base + position for position in positions)
            self.metrics.extend(flat)
            return
        read = list(rows_read(flat, width))
        if len(read) * width == len(flat):  # every row holds one
            self.measured.extend(range(base, base + len(read)))
            self.metrics.extend(flat)
            return
        for position in read:
            self.measured.append(base + position)
            self.metrics.extend(flat[position * width : (position + 1) * width])
