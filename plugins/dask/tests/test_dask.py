from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from curator import Pipeline, Sink, Status, TaskFailedError, UsageError, run
from curator.examples.snapshots import DatasetStatistics, SnapshotSource
from curator.testing.probes import Numbers, Probe, WelfordShards, executions, probe, started
from curator.testing.waiting import wait_until


def dask(pipeline: object, **kwargs: object) -> object:
    kwargs.setdefault("reporter", None)
    kwargs.setdefault("jobs", 2)
    return run(pipeline, backend="dask", **kwargs)  # type: ignore[arg-type]


def test_a_local_cluster_runs_everything_in_order(tmp_path: Path) -> None:
    result = dask(probe(50, tmp_path), on_error="continue", indices=range(49, -1, -1))
    assert [o.index for o in result.outcomes] == list(range(49, -1, -1))  # type: ignore[attr-defined]
    assert result.ok  # type: ignore[attr-defined]
    workers = {o.worker for o in result.outcomes}  # type: ignore[attr-defined]
    assert all(w.startswith("dask-") for w in workers)
    assert f"dask-{os.getpid()}" not in workers
    assert len(executions(tmp_path)) == 50


def test_item_errors_are_failed_outcomes_with_tracebacks(tmp_path: Path) -> None:
    result = dask(probe(10, tmp_path, fail=frozenset({4})), on_error="continue")
    failed = result.outcomes[4]  # type: ignore[attr-defined]
    assert failed.status is Status.FAILED
    assert "probe: item 4 fails" in failed.error.traceback
    with pytest.raises(TaskFailedError):
        dask(probe(10, tmp_path, fail=frozenset({4})))


def test_items_on_dask_workers_carry_their_metrics(tmp_path: Path) -> None:
    result: Any = dask(
        probe(20, tmp_path, fail=frozenset({4})), on_error="continue", metrics="all"
    )  # every item, not a sample of the quick ones (the kit checks the sampling)
    assert result.run.stages == ("Numbers (source)", "Probe (sink)")
    for outcome in result.outcomes:
        assert outcome.metrics is not None
        assert len(outcome.metrics.stages) == 2
        assert outcome.metrics.rss_peak > 10 * 2**20
    assert [s.items for s in result.stage_summary()] == [20, 20]
    off: Any = dask(probe(5, tmp_path), metrics=False)
    assert {o.metrics for o in off.outcomes} == {None}


def test_options_are_validated() -> None:
    with pytest.raises(UsageError, match="give address or scheduler_file, not both"):
        dask(probe(1, "."), options={"address": "tcp://x:1", "scheduler_file": "f"})
    with pytest.raises(UsageError, match=re.escape("cannot reach the Dask scheduler at tcp://127")):
        dask(probe(1, "."), options={"address": "tcp://127.0.0.1:9"})


def test_an_existing_cluster_by_address_and_by_scheduler_file(
    cluster: Path, tmp_path: Path
) -> None:
    address = json.loads(cluster.read_text())["address"]
    by_address = dask(probe(20, tmp_path), options={"address": address})
    assert by_address.ok  # type: ignore[attr-defined]
    by_file = dask(probe(20, tmp_path), options={"scheduler_file": str(cluster)})
    assert by_file.ok  # type: ignore[attr-defined]
    with Client(scheduler_file=str(cluster), timeout="10s") as client:
        # The user's cluster is left running, with both workers and no task of ours.
        assert len(client.scheduler_info()["workers"]) == 2
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
            assert time.monotonic() < deadline, "tasks were left on the cluster"
            time.sleep(0.1)


