from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pp_pipelines import HoldsALock, Numbers, ReportInit, pipeline
from pp_support import running, subprocess_env

from curator import (
    Reporter,
    RunResult,
    Status,
    TaskFailedError,
    UsageError,
    hookimpl,
    run,
)
from curator.observing.progress import RunProgress
from curator.testing.events import EventRecorder
from curator.testing.waiting import wait_until

START_METHODS = multiprocessing.get_all_start_methods()


def pp(
    pipe: Any, jobs: int = 2, on_error: str = "continue", reporter: Any = None, **options: Any
) -> RunResult:
    return run(
        pipe,
        backend="process-pool",
        jobs=jobs,
        options=options,
        on_error=on_error,  # type: ignore[arg-type]
        reporter=reporter,
    )


@pytest.mark.parametrize("method", START_METHODS)
def test_every_start_method_runs_everything_in_order(method: str) -> None:
    result = pp(pipeline(30), start_method=method)
    assert result.ok
    assert [o[0] for o in result.outputs if o] == [str(i) for i in range(30)]
    pids = {o[1] for o in result.outputs if o}
    assert str(os.getpid()) not in pids
    assert {o.worker for o in result.outcomes} <= {"process-0", "process-1"}


@pytest.mark.parametrize(
    ("count", "jobs", "chunksize", "indices"),
    [
        (1, 2, None, None),  # a single item
        (3, 4, None, None),  # fewer items than workers
        (10, 2, 3, None),  # N not divisible by the chunk size
        (10, 2, 1, None),
        (25, 2, 7, [24, 3, 17, 0, 9]),  # a subset, in the caller's order
        (200, 2, None, range(0, 200, 3)),
    ],
)
def test_chunk_boundaries_subsets_and_order(
    count: int, jobs: int, chunksize: int | None, indices: Any
) -> None:
    result = run(
        pipeline(count),
        backend="process-pool",
        jobs=jobs,
        indices=indices,
        options={"chunksize": chunksize},
        reporter=None,
    )
    expected = list(indices) if indices is not None else list(range(count))
    assert [o.index for o in result.outcomes] == expected
    assert [o[0] for o in result.outputs if o] == [str(i) for i in expected]


def test_an_error_in_the_middle_of_a_chunk_fails_only_that_item() -> None:
    result = pp(pipeline(10, fail=frozenset({2})), chunksize=5)
    statuses = [o.status for o in result.outcomes]
    assert statuses == [Status.OK] * 2 + [Status.FAILED] + [Status.OK] * 7
    failure = result.outcomes[2]
    assert failure.error is not None
    assert failure.error.type == "ValueError"
    assert 'raise ValueError(f"bad item {index}")' in failure.error.traceback
    assert failure.worker.startswith("process-")


def test_on_error_raise_stops_and_leaves_no_process() -> None:
    with pytest.raises(TaskFailedError) as info:
        pp(pipeline(100, fail=frozenset({5}), default_sleep=0.02), on_error="raise")
    assert info.value.index == 5
    assert "bad item 5" in str(info.value)
    result = info.value.result
    assert result.count(Status.CANCELLED) > 50
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    ("how", "exit_code", "words"),
    [
        ({"exit_at": frozenset({7})}, 3, "exited with code 3"),
        ({"kill_at": frozenset({7})}, -signal.SIGKILL, "was killed by SIGKILL"),
        ({"segfault_at": frozenset({7})}, -signal.SIGSEGV, "was killed by SIGSEGV"),
    ],
)
def test_a_dead_worker_blames_exactly_its_item(
    how: dict[str, Any], exit_code: int, words: str, tmp_path: Path
) -> None:
    result = pp(pipeline(20, markers=str(tmp_path), **how), chunksize=5)
    by_status = {o.index: o.status for o in result.outcomes}
    assert [i for i, s in by_status.items() if s is not Status.OK] == [7]
    crashed = result.outcomes[7]
    assert crashed.status is Status.CRASHED
    assert crashed.error is not None
    assert crashed.error.exit_code == exit_code
    assert words in crashed.error.message
    assert "while running item 7" in crashed.error.message
    # Nothing else was lost: every other item ran and reported ok.
    ran = {int(p.name.split(".")[0]) for p in tmp_path.iterdir()}
    assert ran == set(range(20))


