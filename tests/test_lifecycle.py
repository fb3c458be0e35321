"""Per-worker setup(worker)/teardown() of stages, and WorkerInfo, on the built-in backends."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from core_support import registry_with

from curator import (
    Backend,
    Capabilities,
    Event,
    Filter,
    Status,
    TeardownError,
    UsageError,
    Work,
    WorkerInfo,
    run,
)
from curator.testing.probes import Numbers


class Connection(Filter[int]):
    """A per-worker resource: opened in setup, used per item, closed in teardown."""

    def __init__(self, fail_setup: bool = False, fail_teardown: bool = False) -> None:
        self.fail_setup = fail_setup
        self.fail_teardown = fail_teardown
        self.worker: WorkerInfo | None = None
        self.open = False
        self.log: list[str] = []

    def setup(self, worker: WorkerInfo) -> None:
        if self.fail_setup:
            raise ConnectionError("database is down")
        self.worker = worker
        self.open = True
        self.log.append(f"setup {worker.slot}")

    def teardown(self) -> None:
        self.open = False
        self.log.append("teardown")
        if self.fail_teardown:
            raise OSError("flush failed")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        assert self.open, "an item ran before setup or after teardown"
        assert self.worker is not None
        for item in items:
            yield item * 1000 + self.worker.slot


def _sink(items: Iterator[int], index: int) -> list[str]:
    return [str(i) for i in items]


def test_sequential_sets_up_the_callers_stage_once_and_tears_it_down() -> None:
    stage = Connection()
    result = run(Numbers(5).filter(stage).write(_sink), reporter=None)
    assert result.ok
    assert stage.log == ["setup 0", "teardown"]
    assert stage.worker == WorkerInfo(0, "sequential", 1, os.getpid(), stage.worker.host)
    assert result.outputs[3] == ["3000"]


def test_each_thread_sets_up_its_own_copy_with_its_slot() -> None:
    result = run(
        Numbers(40).filter(Connection()).write(_sink),
        backend="thread-pool",
        jobs=3,
        reporter=None,
    )
    assert result.ok
    slots = {int(o.value[0]) % 1000 for o in result.outcomes}  # type: ignore[index]
    assert slots <= {0, 1, 2}
    by_worker = {o.worker: int(o.value[0]) % 1000 for o in result.outcomes}  # type: ignore[index]
    assert all(worker == f"thread-{slot}" for worker, slot in by_worker.items())


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_setup_that_raises_is_a_usage_error_naming_the_stage(backend: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(Numbers(4).filter(Connection(fail_setup=True)).write(_sink), backend=backend)
    assert "Connection.setup(worker) raised ConnectionError: database is down" in str(caught.value)


class LazyLog(Filter[int]):
    """Opens its handle in its first item, closes it in ``teardown()``: no ``setup``."""

    def __init__(self, reset: bool = True) -> None:
        self.reset = reset
        self.handle: list[str] | None = None  # stands for an open file
        self.closed = 0

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        if self.handle is None:
            self.handle = []
        for item in items:
            if self.closed and not self.reset:
                raise ValueError("I/O operation on closed file")
            self.handle.append(str(item))
            yield item

    def teardown(self) -> None:
        self.closed += 1
        assert self.handle is not None  # as a file's close() on None would raise
        if self.reset:
            self.handle = None  # the next round (or run) of this object opens again


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_stage_with_only_a_teardown_never_hides_another_stages_setup_error(
    backend: str,
) -> None:
    """Torn down in the failed setup's cleanup, before any item opened it, it raised instead."""
    lazy = LazyLog()
    pipeline = Numbers(4).filter(lazy).filter(Connection(fail_setup=True)).write(_sink)
    # Shared by the threads, the caller's own objects are the ones set up and torn down.
    shared = {"jobs": 2, "options": {"copy_pipeline": False}} if backend == "thread-pool" else {}
    with pytest.raises(UsageError) as refused:
        run(pipeline, backend=backend, reporter=None, **shared)  # type: ignore[arg-type]
    assert str(refused.value).startswith("Connection.setup(worker) raised ConnectionError: "), (
        refused.value
    )
    assert "tearing down" not in str(refused.value)
    assert lazy.closed == 0  # it opened nothing: its teardown is not called


def test_a_stage_with_only_a_teardown_that_resets_runs_every_round_of_a_run_in_process() -> None:
    """The same object runs each retry in the process: teardown() after each round."""
    failed: set[int] = set()

    def fails_once_at_3(items: Iterator[int], index: int) -> list[str]:
        values = [str(i) for i in items]
        if index == 3 and index not in failed:
            failed.add(index)
            raise ValueError("once")
        return values

    lazy = LazyLog()
    pipeline = Numbers(6).filter(lazy).write(fails_once_at_3)
    result = run(pipeline, reporter=None, retries=1, retry_delay=0)
    assert result.ok, [o for o in result.outcomes if not o.ok]
    assert lazy.closed == 2  # after each round
    assert lazy.handle is None


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_teardown_that_raises_fails_the_run_but_keeps_the_outcomes(
    backend: str, tmp_path: Path
) -> None:
    store = tmp_path / "cp.sqlite"
    pipeline = Numbers(4).filter(Connection(fail_teardown=True)).write(_sink)
    with pytest.raises(
        TeardownError, match=r"Connection.teardown\(\) raised OSError: flush failed"
    ) as caught:
        run(pipeline, backend=backend, checkpoint=store, reporter=None)
    assert isinstance(caught.value, UsageError)  # the stage's code is the user's
    # The caller keeps every outcome, as with a failed merge (StateMergeError).
    result = caught.value.result
    assert result is not None
    assert result.count(Status.OK) == 4
    assert result.outputs[2] == [str(2000)]
    # Every item was recorded before the teardown failed: resuming runs none of them
    # (so no worker is set up, and nothing is torn down).
    again = Numbers(4).filter(Connection(fail_teardown=True)).write(_sink)  # as a new process
    resumed = run(again, backend=backend, checkpoint=store, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == 4
    assert resumed.outputs[2] == [str(2000)]


def test_a_shared_pipeline_is_set_up_once_for_all_threads() -> None:
    stage = Connection()
    calls = []
    original = stage.setup

    def counting(worker: WorkerInfo) -> None:
        calls.append(threading.get_ident())
        original(worker)

    stage.setup = counting  # type: ignore[method-assign]
    result = run(
        Numbers(20).filter(stage).write(_sink),
        backend="thread-pool",
        jobs=3,
        options={"copy_pipeline": False},
        reporter=None,
    )
    assert result.ok
    assert len(calls) == 1
    assert stage.log == ["setup 0", "teardown"]
    assert result.count(Status.OK) == 20


class Plain(Backend):
    """A parallel backend that does not call the stages' setup/teardown."""

    name = "plain"
    capabilities = Capabilities(parallel=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index)


def test_a_backend_that_does_not_call_the_hooks_is_refused_for_a_pipeline_with_them() -> None:
    registry = registry_with(Plain)
    with pytest.raises(UsageError) as caught:
        run(
            Numbers(4).filter(Connection()).write(_sink), backend="plain", jobs=2, registry=registry
        )
    assert "defines setup(worker)/teardown(), and backend 'plain' does not call them" in str(
        caught.value
    )
    assert "thread-pool" in str(caught.value)
    assert run(Numbers(4).write(_sink), backend="plain", jobs=2, registry=registry).ok
