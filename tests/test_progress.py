from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pipelines import FailAt, Numbers, Sleep

from curator import Reporter, TaskFailedError, hookimpl, run
from curator.observing.progress import RunProgress
from curator.observing.reporters import LogReporter, RichReporter


class Watcher(Reporter):
    """Uses only the progress object: alarms, failures and busy workers."""

    name = "watcher"

    def __init__(self, every: int = 0) -> None:
        super().__init__()
        self.every = every
        self.seen_done: list[int] = []
        self.failures: list[int] = []
        self.busy: list[list[tuple[str, int, float]]] = []
        self.progress: RunProgress | None = None

    @hookimpl
    def curator_run_start(self, progress: RunProgress) -> None:
        self.progress = progress
        progress.on_failure(lambda o: self.failures.append(o.index))
        if self.every:
            progress.call_at(self.every, self._tick)

    def _tick(self) -> None:
        assert self.progress is not None
        self.seen_done.append(self.progress.done)
        self.progress.call_at(self.progress.done + self.every, self._tick)


def test_alarms_fire_at_counts_and_failures_are_reported_once() -> None:
    watcher = Watcher(every=25)
    result = run(Numbers(100).write(FailAt({10, 60})), on_error="continue", reporter=watcher)
    assert watcher.seen_done == [25, 50, 75, 100]
    assert watcher.failures == [10, 60]
    assert watcher.progress is not None
    assert watcher.progress.done == 100
    assert [o.index for o in watcher.progress.failures] == [10, 60]
    assert watcher.progress.counts() == {
        s: result.count(s) for s in {o.status for o in result.outcomes}
    }


def test_busy_workers_come_from_start_events_once_asked() -> None:
    watcher = Watcher()
    samples: list[Any] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            if watcher.progress is not None:
                samples.append(watcher.progress.busy())
            time.sleep(0.02)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        run(Numbers(8).write(Sleep(0.1)), backend="thread-pool", jobs=2, reporter=watcher)
    finally:
        stop.set()
        thread.join()
    seen = {(worker, index) for rows in samples for worker, index, _ in rows}
    assert {worker for worker, _ in seen} == {"thread-0", "thread-1"}
    assert {index for _, index in seen} <= set(range(8))
    assert len({index for _, index in seen}) >= 4, "most items were seen while they ran"
    assert all(0 <= seconds < 5 for rows in samples for *_, seconds in rows)
    # A worker is busy with one item at a time.
    assert all(len({w for w, _, _ in rows}) == len(rows) for rows in samples)


def test_rate_eta_before_and_after() -> None:
    watcher = Watcher()
    before: list[tuple[int, float, float | None]] = []

    class Early(Reporter):
        name = "early"

        @hookimpl
        def curator_run_start(self, progress: RunProgress) -> None:
            before.append((progress.done, progress.rate, progress.eta))

    run(Numbers(3).write(Sleep(0.01)), reporter=[watcher, Early()])
    assert before == [(0, 0.0, None)], "before any item: nothing done, no rate, no ETA"
    progress = watcher.progress
    assert progress is not None
    assert progress.done == 3
    assert progress.rate > 0
    assert progress.eta == 0


def test_the_drawing_reporters_add_no_per_item_hook() -> None:
    # Their cost must not grow with the item rate: they read RunProgress instead.
    for reporter in (RichReporter, LogReporter):
        assert not hasattr(reporter, "curator_task_start")
        assert not hasattr(reporter, "curator_task_finish")


def test_an_item_that_succeeds_on_retry_is_not_counted_failed(tmp_path: Any) -> None:
    from pipelines import Flaky

    watcher = Watcher()
    pipeline = Numbers(20).write(Flaky(str(tmp_path), {3, 5}, fail_times=1))
    result = run(pipeline, backend="thread-pool", jobs=2, retries=1, reporter=watcher)
    assert result.ok
    assert sorted(watcher.failures) == [3, 5]  # each failed attempt was announced
    assert watcher.progress is not None
    assert watcher.progress.failed == 0  # ... and none of them counts in the end


class Sampler(Watcher):
    """Records ``(done, rate, eta)`` as each item finishes (skipped ones included)."""

    name = "sampler"

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[tuple[str, int, float, float | None]] = []

    @hookimpl
    def curator_task_finish(self, outcome: Any) -> None:
        p = self.progress
        assert p is not None
        self.samples.append((outcome.status.value, p.done, p.rate, p.eta))


def test_a_resumed_run_measures_its_rate_and_eta_on_the_items_it_runs(tmp_path: Any) -> None:
    store = tmp_path / "run.sqlite"
    pipeline = Numbers(12).write(Sleep(0.01))
    run(pipeline, indices=range(9), checkpoint=store, reporter=None)
    sampler = Sampler()
    run(pipeline, checkpoint=store, resume=True, reporter=sampler)
    skipped = [s for s in sampler.samples if s[0] == "skipped"]
    assert [done for _, done, _, _ in skipped] == list(range(1, 10))  # skipped ones are done
    # ... but nothing ran yet: no rate, no ETA (not 9 items in a millisecond).
    assert all(rate == 0.0 and eta is None for _, _, rate, eta in skipped), skipped
    ran = [s for s in sampler.samples if s[0] == "ok"]
    assert [done for _, done, _, _ in ran] == [10, 11, 12]
    progress = sampler.progress
    assert progress is not None
    assert progress.skipped == 9
    assert progress.rate > 0
    assert progress.eta == 0


def test_items_that_never_ran_are_not_counted_done() -> None:
    watcher = Watcher()
    with pytest.raises(TaskFailedError):
        run(Numbers(10).write(FailAt({3})), reporter=watcher)  # stops at item 3
    progress = watcher.progress
    assert progress is not None
    assert (progress.done, progress.cancelled, progress.total) == (4, 6, 10)
