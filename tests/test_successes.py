"""``curator.Successes``: a backend's batch of ``ok`` outcomes kept as columns.

The run loop and the checkpoint store the columns without making an ``Outcome``
per item, unless someone reads them one by one (reporters, a stream): each of
those must still see every item, exactly as from a backend yielding outcomes,
and the checkpoint must read back the same either way.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from core_support import registry_with
from pipelines import Collect, FailAt

from curator import (
    Backend,
    BackendContractError,
    Capabilities,
    Event,
    Outcome,
    Sink,
    Status,
    Successes,
    Work,
    run,
    stream,
)
from curator.checkpoint.latest import StoredOutcome, read_latest
from curator.model.measures import Metrics
from curator.running.ledger import Ledger
from curator.testing.events import EventRecorder
from curator.testing.probes import Numbers


class Columns(Backend):
    """Runs in-process; yields each chunk's successes as one ``Successes``, failures as outcomes."""

    name = "columns"
    capabilities = Capabilities(parallel=True)
    chunk: ClassVar[int] = 7
    made: ClassVar[int] = 0  # Successes batches yielded

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        for start in range(0, len(indices), self.chunk):
            ok: list[int] = []
            began: list[float] = []
            ended: list[float] = []
            values: list[object] = []
            rows: list[float] = []
            singles: list[Event] = []  # failures, and items that printed (as a pool sends them)
            for index in indices[start : start + self.chunk]:
                started = time.time()
                good, payload, finished = work.run_index(index, started)
                measured = None if work.measured is None else Metrics.from_row(work.measured)
                if good and work.captured is None:
                    ok += [index]
                    began += [started]
                    ended += [finished]
                    values += [payload]
                    rows += work.measured or ()
                else:
                    status, value, error = (
                        (Status.OK, payload, None) if good else (Status.FAILED, None, payload)
                    )
                    single = Outcome(
                        index, status, value, error, "cols", started, finished,
                        metrics=measured, output=work.captured,
                    )  # fmt: skip
                    singles.append(single)
            type(self).made += 1
            columns = Successes(
                "cols", array("q", ok), array("d", began), ended, values, metrics=rows or None
            )
            yield [columns, *singles]


@pytest.fixture
def columns() -> dict[str, object]:
    Columns.made = 0
    return {"backend": "columns", "registry": registry_with(Columns), "reporter": None}


def test_a_run_keeps_every_value_time_worker_and_attempt(columns: dict[str, object]) -> None:
    result = run(Numbers(30).write(Collect()), **columns)  # type: ignore[arg-type]
    assert Columns.made == 5
    assert [o.index for o in result.outcomes] == list(range(30))
    assert all(o.status is Status.OK for o in result.outcomes)
    assert result.outputs[12] == ["12"]
    assert {o.worker for o in result.outcomes} == {"cols"}
    assert all(o.attempt == 1 and o.finished >= o.started > 0 for o in result.outcomes)


def test_failures_and_retries_mix_with_columns(columns: dict[str, object]) -> None:
    result = run(
        Numbers(30).write(FailAt({3, 17})),
        on_error="continue",
        retries=1,
        **columns,  # type: ignore[arg-type]
    )
    assert sorted(o.index for o in result.failures) == [3, 17]
    assert result.count(Status.OK) == 28
    assert {o.attempt for o in result.failures} == {2}
    assert len(result.retried) == 2


def test_reporters_the_checkpoint_and_a_stream_see_every_item(
    columns: dict[str, object], tmp_path: Path
) -> None:
    recorder = EventRecorder()
    store = tmp_path / "cp.sqlite"
    options = {**columns, "reporter": recorder}
    run(Numbers(20).write(Collect()), checkpoint=store, **options)  # type: ignore[arg-type]
    assert sorted(recorder.indices("task_finish")) == list(range(20))
    resumed = run(Numbers(20).write(Collect()), checkpoint=store, resume=True, **columns)  # type: ignore[arg-type]
    assert resumed.count(Status.SKIPPED) == 20
    assert resumed.outputs[19] == ["19"]
    seen = list(stream(Numbers(20).write(Collect()), **columns))  # type: ignore[arg-type]
    assert sorted(o.index for o in seen) == list(range(20))
    assert all(o.status is Status.OK and o.value == [str(o.index)] for o in seen)


