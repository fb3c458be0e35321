"""Per-item metrics: stage attribution, CPU, GPU (a fake torch), storage, events, summaries."""

from __future__ import annotations

import io
import json
import math
import sqlite3
import sys
import time
import types
from array import array
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import curator.observing.metrics
from curator import ErrorInfo, Metrics, Outcome, Pipeline, Sink, Source, Status, run
from curator.checkpoint.store import read_latest
from curator.model.measures import stage_names, summarize, summarize_columns
from curator.observing.reporters.summary import format_summary

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "events.schema.json").read_text())


class Clock:
    """A clock that moves only when a stage says it worked: exact stage times."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(curator.observing.metrics, "_clock", fake)
    return fake


class EagerSource(Source[int]):
    """Opens a file in ``__getitem__`` (1 s), then yields 3 items (2 s each)."""

    def __init__(self, clock: Clock, as_list: bool = False) -> None:
        self.clock = clock
        self.as_list = as_list

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> Any:
        self.clock.now += 1
        if self.as_list:
            return [index] * 3
        return self._items(index)

    def _items(self, index: int) -> Iterator[int]:
        for _ in range(3):
            self.clock.now += 2
            yield index


class Lazy:
    """A filter that spends ``cost`` per item, lazily; fails on ``fail_on``."""

    def __init__(self, clock: Clock, cost: float, fail_on: int | None = None) -> None:
        self.clock = clock
        self.cost = cost
        self.fail_on = fail_on

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        for item in items:
            self.clock.now += self.cost
            if item == self.fail_on:
                raise ValueError(f"bad item {item}")
            yield item


class Eager:
    """A filter that reads everything in its call (10 per item) and returns a list."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self, items: Iterator[int]) -> list[int]:
        out = []
        for item in items:
            self.clock.now += 10
            out.append(item)
        return out


class Write(Sink[int]):
    """Spends 100 per item and 1000 to close its file."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        count = 0
        for _ in items:
            self.clock.now += 100
            count += 1
        self.clock.now += 1000
        return [f"{index}:{count}"]


def test_each_stage_is_charged_its_own_time_only(clock: Clock) -> None:
    pipeline = Pipeline(EagerSource(clock)).filter(Lazy(clock, 10)).write(Write(clock))
    result = run(pipeline, reporter=None)
    assert result.run.stages == ("EagerSource (source)", "Lazy", "Write (sink)")
    for outcome in result.outcomes:
        assert outcome.metrics is not None
        assert outcome.metrics.stages == (7.0, 30.0, 1300.0)


def test_a_stage_that_consumes_in_its_call_and_returns_a_list_is_charged_right(
    clock: Clock,
) -> None:
    pipeline = Pipeline(EagerSource(clock)).filter(Eager(clock)).write(Write(clock))
    result = run(pipeline, reporter=None)
    assert result.outputs == [[f"{i}:3"] for i in range(4)]
    assert result.outcomes[0].metrics is not None
    assert result.outcomes[0].metrics.stages == (7.0, 30.0, 1300.0)


def test_a_list_from_the_source_reaches_the_next_stage_as_that_list(clock: Clock) -> None:
    seen: list[type] = []

    def look(items: Any) -> Any:
        seen.append(type(items))
        return items

    pipeline = Pipeline(EagerSource(clock, as_list=True)).filter(look).write(Write(clock))
    result = run(pipeline, reporter=None)
    assert seen == [list] * 4  # measuring never changes what a stage receives
    assert result.outcomes[0].metrics is not None
    assert result.outcomes[0].metrics.stages == (1.0, 0.0, 1300.0)


def test_a_failed_item_has_the_metrics_of_what_ran_before_it_failed(clock: Clock) -> None:
    pipeline = Pipeline(EagerSource(clock)).filter(Lazy(clock, 10, fail_on=2)).write(Write(clock))
    result = run(pipeline, reporter=None, on_error="continue")
    failed = result.outcomes[2]
    assert failed.status is Status.FAILED
    assert failed.metrics is not None
    # The source yielded one item, the filter took it and raised, the sink wrote nothing.
    assert failed.metrics.stages == (3.0, 10.0, 0.0)


class Burn(Sink[int]):
    """Item 0 burns 0.2 s of CPU, item 1 sleeps 0.2 s."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index == 0:
            end = time.thread_time() + 0.2
            while time.thread_time() < end:
                pass
        else:
            time.sleep(0.2)
        return []


