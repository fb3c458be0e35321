"""The ledger: one slot per requested index, filled as outcomes arrive.

It answers "was this index requested, and is it still open?" in O(1) and keeps
outcomes in requested order without per-index sets or dicts when the request
is a ``range`` (the common "run everything" case), so a run of a million items
costs the parent little more than the outcomes themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from curator.outcome import Outcome, Status


class Ledger:
    """Outcome slots for ``indices``, in that order.

    Parameters
    ----------
    indices
        Distinct, valid indices; a ``range`` needs no lookup table.
    """

    __slots__ = ("_outcomes", "_positions", "indices", "open")

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = indices
        self._outcomes: list[Outcome | None] = [None] * len(indices)
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
            return position if 0 <= position < len(self._outcomes) else None
        return span.index(index) if index in span else None

    def record(self, outcome: Outcome) -> str | None:
        """Store ``outcome``; return why it breaks the backend contract, or ``None``."""
        position = self.position(outcome.index)
        if position is None:
            return f"reported index {outcome.index}, which was not requested"
        if self._outcomes[position] is not None:
            return f"reported index {outcome.index} twice"
        self._outcomes[position] = outcome
        self.open -= 1
        return None

    def get(self, index: int) -> Outcome | None:
        """The outcome recorded for ``index`` (a requested one), if any."""
        position = self.position(index)
        return None if position is None else self._outcomes[position]

    def reopen(self, indices: Iterator[int] | Sequence[int]) -> list[Outcome]:
        """Clear the slots of ``indices`` for another attempt; return what they held."""
        superseded = []
        for index in indices:
            position = self.position(index)
            assert position is not None
            previous = self._outcomes[position]
            if previous is not None:
                superseded.append(previous)
                self._outcomes[position] = None
                self.open += 1
        return superseded

    def missing(self) -> Iterator[int]:
        """The requested indices without an outcome, in requested order."""
        return (i for i, o in zip(self.indices, self._outcomes, strict=True) if o is None)

    def counts(self) -> Counter[Status]:
        """Outcomes per status so far."""
        return Counter(o.status for o in self._outcomes if o is not None)

    def outcomes(self, when: float) -> list[Outcome]:
        """Every slot in requested order; open ones become ``cancelled`` at time ``when``."""
        return [
            o if o is not None else Outcome(i, Status.CANCELLED, started=when, finished=when)
            for i, o in zip(self.indices, self._outcomes, strict=True)
        ]
