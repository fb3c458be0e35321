from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from core_support import registry_with
from pipelines import Collect, FailAt, Numbers, double, numbers
from plugins.curator_fixture_failing import CloseRaises

from curator import (
    Backend,
    BackendContractError,
    Capabilities,
    Outcome,
    RunInterrupted,
    Status,
    TaskFailedError,
    UnknownNameError,
    UsageError,
    Work,
    run,
)
from curator.model.outcome import Event
from curator.testing.events import EventRecorder
from curator.testing.registries import isolated_registry

BACKENDS = ["sequential", "thread-pool"]


def jobs_for(backend: str) -> int:
    return 1 if backend == "sequential" else 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_follow_requested_order(backend: str) -> None:
    result = run(numbers(20), backend=backend, jobs=jobs_for(backend), reporter=None)
    assert result.outputs == [[str(2 * i)] for i in range(20)]
    assert result.ok
    assert [o.index for o in result.outcomes] == list(range(20))
    assert all(o.status is Status.OK and o.duration >= 0 for o in result.outcomes)
    subset = run(numbers(20), backend=backend, jobs=jobs_for(backend), indices=[9, 2, 17])
    assert subset.outputs == [["18"], ["4"], ["34"]]
    summary = subset.summary()
    assert (summary["total"], summary["ok"], summary["failed"]) == (3, 3, 0)
    assert summary["backend"] == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_events_reach_the_parent_in_order(backend: str) -> None:
    log = EventRecorder()
    run(numbers(12), backend=backend, jobs=jobs_for(backend), reporter=log)
    assert log.callers() == {(os.getpid(), threading.get_ident())}
    assert (log.events[0].hook, log.events[0].count) == ("run_start", 12)
    assert (log.events[-1].hook, log.events[-1].count) == ("run_finish", 12)
    for index in range(12):
        assert log.hooks_of(index) == ["task_start", "task_finish"], index


def test_plugins_observe_events_and_concurrent_runs_stay_apart() -> None:
    observer = EventRecorder()
    registry = isolated_registry(("observer", observer))
    mine, other = EventRecorder(), EventRecorder()
    run(numbers(3), registry=registry, reporter=mine)
    run(numbers(5), registry=registry, reporter=other)
    assert [e.count for e in mine.of("run_start")] == [3]
    assert [e.count for e in other.of("run_start")] == [5]
    assert mine.indices("task_finish") == [0, 1, 2]
    assert [e.count for e in observer.of("run_start")] == [3, 5]


def test_jobs_one_runs_in_the_caller_with_the_callers_pipeline() -> None:
    sink = Collect()
    pipeline = Numbers(5).filter(double).write(sink)
    run(pipeline, backend="thread-pool", jobs=1)
    assert sink.calls == 5
    assert sink.seen == [0, 1, 2, 3, 4]


