"""``RunStream.batches()``: a stream's outcomes in the batches they complete in, as columns."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path
from typing import Any

import pytest
from pipelines import Collect, FailAt, Flaky, Sleep, chatty

from curator import Outcome, OutcomeTable, Status, TaskFailedError, UsageError, run, stream
from curator.running import streaming
from curator.testing.probes import Numbers


def _fields(outcome: Outcome) -> tuple[Any, ...]:
    """What a stream says of an item, its clock readings and metric values aside."""
    error = outcome.error
    return (
        outcome.index,
        outcome.status,
        outcome.value,
        outcome.worker.split("-")[0],  # which thread took an item varies from run to run
        outcome.attempt,
        None if error is None else (error.type, error.message),
        outcome.output,
        outcome.extras,
        outcome.metrics is None,
        outcome.started <= outcome.finished,
    )


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_the_batches_hold_the_outcomes_the_stream_yields_one_by_one(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments: dict[str, Any] = {"backend": backend, "on_error": "continue", "reporter": None}
    one_by_one = sorted(map(_fields, stream(chatty(), **arguments)), key=lambda f: f[0])
    batches = list(stream(chatty(), **arguments).batches())
    assert batches
    assert all(isinstance(b, OutcomeTable) and len(b) for b in batches)
    in_batches = sorted((_fields(o) for b in batches for o in b), key=lambda f: f[0])
    assert in_batches == one_by_one
    assert [f[0] for f in one_by_one if f[1] is Status.FAILED] == [2]
    assert any(f[6] is not None for f in one_by_one)  # what the items printed came along


def test_a_batch_gives_its_indices_values_and_failures_from_its_columns() -> None:
    outcomes = stream(
        Numbers(30).write(FailAt({4, 17})), backend="thread-pool", jobs=3,
        on_error="continue", reporter=None,
    )  # fmt: skip
    indices: list[int] = []
    values: dict[int, Any] = {}
    failed: list[Outcome] = []
    for batch in outcomes.batches():
        assert batch.indices() == [o.index for o in batch]
        values.update(zip(batch.indices(), batch.values(), strict=True))
        indices += batch.indices()
        failed += batch.failures()
    assert sorted(indices) == list(range(30))  # each index exactly once
    assert values[5] == ["5"]
    assert values[4] is None
    assert sorted(o.index for o in failed) == [4, 17]
    assert all(o.status is Status.FAILED and "bad item" in o.error.message for o in failed)  # type: ignore[union-attr]
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == 28
    assert sorted(o.index for o in result.failures) == [4, 17]


def test_a_resume_hands_out_the_skipped_items_first_as_skipped(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(12).write(Flaky(str(tmp_path), {3, 8}, fail_times=1))
    run(pipeline, checkpoint=checkpoint, on_error="continue", reporter=None)
    batches = list(stream(pipeline, checkpoint=checkpoint, resume=True, reporter=None).batches())
    statuses = [(o.index, o.status) for b in batches for o in b]
    skipped = [i for i, s in statuses if s is Status.SKIPPED]
    assert sorted(skipped) == [0, 1, 2, 4, 5, 6, 7, 9, 10, 11]
    assert [s for _, s in statuses[: len(skipped)]] == [Status.SKIPPED] * len(skipped)
    assert sorted((i, s) for i, s in statuses if s is not Status.SKIPPED) == [
        (3, Status.OK),
        (8, Status.OK),
    ]


def test_the_failure_budget_is_raised_after_the_last_batch() -> None:
    tables: list[OutcomeTable] = []
    with pytest.raises(TaskFailedError) as info:
        tables.extend(stream(Numbers(20).write(FailAt({3})), reporter=None).batches())
    assert info.value.outcome.index == 3
    statuses = {o.index: o.status for b in tables for o in b}
    assert len(statuses) == 20
    assert statuses[3] is Status.FAILED
    assert statuses[19] is Status.CANCELLED


def test_leaving_the_batches_early_stops_the_run_and_records_what_finished(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(40).write(Sleep(0.01))
    with stream(pipeline, backend="thread-pool", jobs=2, checkpoint=checkpoint) as outcomes:
        first = next(iter(outcomes.batches()))
    assert len(first) >= 1
    result = outcomes.result
    assert result is not None
    assert len(first) <= result.count(Status.OK) < 40
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == result.count(Status.OK)


def test_a_stream_is_taken_one_way_only() -> None:
    pipeline = Numbers(5).write(Collect())
    ordered = stream(pipeline, ordered=True, reporter=None)
    with pytest.raises(UsageError, match="ordered stream"):
        ordered.batches()
    assert [o.index for o in ordered] == [0, 1, 2, 3, 4]  # the refusal left it whole

    iterated = stream(pipeline, reporter=None)
    next(iterated)
    with pytest.raises(UsageError, match="already being iterated"):
        iterated.batches()
    iterated.close()

    batched = stream(pipeline, reporter=None)
    tables = batched.batches()
    with pytest.raises(UsageError, match="already being taken in batches"):
        iter(batched)
    with pytest.raises(UsageError, match="already being taken in batches"):
        next(batched)
    with pytest.raises(UsageError, match="already being taken in batches"):
        batched.batches()
    assert sorted(i for table in tables for i in table.indices()) == [0, 1, 2, 3, 4]

    closed = stream(pipeline, reporter=None)
    closed.close()
    with pytest.raises(UsageError, match="this stream is closed"):
        closed.batches()
    with pytest.raises(UsageError, match="this stream is closed"):
        iter(closed)  # it gave nothing, silently
    with pytest.raises(UsageError, match="this stream is closed"):
        next(closed)


def test_a_stream_never_stepped_through_its_batches_runs_nothing(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(5).write(Collect())
    unused = stream(pipeline, checkpoint=checkpoint, reporter=None)
    unused.batches()
    unused.close()
    assert unused.result is None
    assert not checkpoint.exists()
    assert run(pipeline, checkpoint=checkpoint, reporter=None).ok


@pytest.mark.parametrize("taken", ["iterated", "in batches"])
def test_a_stream_dropped_before_its_first_step_leaves_no_checkpoint_behind(
    tmp_path: Path, taken: str
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(5).write(Collect())
    dropped = stream(pipeline, checkpoint=checkpoint, reporter=None)
    iterator = iter(dropped) if taken == "iterated" else dropped.batches()
    del dropped, iterator  # neither stepped nor closed
    gc.collect()
    assert list(tmp_path.iterdir()) == []  # no empty checkpoint, no lock
    assert run(pipeline, checkpoint=checkpoint, reporter=None).ok


def test_a_stream_whose_stream_object_is_dropped_still_runs_through_its_iterator(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    batches = stream(Numbers(7).write(Collect()), checkpoint=checkpoint, reporter=None).batches()
    gc.collect()  # the RunStream is gone; the iterator the caller holds is not
    assert sorted(i for table in batches for i in table.indices()) == list(range(7))
    assert checkpoint.exists()


def test_taking_a_stream_a_few_outcomes_at_a_time_keeps_nothing_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # islice() and next(iter(s)) call iter() each time: each call used to leave a
    # finalizer behind (about 300 bytes) until the run's generator died.
    registered: list[object] = []
    real = streaming._released_if_dropped
    monkeypatch.setattr(
        streaming, "_released_if_dropped", lambda *a: registered.append(a) or real(*a)
    )
    outcomes = stream(Numbers(2000).write(Collect()), reporter=None, metrics=False)
    taken = 0
    while chunk := list(itertools.islice(outcomes, 7)):
        taken += len(chunk)
    assert taken == 2000
    assert len(registered) == 1