def test_a_crash_with_on_error_raise_stops_the_run() -> None:
    with pytest.raises(TaskFailedError) as info:
        pp(pipeline(30, exit_at=frozenset({4})), on_error="raise", chunksize=2)
    assert info.value.outcome.status is Status.CRASHED
    assert "item 4 crashed: WorkerCrash" in str(info.value)


def test_unpicklable_pipelines_are_named_before_any_worker_starts() -> None:
    lock = threading.Lock()  # a lambda travels by value, but not what it closes over
    with pytest.raises(UsageError) as info:
        pp(Numbers(3).filter(lambda items: (lock, items)[1]).write(HoldsALock()))
    assert "filter 1" in str(info.value)
    assert "needs a picklable pipeline" in str(info.value)
    events = EventRecorder()
    with pytest.raises(UsageError) as info:
        pp(Numbers(3).write(HoldsALock()), reporter=events)
    assert "attribute 'lock' of the sink (pp_pipelines.HoldsALock), a lock" in str(info.value)
    assert multiprocessing.active_children() == []
    assert events.events == []  # told before the run started: no run_start, no run_finish


def test_start_and_finish_events_per_item_with_worker_ids() -> None:
    events = EventRecorder()
    pp(pipeline(300), reporter=events)
    for index in range(300):
        mine = [(e.hook, e.worker) for e in events.events if e.index == index]
        assert [hook for hook, _ in mine] == ["task_start", "task_finish"], (index, mine)
        assert mine[0][1] == mine[1][1]
        assert mine[0][1] in {"process-0", "process-1"}


def test_a_long_item_is_announced_while_it_runs() -> None:
    events = EventRecorder()
    pp(pipeline(2, sleep={0: 1.5}), jobs=1 + 1, reporter=events)
    start = next(e.at for e in events.of("task_start") if e.index == 0)
    finish = next(e.at for e in events.of("task_finish") if e.index == 0)
    assert finish - start > 1.0  # the start event arrived long before the item ended


def test_a_slow_item_does_not_hold_back_the_other_worker(tmp_path: Path) -> None:
    # Item 0 waits until the other 40 (20 ms each) have started, then 1 s more: they must
    # all finish on the other worker meanwhile. A pool that queued items behind item 0
    # keeps it waiting 60 s, and those items finish after it.
    result = pp(
        pipeline(
            41, markers=str(tmp_path), wait_for_markers={0: 41}, sleep={0: 1.0}, default_sleep=0.02
        )
    )
    slow = result.outcomes[0]
    assert all(o.finished < slow.finished for o in result.outcomes[1:])
    assert {o.worker for o in result.outcomes[1:]} == {"process-0", "process-1"} - {slow.worker}


def test_max_tasks_per_child_replaces_workers() -> None:
    result = pp(pipeline(12), max_tasks_per_child=2)
    assert result.ok
    pids = [o[1] for o in result.outputs if o]
    assert max(pids.count(pid) for pid in set(pids)) <= 2
    assert len(set(pids)) >= 6


def test_initializer_runs_once_per_worker_before_items() -> None:
    result = pp(
        Numbers(4).write(ReportInit()),
        initializer="pp_pipelines:initialize",
        initargs="('ready', 'set')",
    )
    assert result.outputs == [["ready", "set"]] * 4


def test_a_failing_initializer_is_a_clear_error() -> None:
    with pytest.raises(UsageError) as info:
        pp(pipeline(4), initializer="pp_pipelines:failing_initializer")
    assert "could not start: RuntimeError: initializer exploded" in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_method": "threads"}, "must be 'spawn' | 'forkserver' | 'fork' | None"),
        ({"chunksize": 0}, "chunksize must be at least 1"),
        ({"max_tasks_per_child": 0}, "max_tasks_per_child must be at least 1"),
        ({"chunk_size": 4}, "did you mean 'chunksize'?"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("|", r"\|").replace("?", r"\?")):
        pp(pipeline(2), **options)