class Twice(Backend):
    """Breaks the contract: reports a batch, then the same indices again."""

    name = "twice"
    capabilities = Capabilities()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        count = len(indices)
        batch = Successes("w", list(indices), [0.0] * count, [0.0] * count, [[]] * count)
        yield batch
        yield batch


class ClaimsSkips(Backend):
    """Breaks the contract: sends its items as a batch of ``skipped`` outcomes."""

    name = "claims-skips"
    capabilities = Capabilities()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        count = len(indices)
        yield Successes(
            "w", list(indices), [0.0] * count, [0.0] * count, [[]] * count,
            status=Status.SKIPPED,
        )  # fmt: skip


@pytest.mark.parametrize("listening", [False, True])
def test_a_backends_columns_of_another_status_than_ok_are_a_contract_error(
    listening: bool, tmp_path: Path
) -> None:
    """Also when a listener makes the loop read them one by one (found by a review)."""
    with pytest.raises(BackendContractError, match="a Successes batch of status 'skipped'"):
        run(
            Numbers(3).write(Collect()), backend="claims-skips",
            registry=registry_with(ClaimsSkips), checkpoint=tmp_path / "c.sqlite",
            reporter=EventRecorder() if listening else None,
        )  # fmt: skip


class RaggedMetrics(Backend):
    """Breaks the contract: one float too many in a batch's metrics."""

    name = "ragged-metrics"
    capabilities = Capabilities()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        count = len(indices)
        rows = [0.0] * (count * 6 + 1)
        yield Successes("w", list(indices), [0.0] * count, [0.0] * count, [[]] * count, 1, rows)


def test_metrics_that_do_not_split_into_rows_are_a_contract_error(tmp_path: Path) -> None:
    """Found by a review: stored whole, they made the checkpoint unreadable as damaged."""
    with pytest.raises(BackendContractError, match="metrics do not split into one row per item"):
        run(
            Numbers(3).write(Collect()), backend="ragged-metrics",
            registry=registry_with(RaggedMetrics), checkpoint=tmp_path / "c.sqlite",
            reporter=None,
        )  # fmt: skip


def test_an_index_reported_twice_in_columns_is_a_contract_error() -> None:
    with pytest.raises(BackendContractError, match="reported index 0 twice"):
        run(
            Numbers(4).write(Collect()),
            backend="twice",
            registry=registry_with(Twice),
            reporter=None,
        )


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize(
    "indices",
    [range(100), range(10, 110), list(range(100)), list(reversed(range(100))), range(0, 200, 2)],
)
def test_the_ledger_records_columns_like_outcomes(keep: bool, indices: Sequence[int]) -> None:
    """Consecutive runs take the slice path, others the loop: both must agree with record()."""
    ordered = list(indices)
    by_columns, by_outcomes = Ledger(indices, keep), Ledger(indices, keep)
    for start, end in ((0, 30), (30, 70), (70, 100)):  # chunks, as a worker reports them
        chunk = sorted(ordered[start:end])
        began = [float(i) for i in chunk]
        batch = Successes(
            "w1", chunk, began, [b + 0.5 for b in began], [[str(i)] for i in chunk], 2
        )
        assert by_columns.record_successes(batch) is None
        for outcome in batch:
            assert by_outcomes.record(outcome) is None
    assert by_columns.open == by_outcomes.open == 0
    assert by_columns.counts() == by_outcomes.counts()
    if keep:
        assert list(by_columns.table(0.0)) == list(by_outcomes.table(0.0))


def test_the_ledger_refuses_broken_columns() -> None:
    ledger = Ledger(range(10))
    assert ledger.record_successes(Successes("w", [1, 2], [0.0], [0.0, 0.0], [[], []])) == (
        "sent a Successes batch whose columns differ in length (w)"
    )
    assert ledger.record_successes(Successes("w", [9, 10], [0.0] * 2, [0.0] * 2, [[], []])) == (
        "reported index 10, which was not requested"
    )
    assert ledger.record_successes(Successes("w", [3, 4], [0.0] * 2, [0.0] * 2, [[], []])) is None
    assert ledger.record_successes(Successes("w", [2, 3], [0.0] * 2, [0.0] * 2, [[], []])) == (
        "reported index 3 twice"
    )
    assert ledger.open == 7  # 9 (before the bad index), 3 and 4


