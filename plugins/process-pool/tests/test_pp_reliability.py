"""The core's reliability policies on real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pp_pipelines import pipeline
from pp_support import descendants, running, subprocess_env

from curator import Status, TaskFailedError, run
from curator.testing.processes import read_until
from curator.testing.waiting import wait_until


def test_a_hung_item_times_out_its_worker_is_replaced_and_the_run_goes_on() -> None:
    start = time.monotonic()
    result = run(
        pipeline(12, sleep={3: 60.0}),
        backend="process-pool",
        jobs=2,
        timeout=1.0,
        on_error="continue",
        reporter=None,
    )
    assert time.monotonic() - start < 30
    statuses = {o.index: o.status for o in result.outcomes}
    assert [i for i, s in statuses.items() if s is not Status.OK] == [3]
    hung = result.outcomes[3]
    assert hung.status is Status.TIMED_OUT
    assert hung.error is not None
    assert "ran longer than 1 s" in hung.error.message
    # Stopped at the limit, not long after: 5x the limit is a generous bound that still
    # catches a pool that enforces timeouts 10x late.
    assert 1.0 <= hung.duration < 5.0, hung.duration


def test_a_timed_out_item_is_retried_and_counts_as_failed_when_it_keeps_hanging() -> None:
    result = run(
        pipeline(4, sleep={1: 60.0}),
        backend="process-pool",
        jobs=2,
        timeout=0.5,
        retries=1,
        on_error="continue",
        reporter=None,
    )
    assert result.outcomes[1].status is Status.TIMED_OUT
    assert result.outcomes[1].attempt == 2
    assert [(o.index, o.status) for o in result.retried] == [(1, Status.TIMED_OUT)]


def test_a_crash_is_quarantined_and_retried(tmp_path: Path) -> None:
    result = run(
        pipeline(10, exit_at=frozenset({6}), once=True, markers=str(tmp_path)),
        backend="process-pool",
        jobs=2,
        retries=1,
        options={"chunksize": 3},
        reporter=None,
    )
    assert result.ok
    assert result.outcomes[6].attempt == 2
    assert [(o.index, o.status) for o in result.retried] == [(6, Status.CRASHED)]
    assert result.retried[0].error is not None
    assert result.retried[0].error.exit_code == 3


def test_failure_budget_and_retries_on_worker_processes(tmp_path: Path) -> None:
    with pytest.raises(TaskFailedError) as info:
        run(
            pipeline(200, fail=frozenset({5, 50, 150}), default_sleep=0.005),
            backend="process-pool",
            jobs=2,
            max_failures=2,
            reporter=None,
        )
    assert info.value.index == 50
    assert info.value.result.count(Status.CANCELLED) > 0
    result = run(
        pipeline(30, fail=frozenset({4, 9}), once=True, markers=str(tmp_path)),
        backend="process-pool",
        jobs=2,
        retries=1,
        reporter=None,
    )
    assert result.ok
    assert sorted((o.index, o.attempt, o.status) for o in result.retried) == [
        (4, 1, Status.FAILED),
        (9, 1, Status.FAILED),
    ]
    assert result.outcomes[4].attempt == 2


def _start(args: list[str], markers: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curator", "run", *args, "-b", "process-pool", "-j", "2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=subprocess_env(PP_TEST_MARKERS=str(markers)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(markers: Path, count: int) -> None:
    wait_until(lambda: len(list(markers.iterdir())) >= count, 60, f"{count} items to run")


def _worker_pids(markers: Path) -> set[int]:
    # From the name (INDEX.PID.NS), not the text: a worker killed with its parent may
    # leave a marker it made but never wrote.
    return {int(p.name.split(".")[1]) for p in markers.iterdir()}


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


def test_two_stage_ctrl_c_on_worker_processes(markers: Path, tmp_path: Path) -> None:
    proc = _start(["pp_pipelines:slow_marked"], markers, tmp_path)
    _wait_for(markers, 6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    # Graceful: what was running finished and was recorded.
    assert summary["ok"] == len(list(markers.iterdir()))
    assert not any(running(pid) for pid in _worker_pids(markers))


def test_second_ctrl_c_kills_running_workers(markers: Path, tmp_path: Path) -> None:
    proc = _start(["pp_pipelines:slow_30s"], markers, tmp_path)
    _wait_for(markers, 2)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    # Two signals sent close together can merge into one: wait until the first is seen.
    said = read_until(proc.stderr, "curator: stopping", 30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)  # items take 30 s: only a kill ends this sooner
    assert proc.returncode == 130, said + err
    assert json.loads(out)["ok"] == 0
    assert not any(running(pid) for pid in _worker_pids(markers))


def test_workers_do_not_outlive_a_killed_parent(markers: Path, tmp_path: Path) -> None:
    proc = _start(["pp_pipelines:slow_marked"], markers, tmp_path)
    _wait_for(markers, 6)
    proc.kill()
    proc.communicate(timeout=30)
    pids = _worker_pids(markers)
    deadline = time.monotonic() + 15
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)
    resumed = _start(["pp_pipelines:slow_marked", "--resume"], markers, tmp_path)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["ok"] + summary["skipped"] == 400
    ran = {int(p.name.split(".")[0]) for p in markers.iterdir()}
    assert ran == set(range(400))


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_no_process_outlives_a_killed_parent_by_two_seconds(
    method: str, markers: Path, tmp_path: Path
) -> None:
    args = ["pp_pipelines:spinning", "--no-checkpoint", "-o", f"start_method={method}"]
    proc = _start(args, markers, tmp_path)
    _wait_for(markers, 3)  # item 0 spins forever; the other worker is past two items
    tree = {p for p in descendants(proc.pid) if running(p)}
    assert len(tree) >= 2, f"expected the run's worker processes, found {tree}"
    proc.kill()
    proc.communicate(timeout=30)
    killed = time.monotonic()
    while any(running(p) for p in tree) and time.monotonic() - killed < 2.0:
        time.sleep(0.02)
    left = sorted(p for p in tree if running(p))
    assert not left, f"processes still running 2 s after the parent was killed: {left}"


def test_two_workers_killed_at_once_cost_only_their_items(tmp_path: Path) -> None:
    result = run(
        pipeline(3000, kill_at=frozenset({1200, 1201}), default_sleep=0.0005),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        options={"chunksize": 1},
        reporter=None,
    )
    crashed = [o.index for o in result.outcomes if o.status is Status.CRASHED]
    assert crashed == [1200, 1201]
    assert result.count(Status.OK) == 2998


def test_a_dead_fork_server_blames_no_item(tmp_path: Path) -> None:
    markers = tmp_path / "m"
    markers.mkdir()

    def kill_the_fork_server() -> None:
        wait_until(lambda: len(list(markers.iterdir())) >= 4, 30, "four items to run")
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_fork_server)
    killer.start()
    result = run(
        pipeline(40, default_sleep=0.1, markers=str(markers)),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        options={"start_method": "forkserver"},
        reporter=None,
    )
    killer.join()
    assert result.ok, [o for o in result.outcomes if not o.ok][:3]


def test_max_failures_overshoots_by_at_most_the_items_in_flight() -> None:
    # Every item fails. With chunks of 10 and two workers, at most 2 chunks per worker
    # are in flight when the budget is reached, so at most 40 more failures arrive.
    with pytest.raises(TaskFailedError) as info:
        run(
            pipeline(5000, fail=frozenset(range(5000))),
            backend="process-pool",
            jobs=2,
            max_failures=100,
            options={"chunksize": 10},
            reporter=None,
        )
    failed = len(info.value.result.failures)
    assert 100 <= failed <= 140, f"{failed} failures for a budget of 100"
