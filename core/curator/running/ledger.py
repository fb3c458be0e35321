"""The ledger: one slot per requested index, filled as outcomes arrive.

It answers "was this index requested, and is it still open?" in O(1) and keeps
outcomes in requested order without per-index sets or dicts when the request
is a ``range`` (the common "run everything" case).

Outcomes are kept in columns, not as objects: a status byte, the value, two
timestamps, the attempt and the worker per slot, and the errors of the few
that have one. That is about 30 bytes per item besides the value, where an
``Outcome`` with its index and timestamps costs 176, so a run of a million
items costs the parent little more than what the sinks returned. Metrics add
a row of 8-byte floats (one per stage, and 4 more) for each item read, kept sparse
until a third of the items have one (:class:`~curator.model.measured.MeasuredRows`). The
:class:`~curator.model.table.OutcomeTable` of :meth:`Ledger.outcomes` builds each
``Outcome`` when it is read. A ledger that does not keep outcomes (a streamed
run) holds the status bytes and the failed outcomes only (retries and the
result need them).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from curator.model.captured import Captured
from curator.model.measured import MeasuredRows
from curator.model.measures import ascending_positions
from curator.model.outcome import ErrorInfo, Outcome, Status, Successes
from curator.model.table import STATUS_CODES, OutcomeTable

_DONE_CODES = frozenset((STATUS_CODES[Status.OK], STATUS_CODES[Status.SKIPPED]))


def _doubles(numbers: Sequence[float]) -> array[float]:
    """``numbers`` as an ``array('d')``, which is what an array slice takes."""
    if isinstance(numbers, array) and numbers.typecode == "d":
        return numbers
    return array("d", numbers)


class Ledger:
    """Outcome slots for ``indices``, in that order.

    Parameters
    ----------
    indices
        Distinct, valid indices; a ``range`` needs no lookup table.
    keep
        Keep every outcome (``curator.run``); otherwise only each slot's status
        and the failed outcomes (``curator.stream``).
    metric_width
        Floats per metrics row (:attr:`curator.model.plan.StagePlan.metric_width`); 0 when
        the run measures nothing.
    """

    __slots__ = (
        "_attempts",
        "_codes",
        "_count",
        "_errors",
        "_extras",
        "_failures",
        "_first",
        "_metrics",
        "_positions",
        "_printed",
        "_times",
        "_values",
        "_worker_ids",
        "_workers",
        "indices",
        "keep",
        "metric_width",
        "open",
        "worker_names",
    )

    def __init__(self, indices: Sequence[int], keep: bool = True, metric_width: int = 0) -> None:
        self.indices = indices
        self.keep = keep
        count = len(indices)
        kept = count if keep else 0
        self.metric_width = metric_width if keep else 0
        self._metrics = MeasuredRows(self.metric_width, kept)
        self._count = count
        self._codes = bytearray(count)
        self._values: list[Any] = [None] * kept
        self._times = array("d", bytes(16 * kept))  # started, finished per slot
        self._attempts = array("I", bytes(4 * kept))
        self._workers = array("H", bytes(2 * kept))
        self.worker_names: list[str] = [""]
        self._worker_ids: dict[str, int] = {"": 0}
        self._errors: dict[int, ErrorInfo] = {}  # by position
        self._printed: dict[int, Captured] = {}  # by position
        self._extras: dict[int, dict[str, Any]] = {}  # features' data, by position
        self._failures: dict[int, Outcome] = {}  # by index, when not kept
        # The "run everything" case (a range of step 1) needs only subtraction.
        self._first = indices.start if isinstance(indices, range) and indices.step == 1 else None
        self._positions: dict[int, int] | None = (
            None if isinstance(indices, range) else {i: p for p, i in enumerate(indices)}
        )
        self.open = count
        """How many requested indices have no outcome yet."""

    def position(self, index: int) -> int | None:
        """Where ``index`` sits in the request, or ``None`` if it was not requested."""
        if self._positions is not None:
            return self._positions.get(index)
        span = self.indices
        assert isinstance(span, range)
        if span.step == 1:  # the "run everything" case: plain arithmetic
            position = index - span.start
            return position if 0 <= position < len(span) else None
        return span.index(index) if index in span else None

    def reported(self, index: int) -> bool:
        """Whether ``index`` has its final outcome already."""
        position = self.position(index)
        return position is not None and bool(self._codes[position])

    def record(self, outcome: Outcome) -> str | None:
        """Store ``outcome``; return why it breaks the backend contract, or ``None``."""
        first = self._first
        if first is not None:  # once per item: no call to position()
            at = outcome.index - first
            position = at if 0 <= at < self._count else None
        else:
            position = self.position(outcome.index)
        if position is None:
            return f"reported index {outcome.index}, which was not requested"
        codes = self._codes
        if codes[position]:
            return f"reported index {outcome.index} twice"
        status = outcome.status
        codes[position] = STATUS_CODES[status]
        self.open -= 1
        if not self.keep:
            if status.is_failure:
                self._failures[outcome.index] = outcome
            return None
        self._values[position] = outcome.value
        times = self._times
        times[2 * position] = outcome.started
        times[2 * position + 1] = outcome.finished
        self._attempts[position] = outcome.attempt
        worker = self._worker_ids.get(outcome.worker)
        if worker is None:
            worker = self._name(outcome.worker)
        self._workers[position] = worker
        if outcome.error is not None:
            self._errors[position] = outcome.error
        if outcome.output is not None:
            self._printed[position] = outcome.output
        if outcome.extras is not None:
            self._extras[position] = outcome.extras
        width = self.metric_width
        if width and outcome.metrics is not None:
            row = outcome.metrics.row()
            if len(row) == width:
                self._metrics.put(position, row)
        return None

    def record_successes(self, batch: Successes) -> str | None:
        """Store one worker's ``ok`` outcomes (or a resume's ``skipped`` ones) in columns.

        Returns why the batch breaks the backend contract, or ``None``.

        A worker's batch is usually a run of consecutive indices (a chunk),
        which fills each column with one slice assignment and makes no
        ``Outcome``; any other batch goes through :meth:`record`, one outcome
        at a time.
        """
        indices, values = batch.indices, batch.values
        size = len(indices)
        if not len(batch.started) == len(batch.finished) == len(values) == size:
            return f"sent a Successes batch whose columns differ in length ({batch.worker})"
        if not size:
            return None
        broken = _broken_metrics(batch, size)
        if broken is not None:
            return broken
        if batch.extras and not all(type(p) is int and 0 <= p < size for p in batch.extras):
            return (
                f"sent a Successes batch whose extras name positions it does not have "
                f"({size} items, {batch.worker})"
            )
        at = self._slots_of(indices)
        if at is not None:
            end = at + size
            codes = self._codes
            if codes.count(0, at, end) != size:
                return self._contract_breach(indices)
            codes[at:end] = bytes((STATUS_CODES[batch.status],)) * size
            self.open -= size
            if self.keep:
                worker = self._worker_number(batch.worker)
                self._values[at:end] = values
                self._times[2 * at : 2 * end : 2] = _doubles(batch.started)
                self._times[2 * at + 1 : 2 * end : 2] = _doubles(batch.finished)
                self._attempts[at:end] = array("I", (batch.attempt,)) * size
                self._workers[at:end] = array(self._workers.typecode, (worker,)) * size
                width = self.metric_width
                if width and batch.metric_width() == width:
                    assert batch.metrics is not None
                    self._metrics.put_rows(at, batch.metrics, batch.measured)
                if batch.extras:
                    extras = self._extras
                    for p, data in batch.extras.items():
                        extras[at + p] = data
            return None
        # Any other batch (a dead worker's requeued items, a list of indices) is rare:
        # it takes the per-outcome path, with its checks.
        for outcome in batch:
            broken = self.record(outcome)
            if broken is not None:
                return broken
        return None

    def _slots_of(self, indices: Sequence[int]) -> int | None:
        """Where ``indices`` start if they fill consecutive slots of a range, else ``None``."""
        first = self._first
        if first is None:
            return None
        at = indices[0] - first
        size = len(indices)
        if at < 0 or at + size > self._count:
            return None
        start = indices[0]
        wanted = range(start, start + size)
        if isinstance(indices, array) and indices.typecode == "q":
            return at if indices == array("q", wanted) else None
        if isinstance(indices, list):
            return at if indices == list(wanted) else None
        return None

    def _contract_breach(self, indices: Sequence[int]) -> str:
        """Why a run of requested ``indices`` cannot be recorded: one of them already is."""
        for index in indices:
            position = self.position(index)
            if position is not None and self._codes[position]:
                return f"reported index {index} twice"
        return "reported indices twice"

    def _worker_number(self, worker: str) -> int:
        known = self._worker_ids.get(worker)
        return known if known is not None else self._name(worker)

    def _name(self, worker: str) -> int:
        number = len(self.worker_names)
        if number > 0xFFFF and self._workers.typecode == "H":
            # More workers than two bytes can number (a long run on a big,
            # changing cluster): widen the column rather than lose names.
            self._workers = array("I", self._workers)
        self.worker_names.append(worker)
        self._worker_ids[worker] = number
        return number

    def is_open(self, index: int) -> bool:
        """Whether ``index`` (a requested one) has no outcome yet."""
        position = self.position(index)
        assert position is not None
        return not self._codes[position]

    def done(self, index: int) -> bool | None:
        """Whether ``index`` ended ``ok`` or ``skipped``; ``None`` if it was not requested."""
        position = self.position(index)
        if position is None:
            return None
        return self._codes[position] in _DONE_CODES

    def failure(self, index: int) -> Outcome | None:
        """The outcome of ``index`` if it failed, crashed or timed out."""
        if not self.keep:
            return self._failures.get(index)
        position = self.position(index)
        if position is None or not self._codes[position]:
            return None
        outcome = self.table(0.0)[position]
        return outcome if outcome.status.is_failure else None

    def reopen(self, indices: Iterator[int] | Sequence[int]) -> list[Outcome]:
        """Clear the slots of failed ``indices`` for another attempt; return what they held."""
        superseded = []
        for index in indices:
            previous = self.failure(index)
            if previous is None:
                continue
            position = self.position(index)
            assert position is not None
            superseded.append(previous)
            self._codes[position] = 0
            if self.keep:
                self._values[position] = None
                self._errors.pop(position, None)
                self._printed.pop(position, None)
                self._extras.pop(position, None)
                if self.metric_width:
                    self._metrics.drop(position)
            else:
                del self._failures[index]
            self.open += 1
        return superseded

    def missing(self) -> Iterator[int]:
        """The requested indices without an outcome, in requested order."""
        if not self.open:
            return iter(())
        codes = self._codes
        return (i for p, i in enumerate(self.indices) if not codes[p])

    def counts(self) -> Counter[Status]:
        """Outcomes per status so far."""
        found = Counter({s: self._codes.count(c) for s, c in STATUS_CODES.items()})
        return +found  # without the zero counts

    def table(self, when: float) -> OutcomeTable:
        """The kept outcomes, read-only; open slots read as ``cancelled`` at ``when``."""
        assert self.keep
        return OutcomeTable(
            self.indices,
            self._codes,
            self._values,
            self._times,
            self._attempts,
            self._workers,
            self.worker_names,
            self._errors,
            when,
            self._metrics if self.metric_width else None,
            self._printed,
            self._extras,
        )

    def outcomes(self, when: float) -> Sequence[Outcome]:
        """Every slot in requested order; open ones read as ``cancelled`` at time ``when``.

        A ledger that does not keep outcomes gives its failed ones, in requested order.
        """
        if not self.keep:
            return sorted(self._failures.values(), key=lambda o: self.position(o.index) or 0)
        return self.table(when)


def _broken_metrics(batch: Successes, size: int) -> str | None:
    """Why ``batch``'s metrics rows do not fit its ``size`` items, or ``None``."""
    metrics, positions = batch.metrics, batch.measured
    if not metrics:
        return None
    if positions is None:
        if len(metrics) % size:
            return (
                f"sent a Successes batch whose metrics do not split into one row per item "
                f"({len(metrics)} floats for {size} items, {batch.worker})"
            )
        return None
    rows = len(positions)
    if not rows or len(metrics) % rows:
        return (
            f"sent a Successes batch whose metrics do not split into one row per measured "
            f"position ({len(metrics)} floats for {rows} positions, {batch.worker})"
        )
    if not ascending_positions(positions, size):
        return (
            f"sent a Successes batch whose measured positions are not ascending positions "
            f"of its {size} items ({batch.worker})"
        )
    return None
