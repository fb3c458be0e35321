from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import pytest

from curator.model.captured import Captured
from curator.model.measures import Metrics
from curator.model.outcome import ErrorInfo, Outcome, Status
from curator.model.table import OutcomeTable
from curator.running.ledger import Ledger


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


def test_the_table_reads_like_a_list_of_the_outcomes() -> None:
    ledger = Ledger([4, 1, 7, 3])
    ok = Outcome(4, Status.OK, ["a"], None, "thread-1", 1.0, 3.0, 1)
    failed = Outcome(
        1, Status.FAILED, None, ErrorInfo("ValueError", "bad"), "thread-0", 1.0, 1.5, 2
    )
    slow = Outcome(7, Status.OK, ["c"], None, "thread-0", 2.0, 9.0, 1)
    for outcome in (ok, failed, slow):
        assert ledger.record(outcome) is None
    table = ledger.outcomes(10.0)
    cancelled = Outcome(3, Status.CANCELLED, started=10.0, finished=10.0)
    assert len(table) == 4
    assert table == [ok, failed, slow, cancelled]
    assert list(table) == [ok, failed, slow, cancelled]
    assert table[-1] == cancelled
    assert table[1:3] == [failed, slow]
    with pytest.raises(IndexError):
        table[4]
    assert isinstance(table, OutcomeTable)
    assert table.values() == [["a"], None, ["c"], None]
    assert table.failures() == [failed]
    assert table.slowest(2) == [slow, ok]
    assert ledger.counts() == {Status.OK: 2, Status.FAILED: 1}
    assert ledger.reopen([1, 4]) == [failed]  # only failures reopen
    assert ledger.is_open(1)
    assert table[1] == Outcome(1, Status.CANCELLED, started=10.0, finished=10.0)


@pytest.mark.parametrize("measured", [3, 300], ids=["few measured (sparse rows)", "all (dense)"])
def test_iterating_the_table_reads_each_outcome_as_indexing_does(measured: int) -> None:
    # Iteration builds the outcomes from whole columns, indexing one at a time: every
    # column must read the same both ways, whichever items have errors, output,
    # extras or metrics.
    count = 300
    ledger = Ledger(range(100, 100 + count), metric_width=6)
    recorded = []
    for i in range(count):
        failed = i % 7 == 3
        outcome = Outcome(
            100 + i,
            Status.FAILED if failed else Status.OK,
            None if failed else [f"out-{i}"],
            ErrorInfo("ValueError", f"bad {i}") if failed else None,
            f"process-{i % 5}",
            float(i),
            i + 0.5,
            1 + i % 3,
            Metrics((0.1, 0.2), 0.3, 1000 + i, i, None if i % 2 else 7)
            if i % 100 < measured
            else None,
            Captured(f"printed {i}\n") if i % 11 == 0 else None,
            {"feature": i} if i % 13 == 0 else None,
        )
        assert ledger.record(outcome) is None
        recorded.append(outcome)
    table = ledger.outcomes(0.0)
    assert list(table) == [table[p] for p in range(count)] == recorded
    assert sum(o.metrics is not None for o in table) == min(measured, 100) * 3


def test_a_kept_outcome_costs_far_less_than_an_outcome_object() -> None:
    count = 20_000
    values = [[f"{i}"] for i in range(count)]  # the sinks' values are not the ledger's cost
    tracemalloc.start()
    try:
        ledger = Ledger(range(count))
        for i in range(count):  # as a backend reports them: each Outcome goes once recorded
            ledger.record(Outcome(i, Status.OK, values[i], None, "process-0", i + 0.5, i + 0.75))
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # An Outcome object with its index and timestamps is about 176 bytes.
    assert kept / count < 48, f"{kept / count:.0f} bytes per kept outcome"
    last = Outcome(count - 1, Status.OK, [f"{count - 1}"], None, "process-0", count - 0.5)
    last.finished = count - 0.25
    assert ledger.outcomes(0.0)[count - 1] == last


def test_more_workers_than_two_bytes_can_number_keep_their_names() -> None:
    count = 70_000
    ledger = Ledger(range(count))
    for index in range(count):
        outcome = Outcome(index, Status.OK, [], None, f"worker-{index}", 1.0, 2.0)
        assert ledger.record(outcome) is None
    table = ledger.table(0.0)
    assert table[0].worker == "worker-0"
    assert table[count - 1].worker == f"worker-{count - 1}"