class Chatty(Sink[int]):
    """Every fifth item prints; 3 and 17 fail."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        values = [str(item) for item in items]
        if index % 5 == 0:
            print(f"item {index} talks")
        if index in (3, 17):
            raise ValueError(f"bad item {index}")
        return values


def test_the_checkpoint_stores_columns_exactly_as_it_stores_outcomes(
    columns: dict[str, object], tmp_path: Path
) -> None:
    """Columns go into the journal as columns; read back, nothing tells the two ways apart."""
    recorded = {}
    for way in ("columns", "one by one"):
        store = tmp_path / f"{way}.sqlite"
        # A listener of task_finish makes the loop hand the checkpoint one outcome per item.
        reporter = EventRecorder() if way == "one by one" else None
        Columns.made = 0
        result = run(
            Numbers(30).write(Chatty()), checkpoint=store, on_error="continue",
            metrics="all",  # every item's row stored, not a sample of quick ones
            **{**columns, "reporter": reporter},  # type: ignore[arg-type]
        )  # fmt: skip
        assert Columns.made == 5
        assert result.count(Status.OK) == 28
        recorded[way] = read_latest(store)
        resumed = run(
            Numbers(30).write(Chatty()), checkpoint=store, resume=True, on_error="continue",
            **columns,  # type: ignore[arg-type]
        )  # fmt: skip
        assert resumed.count(Status.SKIPPED) == 28
        assert [resumed.outputs[i] for i in (0, 1, 29)] == [["0"], ["1"], ["29"]]

    def essence(record: StoredOutcome) -> tuple[object, ...]:
        error = record.error
        metrics = record.metrics
        return (
            record.index, record.status, record.worker, record.attempt,
            None if error is None else (error.type, error.message),
            None if record.output is None else record.output.text,
            None if metrics is None else len(metrics.stages),
            record.started <= record.finished,
        )  # fmt: skip

    columns_way = {i: essence(r) for i, r in recorded["columns"].items()}
    assert columns_way == {i: essence(r) for i, r in recorded["one by one"].items()}
    assert sorted(columns_way) == list(range(30))
    assert columns_way[10][5] == "item 10 talks\n"
    assert columns_way[3][4] == ("ValueError", "bad item 3")
    assert all(essence[6] == 2 for essence in columns_way.values()), "metrics per stage"


def test_a_resume_skips_in_columns_and_keeps_each_items_record(
    columns: dict[str, object], tmp_path: Path
) -> None:
    """Skipped items reach the run's table as columns, each with its recorded fields."""
    store = tmp_path / "cp.sqlite"
    pipeline = Numbers(40).write(Flaky({5, 23}, str(tmp_path)))
    first = run(pipeline, checkpoint=store, retries=1, **columns)  # type: ignore[arg-type]
    assert first.ok
    wanted = sorted({*range(12), *range(20, 40, 3), 39})
    resumed = run(
        pipeline, checkpoint=store, resume=True, indices=wanted, **columns,  # type: ignore[arg-type]
    )  # fmt: skip
    assert resumed.count(Status.SKIPPED) == len(wanted)
    now = {outcome.index: outcome for outcome in resumed.outcomes}
    assert sorted(now) == wanted
    for index in wanted:
        was = first.outcomes[index]
        assert now[index].status is Status.SKIPPED
        assert (now[index].value, now[index].worker, now[index].attempt) == (
            was.value, was.worker, was.attempt,
        ), index  # fmt: skip
        assert (now[index].started, now[index].finished) == (was.started, was.finished)
    assert now[23].attempt == 2  # recorded on its retry


class Flaky(Sink[int]):
    """Fails the first attempt of the items in ``flaky`` (a marker file in ``folder`` each)."""

    def __init__(self, flaky: set[int], folder: str) -> None:
        self.flaky = flaky
        self.folder = folder

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        values = [str(item) for item in items]
        marker = Path(self.folder, f"tried-{index}")
        if index in self.flaky and not marker.exists():
            marker.touch()
            raise ValueError(f"first try of {index}")
        return values