class Two(Source[int]):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_cpu_time_is_the_items_own(backend: str) -> None:
    result = run(Pipeline(Two()).write(Burn()), backend=backend, jobs=None, reporter=None)
    busy, idle = (o.metrics for o in result.outcomes)
    assert busy is not None
    assert idle is not None
    assert busy.cpu >= 0.2
    assert idle.cpu < 0.1  # slept: the thread's CPU clock hardly moved


class FakeCuda:
    """The part of ``torch.cuda`` the meter uses; ``allocated`` is what an item makes it see."""

    def __init__(self) -> None:
        self.peak = 0
        self.resets = 0

    def is_initialized(self) -> bool:
        return True

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1
        self.peak = 0

    def max_memory_allocated(self) -> int:
        return self.peak


class UsesGpu(Sink[int]):
    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        sys.modules["torch"].cuda.peak = (index + 1) * 1_000_000  # type: ignore[attr-defined]
        return []


def test_gpu_peak_is_read_when_torch_is_already_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("torch")
    fake.cuda = FakeCuda()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    result = run(Pipeline(Two()).write(UsesGpu()), reporter=None)
    assert [o.metrics.gpu_peak for o in result.outcomes] == [1_000_000, 2_000_000]  # type: ignore[union-attr]
    assert fake.cuda.resets == 2  # type: ignore[attr-defined]  # once per item, before it


class Quiet(Sink[int]):
    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return [str(i) for i in items]


def test_no_gpu_library_in_use_means_no_gpu_figure_and_no_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    result = run(Pipeline(Two()).write(Quiet()), reporter=None)
    assert all(o.metrics is not None and o.metrics.gpu_peak is None for o in result.outcomes)
    assert "torch" not in sys.modules


def test_metrics_off_measures_nothing() -> None:
    result = run(Pipeline(Two()).write(Quiet()), reporter=None, metrics=False)
    assert [o.metrics for o in result.outcomes] == [None, None]
    assert result.stage_summary() == []
    assert result.summary()["stages"] == []
    assert "time per stage" not in format_summary(result)


def test_stage_summary_totals_means_and_nearest_rank_percentiles() -> None:
    names = ("S (source)", "W (sink)")
    rows = [(0.5, float(s), 0.0, 0.0, 0.0, math.nan) for s in range(1, 21)]
    rows.append((math.nan,) * 6)  # an item without metrics counts nowhere
    source, sink = summarize(names, rows)
    assert (sink.items, sink.total, sink.mean, sink.p50, sink.p95, sink.max) == (
        20, 210.0, 10.5, 10.0, 19.0, 20.0,
    )  # fmt: skip
    assert (source.items, source.total, source.max) == (20, 10.0, 0.5)


@pytest.mark.parametrize("rows", [None, [0, 3, 4, 7, 20, 21, 9]])
def test_the_column_summary_is_the_row_summary(rows: list[int] | None) -> None:
    """What a run's result and the report compute in C, per stage column, from the flat rows."""
    names = ("S (source)", "F", "W (sink)")
    table = [(0.1 * i, float(i % 7), 2.0**-i, 0.0, 0.0, 0.0, math.nan) for i in range(20)]
    table[5] = (math.nan,) * 7  # not measured: counts nowhere
    table += [(math.nan,) * 7, (9.0, 9.0, 9.0, 1.0, 0.0, 0.0, math.nan)]
    flat = array("d", [value for row in table for value in row])
    chosen = table if rows is None else [table[r] for r in rows]
    expected = summarize(names, chosen)
    assert summarize_columns(names, flat, 7, rows) == expected
    assert [s.items for s in expected] == ([20] * 3 if rows is None else [6] * 3)
    assert summarize_columns(names, array("d"), 0) == summarize(names, [])


def test_the_summary_says_where_the_time_went(clock: Clock) -> None:
    pipeline = Pipeline(EagerSource(clock)).filter(Lazy(clock, 10)).write(Write(clock))
    result = run(pipeline, reporter=None)
    line = format_summary(result).splitlines()[1]
    assert line == (
        "  time per stage: EagerSource (source) 28.00 s (1%), Lazy 120.00 s (2%), "
        "Write (sink) 5200.00 s (97%)"
    )
    stages = result.summary()["stages"]
    assert [s["stage"] for s in stages] == list(result.run.stages)
    assert [s["total"] for s in stages] == [28.0, 120.0, 5200.0]


