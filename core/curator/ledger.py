"""The ledger: one slot per requested index, filled as outcomes arrive.

It answers "was this index requested, and is it still open?" in O(1) and keeps
outcomes in requested order without per-index sets or dicts when the request
is a ``range`` (the common "run everything" case).

Outcomes are kept in columns, not as objects: a status byte, the value, two
timestamps, the attempt and the worker per slot, and the errors of the few
that have one. That is about 30 bytes per item besides the value, where an
``Outcome`` with its index and timestamps costs 176, so a run of a million
items costs the parent little more than what the sinks returned. The
:class:`~curator.table.OutcomeTable` of :meth:`Ledger.outcomes` builds each
``Outcome`` when it is read. A ledger that does not keep outcomes (a streamed
run) holds the status bytes and the failed outcomes only (retries and the
result need them).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from curator.outcome import ErrorInfo, Outcome, Status
from curator.table import STATUS_CODES, OutcomeTable


class Ledger:
    """Outcome slots for ``indices``, in that order.

    Parameters
    ----------
    indices
        Distinct, valid indices; a ``range`` needs no lookup table.
    keep
        Keep every outcome (``curator.run``); otherwise only each slot's status
        and the failed outcomes (``curator.stream``).
    """

    __slots__ = (
        "_attempts",
        "_codes",
        "_count",
        "_errors",
        "_failures",
        "_first",
        "_positions",
        "_times",
        "_values",
        "_worker_ids",
        "_workers",
        "indices",
        "keep",
        "open",
        "worker_names",
    )

    def __init__(self, indices: Sequence[int], keep: bool = True) -> None:
        self.indices = indices
        self.keep = keep
        count = len(indices)
        kept = count if keep else 0
        self._count = count
        self._codes = bytearray(count)
        self._values: list[Any] = [None] * kept
        self._times = array("d", bytes(16 * kept))  # started, finished per slot
        self._attempts = array("I", bytes(4 * kept))
        self._workers = array("H", bytes(2 * kept))
        self.worker_names: list[str] = [""]
        self._worker_ids: dict[str, int] = {"": 0}
        self._errors: dict[int, ErrorInfo] = {}  # by position
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
        return None

    def _name(self, worker: str) -> int:
        number = len(self.worker_names)
        if number > 0xFFFF:  # more workers than the column holds: keep the name out
            return 0
        self.worker_names.append(worker)
        self._worker_ids[worker] = number
        return number

    def is_open(self, index: int) -> bool:
        """Whether ``index`` (a requested one) has no outcome yet."""
        position = self.position(index)
        assert position is not None
        return not self._codes[position]

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
        )

    def outcomes(self, when: float) -> Sequence[Outcome]:
        """Every slot in requested order; open ones read as ``cancelled`` at time ``when``.

        A ledger that does not keep outcomes gives its failed ones, in requested order.
        """
        if not self.keep:
            return sorted(self._failures.values(), key=lambda o: self.position(o.index) or 0)
        return self.table(when)
