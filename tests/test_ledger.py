from __future__ import annotations

from collections.abc import Sequence

import pytest

from curator.ledger import Ledger
from curator.outcome import Outcome, Status


@pytest.mark.parametrize("indices", [range(10), range(3, 10), range(0, 10, 3), [7, 2, 9]])
def test_slots_follow_the_requested_order(indices: Sequence[int]) -> None:
    ledger = Ledger(indices)
    assert ledger.open == len(indices)
    for index in reversed(list(indices)):
        assert ledger.record(Outcome(index, Status.OK, value=[str(index)])) is None
    assert ledger.open == 0
    assert [o.index for o in ledger.outcomes(0.0)] == list(indices)
    assert list(ledger.missing()) == []


def test_contract_violations_are_named() -> None:
    ledger = Ledger(range(2, 8, 2))
    assert ledger.record(Outcome(3, Status.OK)) == "reported index 3, which was not requested"
    assert ledger.record(Outcome(8, Status.OK)) == "reported index 8, which was not requested"
    assert ledger.record(Outcome(4, Status.OK)) is None
    assert ledger.record(Outcome(4, Status.OK)) == "reported index 4 twice"
    assert list(ledger.missing()) == [2, 6]
    outcomes = ledger.outcomes(5.0)
    assert [o.status for o in outcomes] == [Status.CANCELLED, Status.OK, Status.CANCELLED]
    assert outcomes[0].started == outcomes[0].finished == 5.0
    assert Ledger([5, 1]).record(Outcome(2, Status.OK)) == (
        "reported index 2, which was not requested"
    )