def test_ctrl_c_stops_promptly_and_leaves_no_worker(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "curator", "run", "pp_pipelines:slow_marked"]
    cmd += ["-b", "process-pool", "-j", "2", "--json"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(PP_TEST_MARKERS=str(tmp_path)),
        cwd=tmp_path.parent,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_until(lambda: len(list(tmp_path.iterdir())) >= 4, 60, "four items to run")
    # Ctrl-C in a terminal reaches the whole process group; workers ignore it.
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert summary["ok"] + summary["cancelled"] == 400
    worker_pids = {int(p.name.split(".")[1]) for p in tmp_path.iterdir()}  # INDEX.PID.NS
    assert worker_pids
    assert not any(running(pid) for pid in worker_pids)


class BusySampler(Reporter):
    """Samples what each worker runs, as the live view does, from its own thread."""

    name = "busy-sampler"

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[list[tuple[str, int, float]]] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @hookimpl
    def curator_run_start(self, progress: RunProgress) -> None:
        def sample() -> None:
            while not self.stop.wait(0.02):
                self.samples.append(progress.busy())

        self.thread = threading.Thread(target=sample)
        self.thread.start()

    @hookimpl
    def curator_run_finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join()


def test_busy_workers_are_read_from_shared_memory_without_start_events() -> None:
    sampler = BusySampler()
    result = pp(pipeline(8, default_sleep=0.2), reporter=sampler)
    assert result.ok
    seen = {(worker, index) for rows in sampler.samples for worker, index, _ in rows}
    assert {worker for worker, _ in seen} == {"process-0", "process-1"}
    assert {index for _, index in seen} <= set(range(8))
    assert len({index for _, index in seen}) >= 4


def test_jobs_one_runs_in_this_process_whatever_the_backend() -> None:
    result = run(pipeline(5), backend="process-pool", jobs=1, reporter=None)
    assert result.ok
    assert {value[1] for value in result.outputs if value} == {str(os.getpid())}
    assert {o.worker for o in result.outcomes} == {"main"}


def test_named_without_jobs_it_runs_on_every_cpu_in_worker_processes() -> None:
    from curator.model.selection import cpu_count

    result = run(pipeline(6), backend="process-pool", reporter=None)
    assert result.ok
    assert result.run.jobs == cpu_count()
    assert str(os.getpid()) not in {value[1] for value in result.outputs if value}
    assert {o.worker for o in result.outcomes} <= {f"process-{n}" for n in range(cpu_count())}
    # So an unpicklable pipeline is refused, as it is with -j 2.
    with pytest.raises(UsageError, match="needs a picklable pipeline"):
        run(Numbers(3).write(HoldsALock()), backend="process-pool", reporter=None)


def test_timeout_without_jobs_is_enforced_on_the_pool(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "curator", "run", "pp_pipelines:small", "-b", "process-pool",
         "--timeout", "60", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == "process-pool"


def test_jobs_one_says_it_ran_in_this_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "curator", "run", "pp_pipelines:small", "-b", "process-pool",
         "-j", "1"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "items on process-pool, jobs=1 (in this process): Pipeline" in proc.stderr
    assert "items/s, process-pool, jobs=1 (in this process))" in proc.stderr


def test_timeout_with_jobs_one_says_why_and_what_to_give() -> None:
    with pytest.raises(UsageError) as info:
        run(pipeline(3), backend="process-pool", jobs=1, timeout=5, reporter=None)
    message = str(info.value)
    assert "backend 'process-pool' with jobs=1 runs items in this process" in message
    assert "give it 2 or more jobs (or leave jobs out: all CPUs)" in message
    assert "use a backend that can" not in message


@pytest.mark.parametrize("method", START_METHODS)
def test_a_stream_on_the_pool_yields_each_index_once_with_crashes_and_retries(
    method: str, tmp_path: Path
) -> None:
    from curator import stream

    # Far apart: items of a crashed worker's chunk run again, which would hide the failure.
    behaviour = {"exit_at": frozenset({7}), "fail": frozenset({190}), "once": True}
    outcomes = stream(
        pipeline(200, markers=str(tmp_path), **behaviour),
        backend="process-pool",
        jobs=2,
        retries=1,
        ordered=True,
        reporter=None,
        options={"start_method": method},
    )
    seen = list(outcomes)
    assert [o.index for o in seen] == list(range(200))
    assert all(o.status is Status.OK for o in seen)
    assert {o.index: o.attempt for o in seen if o.attempt > 1} == {7: 2, 190: 2}
    assert outcomes.result is not None
    assert sorted(o.index for o in outcomes.result.retried) == [7, 190]