def test_a_scheduler_file_written_while_the_run_waits_is_used(
    cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scheduler started just before the run writes its file once it listens, in
    # place: the run waits for the file, and reads a half-written one again.
    import curator_backend_dask.connection as connection

    monkeypatch.setattr(connection, "HALF_WRITTEN_SECONDS", 10.0)
    identity = cluster.read_text()
    later = tmp_path / "scheduler.json"

    def write_slowly() -> None:
        time.sleep(0.5)
        later.write_text(identity[: len(identity) // 2])
        time.sleep(0.5)
        later.write_text(identity)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        result = dask(probe(4, tmp_path), options={"scheduler_file": str(later)})
    finally:
        writer.join()
    assert result.ok  # type: ignore[attr-defined]


def test_cancelling_leaves_the_users_cluster_running_and_clean(
    cluster: Path, tmp_path: Path
) -> None:
    with pytest.raises(TaskFailedError):
        dask(
            probe(200, tmp_path, sleep=0.05, fail=frozenset({3})),
            options={"scheduler_file": str(cluster)},
        )
    with Client(scheduler_file=str(cluster), timeout="10s") as client:
        assert len(client.scheduler_info()["workers"]) == 2
        deadline = time.monotonic() + 15
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
            assert time.monotonic() < deadline, "tasks were left on the cluster"
            time.sleep(0.1)
    assert len(started(tmp_path)) < 150


def test_killing_a_worker_mid_run_never_hangs_and_loses_nothing(
    own_cluster: Path, tmp_path: Path
) -> None:
    cluster = own_cluster
    with Client(scheduler_file=str(cluster), timeout="10s") as client:
        pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def kill_soon() -> None:
        wait_until(lambda: len(started(tmp_path)) >= 6, 30, "six items to start")
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    result = dask(
        probe(40, tmp_path, sleep=0.1),
        options={"scheduler_file": str(cluster)},
        on_error="continue",
        retries=1,
    )
    killer.join()
    outcomes = result.outcomes  # type: ignore[attr-defined]
    assert [o.index for o in outcomes] == list(range(40))
    assert {o.status for o in outcomes} <= {Status.OK, Status.CRASHED}
    assert sum(o.status is Status.OK for o in outcomes) >= 35
    with Client(scheduler_file=str(cluster), timeout="10s") as client:
        client.wait_for_workers(1, timeout=30)


def test_at_most_two_chunks_per_worker_are_in_flight(cluster: Path, tmp_path: Path) -> None:
    def unfinished_chunks(dask_scheduler: Any) -> int:
        return sum(
            str(task.key).startswith("run_chunk") and task.state not in ("memory", "released")
            for task in dask_scheduler.tasks.values()
        )

    counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with Client(scheduler_file=str(cluster), timeout="10s") as client:
            while not done.is_set():
                counts.append(client.run_on_scheduler(unfinished_chunks))
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # Items of 0.3 s make every chunk a single item: 20 items, 2 workers.
        result = dask(probe(20, tmp_path, sleep=0.3), options={"scheduler_file": str(cluster)})
    finally:
        done.set()
        watcher.join()
    assert result.ok  # type: ignore[attr-defined]
    assert max(counts) == 4, counts


def test_listing_backends_never_imports_dask() -> None:
    # Nor asyncio (10-20 ms): every run and listing imports the plugin's backend module.
    code = (
        "import sys\n"
        "from curator.cli.main import main\n"
        "sys.argv = ['curator', 'backends', 'list', '--json']\n"
        "main()\n"
        "print('DASK', 'dask' in sys.modules, 'distributed' in sys.modules,"
        " 'asyncio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout[: out.stdout.rindex("]") + 1])
    assert {"name": "dask"}.items() <= next(r for r in rows if r["name"] == "dask").items()
    assert out.stdout.strip().endswith("DASK False False False")


def test_a_run_on_another_backend_never_imports_the_dask_backend() -> None:
    # The plugin registers its class by reference: only a run on dask imports its module.
    code = (
        "import sys\n"
        "from curator import run\n"
        "from curator.examples.snapshots import pipeline\n"
        "assert run(pipeline(4), reporter=None).ok\n"
        "print('DASK', 'curator_backend_dask.backend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("DASK False")


def test_a_crash_blames_only_the_item_that_was_running(tmp_path: Path) -> None:
    # Items of 0.2 s: every worker has a chunk running and one queued when item 5 kills it.
    result = dask(probe(24, tmp_path, sleep=0.2, crash=frozenset({5})), on_error="continue")
    outcomes = result.outcomes  # type: ignore[attr-defined]
    assert [o.index for o in outcomes if o.status is not Status.OK] == [5]
    assert outcomes[5].status is Status.CRASHED
    assert result.retried == []  # type: ignore[attr-defined]
    # Items that finished inside the lost chunk may run again; none is lost.
    assert {e.index for e in executions(tmp_path)} == set(range(24)) - {5}


def test_a_local_cluster_runs_while_port_8787_is_taken(tmp_path: Path) -> None:
    # A notebook's Dask dashboard, or another run, commonly holds the default port.
    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))
        holder.listen()
    except OSError:
        pass  # already taken by someone else: the same situation
    try:
        assert dask(probe(4, tmp_path)).ok  # type: ignore[attr-defined]
    finally:
        holder.close()


class _Drain(Sink[Any]):
    def __call__(self, items: Iterator[Any], index: int) -> list[str]:
        for _ in items:
            pass
        return [str(index)]


def test_stage_state_merges_back_from_dask_workers_to_1e_12() -> None:
    """Welford moments from the cluster equal a sequential run's (the kit checks the rest)."""

    def statistics(backend: str, jobs: int) -> dict[str, Any]:
        stats = DatasetStatistics()
        pipeline = SnapshotSource(20, size=10).filter(stats).write(_Drain())
        assert run(pipeline, backend=backend, jobs=jobs, reporter=None).ok
        return stats.summary()["field"]

    expected, got = statistics("sequential", 1), statistics("dask", 2)
    assert got["count"] == expected["count"] == 20 * 10 * 10
    for key in ("mean", "std", "min", "max"):
        assert math.isclose(got[key], expected[key], rel_tol=0, abs_tol=1e-12), key


def test_shard_style_stages_merge_their_worker_shards(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    stage = WelfordShards(str(output))
    pipeline = Pipeline(Numbers(40)).filter(stage).write(Probe(str(tmp_path)))
    assert dask(pipeline).ok  # type: ignore[attr-defined]
    values = [WelfordShards.value(i) for i in range(40)]
    got = json.loads(output.read_text())
    assert got["count"] == 40
    assert math.isclose(got["mean"], math.fsum(values) / 40, rel_tol=0, abs_tol=1e-12)
    assert list(tmp_path.glob("stats_worker_*")) == []
