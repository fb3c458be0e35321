"""The value classes every worker imports behave as the dataclasses they replaced."""

from __future__ import annotations

import copy
import pickle
from array import array
from typing import Any

import pytest

from curator import Captured, ErrorInfo, Metrics, Outcome, Status, Successes, TaskStart, WorkerInfo
from curator.model.measures import StageSummary
from curator.model.plan import StagePlan
from curator.model.record import FrozenRecord, Record

EXAMPLES: list[Record] = [
    Captured("printed", 3),
    Metrics((0.5, 0.25), 0.1, 1 << 20, 4096, None),
    StageSummary("Source", 3, 1.5, 0.5, 0.5, 0.9, 1.0),
    ErrorInfo("ValueError", "bad", "Traceback ...", None),
    TaskStart(4, "process-1", 12.5, 2),
    Outcome(4, Status.OK, ["out"], None, "process-1", 1.0, 2.0, 1, None, Captured("x"), {"a": 1}),
    Successes("thread-0", [1, 2], [1.0, 2.0], [1.5, 2.5], [None, None], 1, None, Status.OK),
    StagePlan((), (), (), (), False, False),
    WorkerInfo(0, "sequential", 1, 123, "host"),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_a_record_pickles_copies_and_compares_by_its_fields(record: Record) -> None:
    again = pickle.loads(pickle.dumps(record))
    assert again == record
    assert again is not record
    assert copy.copy(record) == record
    assert copy.deepcopy(record) == record
    assert (record != again) is False
    fields = record._fields
    assert fields
    assert set(fields) == set(type(record).__slots__)
    text = repr(record)
    assert text.startswith(f"{type(record).__qualname__}(")
    assert f"{fields[0]}=" in text
    # A record equals only a record of its class with the same fields.
    assert record != tuple(getattr(record, name) for name in fields)
    changed = record.replace(**{fields[0]: "other"})
    assert type(changed) is type(record)
    assert changed != record
    assert getattr(changed, fields[0]) == "other"
    assert getattr(record, fields[0]) != "other"
    with pytest.raises(TypeError):
        record.replace(no_such_field=1)


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_a_frozen_record_hashes_and_refuses_changes_a_mutable_one_does_not_hash(
    record: Record,
) -> None:
    name = record._fields[0]
    if isinstance(record, FrozenRecord):
        assert hash(record) == hash(pickle.loads(pickle.dumps(record)))
        with pytest.raises(AttributeError, match="cannot assign"):
            setattr(record, name, 1)
        with pytest.raises(AttributeError, match="cannot delete"):
            delattr(record, name)
    else:
        with pytest.raises(TypeError, match="unhashable"):
            hash(record)
        mutable: Any = copy.copy(record)
        setattr(mutable, name, 7)
        assert getattr(mutable, name) == 7


def test_defaults_are_those_of_the_fields() -> None:
    outcome = Outcome(3, Status.FAILED)
    assert (outcome.value, outcome.error, outcome.worker, outcome.attempt) == (None, None, "", 1)
    assert (outcome.metrics, outcome.output, outcome.extras) == (None, None, None)
    assert Captured("x").dropped == 0
    assert Metrics((), 0.0, 0, 0).gpu_peak is None
    worker = WorkerInfo(1, "process-pool", 2)
    assert worker.pid > 0
    assert worker.host
    with pytest.raises(AttributeError):
        Outcome(1, Status.OK).no_such_field = 1  # type: ignore[attr-defined]


class _Written:
    """Pickles as the dataclass ``cls`` did: a bare instance, then its state."""

    def __init__(self, cls: type, state: object) -> None:
        self.cls, self.state = cls, state

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        return (object.__new__, (self.cls,), self.state)


@pytest.mark.parametrize(
    ("written", "expected"),
    [  # frozen and slotted: a list; frozen: __dict__; slotted: (None, slots)
        (_Written(Metrics, [(0.5,), 0.1, 2, 3, None]), Metrics((0.5,), 0.1, 2, 3)),
        (_Written(Captured, ["text", 2]), Captured("text", 2)),
        (
            _Written(
                StageSummary,
                {
                    "stage": "S",
                    "items": 1,
                    "total": 1.0,
                    "mean": 1.0,
                    "p50": 1.0,
                    "p95": 1.0,
                    "max": 1.0,
                },
            ),
            StageSummary("S", 1, 1.0, 1.0, 1.0, 1.0, 1.0),
        ),
        (
            _Written(WorkerInfo, {"slot": 0, "backend": "b", "jobs": 1, "pid": 5, "host": "h"}),
            WorkerInfo(0, "b", 1, 5, "h"),
        ),
        (
            _Written(
                ErrorInfo, (None, {"type": "E", "message": "m", "traceback": "", "exit_code": None})
            ),
            ErrorInfo("E", "m"),
        ),
    ],
    ids=["Metrics", "Captured", "StageSummary", "WorkerInfo", "ErrorInfo"],
)
def test_pickles_written_by_the_dataclasses_before_still_load(
    written: _Written, expected: Record
) -> None:
    loaded = pickle.loads(pickle.dumps(written))
    assert loaded == expected
    assert type(loaded) is type(expected)


def test_records_match_by_position_as_dataclasses_did() -> None:
    match Outcome(3, Status.OK, ["x"]):
        case Outcome(index, Status.OK, value):
            assert (index, value) == (3, ["x"])
        case _:
            pytest.fail("an ok outcome did not match")


def test_metrics_read_twice_with_unmeasured_readings_compare_and_hash_equal() -> None:
    # A NaN reading means "not measured" (a long item that ran bare: no split by stage,
    # its CPU read by another thread). Each read of a column makes new NaN floats, and
    # float NaN never equals itself: the same outcome read twice compared unequal.
    nan = float("nan")
    row = array("d", [nan, nan, nan, 4096.0, 0.0, nan])  # 2 stages, cpu, peak, growth, gpu
    first, again = Metrics.from_row(row), Metrics.from_row(row)
    assert first is not None
    assert first.stages[0] is not again.stages[0]  # type: ignore[union-attr]
    assert first == again
    assert hash(first) == hash(again)
    assert len({first, again}) == 1
    assert Outcome(3, Status.FAILED, metrics=first) == Outcome(3, Status.FAILED, metrics=again)
    assert first != Metrics((nan, 0.5), nan, 4096, 0)
    assert first != Metrics((nan, nan), nan, 8192, 0)
    assert Metrics((0.25,), 0.5, 1, 0) == Metrics((0.25,), 0.5, 1, 0)