def test_empty_indices_start_nothing() -> None:
    started: list[int] = []

    class Recording(Backend):
        name = "recording"
        capabilities = Capabilities(parallel=True)

        def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
            started.extend(indices)
            yield from ()

    registry = registry_with(Recording)
    result = run(numbers(5), backend="recording", jobs=2, indices=[], registry=registry)
    assert result.outcomes == []
    assert result.outputs == []
    assert result.ok
    assert started == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_on_error_raise_stops_and_carries_the_worker_traceback(backend: str) -> None:
    # 40 items of 20 ms: the parent sees the failure long before the pool could finish them.
    sink = FailAt({3}, seconds=0.02)
    with pytest.raises(TaskFailedError) as info:
        run(Numbers(40).write(sink), backend=backend, jobs=jobs_for(backend), reporter=None)
    error = info.value
    assert error.index == 3
    assert "item 3 failed: ValueError: bad item 3" in str(error)
    assert 'raise ValueError(f"bad item {index}")' in error.remote_traceback
    assert "Traceback from the worker" in str(error)
    result = error.result
    assert result.outcomes[3].status is Status.FAILED
    assert result.outcomes[3].error is not None
    assert result.outcomes[3].error.type == "ValueError"
    assert all(result.outcomes[i].ok for i in range(3))
    # Dispatch stopped: at most the items already running when item 3 failed finished after it.
    assert result.count(Status.CANCELLED) >= 40 - 4 - 2 * jobs_for(backend)
    assert all(o.value is None for o in result.outcomes if o.status is Status.CANCELLED)
    if backend == "sequential":
        assert sink.seen == [0, 1, 2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_on_error_continue_runs_everything(backend: str) -> None:
    result = run(
        Numbers(10).write(FailAt({3, 7})),
        backend=backend,
        jobs=jobs_for(backend),
        on_error="continue",
        reporter=None,
    )
    assert [o.index for o in result.failures] == [3, 7]
    assert result.outputs[3] is None
    assert result.outputs[4] == ["4"]
    assert not result.ok
    assert result.summary()["failed"] == 2
    assert result.summary()["failures"][0]["message"] == "bad item 3"


def test_a_printed_summary_reads_as_text_and_stays_a_dict() -> None:
    result = run(Numbers(10).write(FailAt({3, 7})), on_error="continue", reporter=None)
    summary = result.summary()
    text = str(summary)
    lines = text.splitlines()
    assert re.fullmatch(
        r"10 items: 8 ok, 2 failed in \d+\.\d\d s \([\d,.]+ items/s, sequential, jobs=1\)",
        lines[0],
    ), text
    assert lines[1].startswith("  time per stage: Numbers (source)")
    assert lines[2:] == ["  item 3 failed: ValueError: bad item 3",
                         "  item 7 failed: ValueError: bad item 7"]  # fmt: skip
    assert "{" not in text
    assert str(result) == text  # the result prints the same way
    # Still the dict it was: keys, JSON, equality.
    assert summary["failed"] == 2
    assert isinstance(summary, dict)
    assert json.loads(json.dumps(summary)) == dict(summary)
    assert repr(summary).startswith("{'backend': 'sequential'")


def test_summary_reporter_prints_counts_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    run(Numbers(10).write(FailAt({3, 7})), on_error="continue")
    err = capsys.readouterr().err
    assert "curator: 10 items: 8 ok, 2 failed in" in err
    assert "item 3 failed: ValueError: bad item 3" in err
    assert "item 7 failed: ValueError: bad item 7" in err


def test_reporter_none_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    run(numbers(3), reporter="none")
    assert capsys.readouterr() == ("", "")


def test_unknown_backend_suggests_and_lists() -> None:
    with pytest.raises(UnknownNameError) as info:
        run(numbers(3), backend="thread-pol")
    message = str(info.value)
    assert "unknown backend 'thread-pol'; did you mean 'thread-pool'?" in message
    assert "available backends: sequential, thread-pool" in message


def test_underscore_names_work() -> None:
    assert run(numbers(3), backend="thread_pool", jobs=2).run.backend == "thread-pool"


def test_unknown_backend_option_is_an_error_even_with_one_job() -> None:
    with pytest.raises(UsageError, match="unknown option 'copy' for backend 'thread-pool'"):
        run(numbers(3), backend="thread-pool", jobs=1, options={"copy": False})


def test_backend_options_with_one_job_in_this_process_are_an_error_not_dropped() -> None:
    # jobs=1 runs items in this process; the backend and its options never run.
    with pytest.raises(UsageError, match=r"option\(s\) copy_pipeline would not apply; give it 2"):
        run(numbers(3), backend="thread-pool", jobs=1, options={"copy_pipeline": False})
    assert run(numbers(3), backend="thread-pool", jobs=2, options={"copy_pipeline": False}).ok


def test_sequential_refuses_parallel_jobs() -> None:
    with pytest.raises(UsageError, match=r"runs one item at a time.*thread-pool"):
        run(numbers(3), backend="sequential", jobs=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jobs": 0}, "jobs must not be 0"),
        ({"indices": [0, 9]}, "out of range"),
        ({"on_error": "ignore"}, "on_error must be 'raise' or 'continue'"),
        ({"reporter": "fancy"}, "unknown reporter 'fancy'"),
        ({"reporter": 3}, "reporter must be a name"),
        ({"backend": 3}, "backend must be a name"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(numbers(3), **kwargs)


def test_pipeline_without_sink() -> None:
    with pytest.raises(UsageError, match=r"call \.write\(sink\)"):
        run(Numbers(3).filter(double))  # type: ignore[arg-type]


class _Misbehaving(Backend):
    capabilities = Capabilities(parallel=True)
    name = "misbehaving"

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        yield from self.emit(work, list(indices))

    def emit(self, work: Work, indices: list[int]) -> Iterator[Event]:
        raise NotImplementedError


class Drops(_Misbehaving):
    name = "drops"

    def emit(self, work: Work, indices: list[int]) -> Iterator[Event]:
        for index in indices[:-1]:
            yield work(index)


class Duplicates(_Misbehaving):
    name = "duplicates"

    def emit(self, work: Work, indices: list[int]) -> Iterator[Event]:
        for index in [*indices, indices[0]]:
            yield work(index)


class Invents(_Misbehaving):
    name = "invents"

    def emit(self, work: Work, indices: list[int]) -> Iterator[Event]:
        yield Outcome(99, Status.OK, value=[])


class YieldsJunk(_Misbehaving):
    name = "junk"

    def emit(self, work: Work, indices: list[int]) -> Iterator[Event]:
        yield "done"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("drops", r"finished without an outcome for 1 indices: \[4\]"),
        ("duplicates", "reported index 0 twice"),
        ("invents", "reported index 99, which was not requested"),
        ("junk", "yielded 'done'"),
    ],
)
def test_backend_contract_violations_are_caught(backend: str, message: str) -> None:
    registry = registry_with(Drops, Duplicates, Invents, YieldsJunk)
    with pytest.raises(BackendContractError, match=message):
        run(numbers(5), backend=backend, jobs=2, registry=registry, reporter=None)


def test_ctrl_c_stops_the_backend_and_keeps_finished_work() -> None:
    closed: list[bool] = []

    class Interrupting(Backend):
        name = "interrupting"
        capabilities = Capabilities(parallel=True)

        def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
            try:
                for index in indices:
                    if index == 3:
                        raise KeyboardInterrupt
                    yield work(index)
            finally:
                closed.append(True)

    log = EventRecorder()
    with pytest.raises(RunInterrupted) as info:
        run(
            numbers(6),
            backend="interrupting",
            jobs=2,
            registry=registry_with(Interrupting),
            reporter=log,
        )
    result = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert result.interrupted
    assert [o.status for o in result.outcomes] == [Status.OK] * 3 + [Status.CANCELLED] * 3
    assert closed == [True]
    assert (log.events[-1].hook, log.events[-1].count) == ("run_finish", 6)


def test_a_close_that_raises_is_raised_once_the_end_is_recorded(tmp_path: Any) -> None:
    """It was raised first thing at the run's end: the checkpoint's last records, the
    reporters' run_finish and the result were lost (found by a review)."""
    log = EventRecorder()
    checkpoint = tmp_path / "run.sqlite"
    with pytest.raises(BackendContractError, match=r"raised in close\(\): RuntimeError") as info:
        run(
            numbers(6),
            backend="close-raises",
            jobs=2,
            registry=registry_with(CloseRaises),
            reporter=log,
            checkpoint=checkpoint,
        )
    result = info.value.result
    assert result is not None
    assert result.count(Status.OK) == 6
    assert (log.events[-1].hook, log.events[-1].count) == ("run_finish", 6)
    resumed = run(numbers(6), checkpoint=checkpoint, resume=True, reporter=None)
    assert resumed.count(Status.SKIPPED) == 6


def test_run_finish_is_called_when_the_backend_breaks() -> None:
    log = EventRecorder()
    registry = registry_with(Drops)
    with pytest.raises(BackendContractError):
        run(numbers(5), backend="drops", jobs=2, registry=registry, reporter=log)
    assert (log.events[0].hook, log.events[0].count) == ("run_start", 5)
    assert (log.events[-1].hook, log.events[-1].count) == ("run_finish", 5)


def test_a_close_that_raises_does_not_hide_the_runs_own_failure(tmp_path: Any) -> None:
    """The close error was raised first: a run stopped at a failed item read as the
    backend's bug, and the failed item went unnamed (found by a review)."""
    with pytest.raises(TaskFailedError) as info:
        run(
            Numbers(6).write(FailAt({3})),
            backend="close-raises",
            jobs=2,
            registry=registry_with(CloseRaises),
            reporter=None,
        )
    assert info.value.index == 3
