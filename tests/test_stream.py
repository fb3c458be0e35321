"""``curator.stream``: outcomes as they complete; run()'s validation, policies and checkpoint."""

from __future__ import annotations

import gc
import itertools
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipelines import Collect, FailAt, Flaky, Sleep

import curator
from curator import Sink, Status, TaskFailedError, UsageError, run, stream
from curator.backends.thread_pool import AHEAD_PER_THREAD
from curator.checkpoint.catalog import read as report
from curator.testing.events import EventRecorder
from curator.testing.probes import Numbers, probe

BACKENDS = ["sequential", "thread-pool"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_index_comes_out_once_and_the_result_counts_them(backend: str) -> None:
    outcomes = stream(Numbers(50).write(Collect()), backend=backend, reporter=None)
    seen = list(outcomes)
    assert sorted(o.index for o in seen) == list(range(50))
    assert all(o.status is Status.OK and o.value == [str(o.index)] for o in seen)
    result = outcomes.result
    assert result is not None
    assert result.ok
    assert result.count(Status.OK) == 50
    assert result.ran == 50
    assert result.outcomes == []  # a stream keeps only failures


def test_the_ordered_variant_yields_in_requested_order() -> None:
    indices = [9, 3, 7, 0, 5, 1, 8, 2, 6, 4]
    outcomes = stream(
        Numbers(10).write(FailAt({7}, seconds=0.002)),
        backend="thread-pool",
        jobs=4,
        indices=indices,
        ordered=True,
        on_error="continue",
        reporter=None,
    )
    assert [o.index for o in outcomes] == indices
    assert outcomes.result is not None
    assert [o.index for o in outcomes.result.failures] == [7]


def test_bad_input_is_refused_before_anything_starts() -> None:
    with pytest.raises(UsageError, match="nosuch"):
        stream(Numbers(3).write(Collect()), backend="nosuch")
    with pytest.raises(UsageError):
        stream(Numbers(3).write(Collect()), indices=[5])


@pytest.mark.parametrize(
    ("argument", "value"), [("resume", "false"), ("capture", "no"), ("ordered", 1)]
)
def test_a_switch_that_is_not_a_bool_is_refused(argument: str, value: object) -> None:
    # resume="false" is truthy: it resumed a checkpoint the caller asked not to.
    with pytest.raises(UsageError, match=f"{argument} must be True or False, got {value!r}"):
        stream(Numbers(3).write(Collect()), reporter=None, **{argument: value})  # type: ignore[arg-type]
    if argument != "ordered":
        with pytest.raises(UsageError, match=f"{argument} must be True or False"):
            run(Numbers(3).write(Collect()), reporter=None, **{argument: value})  # type: ignore[arg-type]


def test_a_failure_is_final_only_after_its_retries(tmp_path: Path) -> None:
    outcomes = list(
        stream(
            Numbers(6).write(Flaky(str(tmp_path), {1, 4}, fail_times=1)),
            backend="thread-pool",
            jobs=2,
            retries=1,
            reporter=None,
        )
    )
    assert sorted(o.index for o in outcomes) == list(range(6))
    assert all(o.status is Status.OK for o in outcomes)
    assert {o.index: o.attempt for o in outcomes if o.attempt > 1} == {1: 2, 4: 2}


def test_the_failure_budget_raises_after_the_last_outcome() -> None:
    outcomes = stream(Numbers(20).write(FailAt({3})), indices=range(20), reporter=None)
    seen: list[curator.Outcome] = []
    with pytest.raises(TaskFailedError) as info:
        seen.extend(outcomes)
    assert info.value.outcome.index == 3
    statuses = {o.index: o.status for o in seen}
    assert statuses[3] is Status.FAILED
    assert statuses[19] is Status.CANCELLED  # never ran: still one outcome per index
    assert len(seen) == 20


def test_checkpoint_and_resume_skip_what_a_stream_finished(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(8).write(Flaky(str(tmp_path), {5}, fail_times=1))
    first = list(stream(pipeline, checkpoint=checkpoint, on_error="continue", reporter=None))
    assert sum(o.ok for o in first) == 7
    again = stream(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    statuses = {o.index: o.status for o in again}
    assert [i for i, s in statuses.items() if s is not Status.SKIPPED] == [5]
    assert statuses[5] is Status.OK


def test_reporters_see_every_item() -> None:
    recorder = EventRecorder()
    list(stream(Numbers(12).write(Collect()), backend="thread-pool", jobs=3, reporter=recorder))
    finished = [e.index for e in recorder.events if e.hook == "task_finish"]
    assert sorted(finished) == list(range(12))  # type: ignore[type-var]
    assert recorder.events[-1].hook == "run_finish"


def test_closing_the_stream_early_stops_the_run_and_records_what_finished(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(40).write(Sleep(0.01))
    with stream(pipeline, backend="thread-pool", jobs=2, checkpoint=checkpoint) as outcomes:
        taken = [next(outcomes) for _ in range(3)]
    assert len(taken) == 3
    result = outcomes.result
    assert result is not None
    assert 3 <= result.count(Status.OK) < 40
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == result.count(Status.OK)


def test_stream_is_public() -> None:
    assert curator.stream is stream
    assert {"stream", "RunStream"} <= set(curator.__all__)


def test_a_stream_never_iterated_releases_its_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(5).write(Collect())
    unused = stream(pipeline, checkpoint=checkpoint, reporter=None)
    with pytest.raises(UsageError, match="in use by another curator run"):
        run(pipeline, checkpoint=checkpoint, reporter=None)  # the stream holds it
    unused.close()
    assert run(pipeline, checkpoint=checkpoint, reporter=None).ok
    assert unused.result is None  # it never ran


def test_a_hard_stop_handed_in_between_two_batches_ends_the_run_cleanly(tmp_path: Path) -> None:
    # run() hands a Ctrl-C that lands between two batches (outside the run's own frames)
    # back to the run with throw(): it must end as an interrupted, recorded run.
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(40).write(Sleep(0.01))
    outcomes = stream(pipeline, backend="thread-pool", jobs=2, checkpoint=checkpoint)
    outcomes._started = True  # driven by hand below
    batches = outcomes._loop.batches()
    first = next(batches)
    batches.throw(KeyboardInterrupt())  # the run hands out what it still has, then ends
    with pytest.raises(curator.RunInterrupted) as info:
        list(batches)
    result = info.value.result
    assert result.count(Status.OK) >= len(first)
    assert (
        result.count(Status.OK) + result.count(Status.CANCELLED) + result.count(Status.INTERRUPTED)
        == 40
    )
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == result.count(Status.OK)


def test_closing_the_stream_while_it_hands_out_the_cancelled_ones_still_ends_the_run(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    recorder = EventRecorder()
    outcomes = stream(Numbers(20).write(FailAt({2})), checkpoint=checkpoint, reporter=recorder)
    for outcome in outcomes:
        if outcome.status is Status.CANCELLED:  # the run stopped at item 2
            break
    outcomes.close()
    assert outcomes.result is not None
    assert outcomes.result.count(Status.CANCELLED) == 17
    assert recorder.events[-1].hook == "run_finish"
    # The checkpoint was released: another run can take it.
    again = Numbers(20).write(FailAt({2}))
    resumed = run(again, checkpoint=checkpoint, resume=True, on_error="continue", reporter=None)
    assert resumed.count(Status.SKIPPED) == 2


def test_ordered_releases_every_waiting_outcome_as_soon_as_its_turn_comes(tmp_path: Path) -> None:
    # Out of order on purpose: item 0 waits until items 1-4 have finished, and items 5-7
    # wait until the consumer has received item 4. Outcomes 1-4 must wait for 0, then all
    # come out with it, at once: not one per later outcome (5-7 would never come).
    waits = {0: [f"run.{i}.*" for i in range(1, 5)]} | dict.fromkeys(range(5, 8), ("released.4",))
    outcomes = stream(
        probe(8, tmp_path, waits=waits), backend="thread-pool", jobs=2, ordered=True, reporter=None
    )
    released: list[tuple[int, set[int]]] = []  # each outcome, and the items finished by then
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        # By name: a record being written may still be empty.
        finished = {int(path.name.split(".")[1]) for path in tmp_path.glob("run.*")}
        released.append((outcome.index, finished))
        (tmp_path / f"released.{outcome.index}").touch()
    assert [index for index, _ in released] == list(range(8))
    assert released[0][1] >= {1, 2, 3, 4}, "items 1-4 finished before item 0 (the premise)"
    for index, finished in released[:5]:
        assert not finished & {5, 6, 7}, f"item {index} came out only after later items ran"


STARTED: list[int] = []
"""Items :class:`NotesStarts` started, whichever thread's copy ran them."""


class NotesStarts(Sink[int]):
    def __call__(self, items: Iterator[int], index: int) -> list[int]:
        STARTED.append(index)
        return list(items)


@pytest.mark.parametrize("jobs", [2, 4])
def test_a_slow_consumer_holds_the_thread_pool_back(jobs: int) -> None:
    # Without backpressure the threads run every item at once and queue every outcome
    # for the consumer: memory grows with the item count.
    STARTED.clear()
    taken = most_ahead = 0
    for _ in stream(
        Numbers(3000).write(NotesStarts()), backend="thread-pool", jobs=jobs, reporter=None
    ):
        taken += 1
        most_ahead = max(most_ahead, len(STARTED) - taken)
        if taken % 50 == 0:
            time.sleep(0.005)  # a slow consumer: the threads get time to run ahead
    assert taken == len(STARTED) == 3000
    assert most_ahead <= (AHEAD_PER_THREAD + 1) * jobs


def test_starting_a_stream_of_a_million_items_costs_about_a_byte_per_item() -> None:
    pipeline = Numbers(1_000_000).write(Collect())
    tracemalloc.start()
    try:
        outcomes = stream(pipeline, reporter=None)
        next(outcomes)
        peak = tracemalloc.get_traced_memory()[1]
        outcomes.close()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # a status byte per index (1 MB), no list of every index


def test_a_stream_iterated_but_never_stepped_releases_its_checkpoint(tmp_path: Path) -> None:
    """Found by a review: iter() without a first next() left the checkpoint locked."""
    store = tmp_path / "cp.sqlite"
    outcomes = stream(Numbers(5).write(Collect()), checkpoint=store, reporter=None)
    assert list(zip([], outcomes, strict=False)) == []  # iter() called, no item taken
    outcomes.close()
    assert run(Numbers(5).write(Collect()), checkpoint=store, reporter=None).ok


def test_a_stream_never_iterated_leaves_no_checkpoint_behind(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    pipeline = Numbers(5).write(Collect())
    stream(pipeline, checkpoint=checkpoint, reporter=None).close()
    assert list(tmp_path.iterdir()) == []
    unused = stream(pipeline, checkpoint=checkpoint, reporter=None)
    del unused  # dropped without a close()
    gc.collect()
    assert list(tmp_path.iterdir()) == []
    # A checkpoint that holds a run's records stays as it was (a fresh pipeline each
    # time: Collect's parameters change as it runs in this process).
    assert run(Numbers(5).write(Collect()), checkpoint=checkpoint, reporter=None).ok
    stream(Numbers(5).write(Collect()), checkpoint=checkpoint, reporter=None).close()
    assert checkpoint.exists()
    resumed = run(Numbers(5).write(Collect()), checkpoint=checkpoint, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == 5


def test_a_stream_closed_early_is_recorded_stopped_and_one_closed_after_its_end_finished(
    tmp_path: Path,
) -> None:
    early, late = tmp_path / "early.sqlite", tmp_path / "late.sqlite"
    with stream(Numbers(50).write(Collect()), checkpoint=early, reporter=None) as outcomes:
        next(iter(outcomes))
    with stream(Numbers(5).write(Collect()), checkpoint=late, reporter=None) as outcomes:
        assert len(list(itertools.islice(outcomes, 5))) == 5  # every item, not the end
    assert report(early).state == "stopped"
    assert report(early).runs[-1].stopped
    assert report(late).state == "finished"
    assert not report(late).runs[-1].interrupted
