"""The ledger: one slot per requested index, filled as outcomes arrive.

It answers "was this index requested, and is it still open?" in O(1) and keeps
outcomes in requested order without per-index sets or dicts when the request
is a ``range`` (the common "run everything" case), so a run of a million items
costs the parent little more than the outcomes themselves. A ledger that does
not keep outcomes (a streamed run) holds one byte per index, plus the failed
outcomes (retries and the result need them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from curator.outcome import Outcome, Status

_CODES = {status: code for code, status in enumerate(Status, 1)}


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
        "_codes",
        "_count",
        "_failures",
        "_first",
        "_outcomes",
        "_positions",
        "indices",
        "keep",
        "open",
    )

    def __init__(self, indices: Sequence[int], keep: bool = True) -> None:
        self.indices = indices
        self.keep = keep
        self._outcomes: list[Outcome | None] = [None] * len(indices) if keep else []
        self._codes = bytearray(0 if keep else len(indices))
        self._failures: dict[int, Outcome] = {}
        self._count = len(indices)
        # The "run everything" case (a range of step 1) needs only subtraction.
        self._first = indices.start if isinstance(indices, range) and indices.step == 1 else None
        self._positions: dict[int, int] | None = (
            None if isinstance(indices, range) else {i: p for p, i in enumerate(indices)}
        )
        self.open = len(indices)
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
        if self.keep:
            if self._outcomes[position] is not None:
                return f"reported index {outcome.index} twice"
            self._outcomes[position] = outcome
        else:
            if self._codes[position]:
                return f"reported index {outcome.index} twice"
            self._codes[position] = _CODES[outcome.status]
            if outcome.status.is_failure:
                self._failures[outcome.index] = outcome
        self.open -= 1
        return None

    def is_open(self, index: int) -> bool:
        """Whether ``index`` (a requested one) has no outcome yet."""
        position = self.position(index)
        assert position is not None
        if self.keep:
            return self._outcomes[position] is None
        return not self._codes[position]

    def failure(self, index: int) -> Outcome | None:
        """The outcome of ``index`` if it failed, crashed or timed out."""
        if not self.keep:
            return self._failures.get(index)
        position = self.position(index)
        outcome = None if position is None else self._outcomes[position]
        return outcome if outcome is not None and outcome.status.is_failure else None

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
            if self.keep:
                self._outcomes[position] = None
            else:
                self._codes[position] = 0
                del self._failures[index]
            self.open += 1
        return superseded

    def missing(self) -> Iterator[int]:
        """The requested indices without an outcome, in requested order."""
        if not self.open:
            return iter(())
        if not self.keep:
            codes = self._codes
            return (i for p, i in enumerate(self.indices) if not codes[p])
        return (i for i, o in zip(self.indices, self._outcomes, strict=True) if o is None)

    def counts(self) -> Counter[Status]:
        """Outcomes per status so far."""
        if not self.keep:
            found = Counter({s: self._codes.count(c) for s, c in _CODES.items()})
            return +found  # without the zero counts
        return Counter(o.status for o in self._outcomes if o is not None)

    def outcomes(self, when: float) -> list[Outcome]:
        """Every slot in requested order; open ones become ``cancelled`` at time ``when``.

        A ledger that does not keep outcomes gives its failed ones, in requested order.
        """
        if not self.keep:
            return sorted(self._failures.values(), key=lambda o: self.position(o.index) or 0)
        if not self.open:
            return list(self._outcomes)  # type: ignore[arg-type]  # no slot is None
        return [
            o if o is not None else Outcome(i, Status.CANCELLED, started=when, finished=when)
            for i, o in zip(self.indices, self._outcomes, strict=True)
        ]