def test_stage_names_are_unique_and_say_source_and_sink() -> None:
    def clean(items: Iterator[int]) -> Iterator[int]:
        return items

    pipeline = Pipeline(Two()).filter(clean).filter(clean).write(Quiet())
    assert stage_names(pipeline) == (
        "Two (source)",
        "test_stage_names_are_unique_and_say_source_and_sink.<locals>.clean",
        "test_stage_names_are_unique_and_say_source_and_sink.<locals>.clean #2",
        "Quiet (sink)",
    )


def test_outcome_json_codec_round_trips_every_field() -> None:
    metrics = Metrics((0.25, 1.5), 0.75, 1 << 30, 1 << 20, None)
    outcomes = [
        Outcome(3, Status.OK, ["a.h5"], None, "process-1", 10.0, 12.5, 2, metrics),
        Outcome(
            4,
            Status.CRASHED,
            error=ErrorInfo("WorkerCrash", "killed", "", -9),
            worker="process-0",
            started=1.0,
            finished=2.0,
        ),
        Outcome(
            5,
            Status.FAILED,
            error=ErrorInfo("ValueError", "bad", "Traceback ..."),
            metrics=Metrics((0.0, 0.0), 0.0, 5, 0, 123),
        ),
    ]
    for outcome in outcomes:
        text = json.dumps(outcome.to_json())
        assert Outcome.from_json(json.loads(text)) == outcome
    # Errors as checkpoints of earlier versions stored them.
    assert ErrorInfo.from_json(["T", "m", "tb", 3]) == ErrorInfo("T", "m", "tb", 3)


def test_metrics_rows_round_trip_and_a_row_of_no_item_is_none() -> None:
    metrics = Metrics((1.0, 2.0, 3.0), 0.5, 4096, 0, 77)
    assert Metrics.from_row(metrics.row()) == metrics
    assert Metrics.from_row((math.nan,) * 7) is None


def test_metrics_go_into_the_checkpoint_and_come_back(tmp_path: Path, clock: Clock) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Pipeline(EagerSource(clock)).filter(Lazy(clock, 10, fail_on=3)).write(Write(clock))
    result = run(pipeline, reporter=None, checkpoint=checkpoint, on_error="continue")
    stored = read_latest(checkpoint)
    assert {i: s.metrics for i, s in stored.items()} == {
        o.index: o.metrics for o in result.outcomes
    }
    assert read_latest(str(checkpoint)) == stored  # as the user guide reads it
    assert stored[0].metrics is not None
    assert stored[0].metrics.stages == (7.0, 30.0, 1300.0)
    assert stored[3].status == "failed"
    assert stored[3].metrics is not None


def test_a_checkpoint_from_before_metrics_reads_and_resumes(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Pipeline(Two()).write(Quiet())
    run(pipeline, reporter=None, checkpoint=checkpoint, indices=[0])
    with closing(sqlite3.connect(checkpoint)) as db, db:
        db.execute("ALTER TABLE journal DROP COLUMN metrics")  # as written before the column
    assert read_latest(checkpoint)[0].metrics is None
    resumed = run(pipeline, reporter=None, checkpoint=checkpoint, resume=True)
    assert [o.status for o in resumed.outcomes] == [Status.SKIPPED, Status.OK]
    assert read_latest(checkpoint)[1].metrics is not None


def test_json_events_carry_stage_names_and_metrics_and_match_the_schema(clock: Clock) -> None:
    stream = io.StringIO()
    pipeline = Pipeline(EagerSource(clock)).filter(Lazy(clock, 10)).write(Write(clock))
    run(pipeline, reporter="json", reporter_options={"json": {"stream": stream}})
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    for event in events:
        jsonschema.validate(event, SCHEMA)
    start, *tasks, finish = events
    assert start["schema"] == 4
    assert start["stages"] == ["EagerSource (source)", "Lazy", "Write (sink)"]
    finishes = [e for e in tasks if e["event"] == "task_finish"]
    assert [e["metrics"]["stages"] for e in finishes] == [[7.0, 30.0, 1300.0]] * 4
    assert Outcome.from_json(finishes[0]).metrics == Metrics(
        (7.0, 30.0, 1300.0),
        finishes[0]["metrics"]["cpu"],
        finishes[0]["metrics"]["rss_peak"],
        finishes[0]["metrics"]["rss_growth"],
    )
    assert [s["total"] for s in finish["stages"]] == [28.0, 120.0, 5200.0]
