"""Runs on the dask backend at once, in threads of one process (a notebook, a service)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dask
import distributed
import pytest

from curator import run
from curator.testing.probes import probe
from curator.testing.waiting import wait_until

SETTINGS = ("distributed.scheduler.allowed-failures", "distributed.deploy.lost-worker-timeout")


def test_two_runs_at_once_start_their_local_clusters_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two LocalClusters starting at once in one process once failed in distributed's lazy
    imports ("module 'distributed.dashboard' has no attribute 'scheduler'")."""
    lock = threading.Condition()
    starting: list[int] = []
    overlapped: list[bool] = []

    class Watched(distributed.LocalCluster):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            with lock:
                starting.append(1)
                lock.notify_all()
                # Give the other run time to start its cluster too, unless it is held back.
                overlapped.append(lock.wait_for(lambda: len(starting) >= 2, timeout=2))
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(distributed, "LocalCluster", Watched)
    results: list[object] = []
    errors: list[BaseException] = []

    def one_run(folder: Path) -> None:
        try:
            results.append(run(probe(4, folder), backend="dask", jobs=2, reporter=None))
        except BaseException as exc:
            errors.append(exc)

    folders = [tmp_path / "a", tmp_path / "b"]
    threads = [threading.Thread(target=one_run, args=(folder,)) for folder in folders]
    for folder, thread in zip(folders, threads, strict=True):
        folder.mkdir()
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 2
    assert all(r.ok for r in results)  # type: ignore[attr-defined]
    assert overlapped == [False, True], "the second cluster started while the first did"


def test_runs_at_once_keep_their_dask_settings_and_leave_none_behind(tmp_path: Path) -> None:
    """Each run set (and undid) the LocalCluster's settings in Dask's process-wide config:
    a run that began first and ended first took them from the other, still running, which
    then left them behind for every later cluster of the process."""
    before = [dask.config.get(key) for key in SETTINGS]
    errors: list[BaseException] = []

    def one_run(pipeline: Any) -> None:
        try:
            assert run(pipeline, backend="dask", jobs=2, reporter=None).ok
        except BaseException as exc:
            errors.append(exc)

    # The first run begins first, and ends once the second has an item running; that
    # item waits for "first-done", which the test makes once the first run has ended.
    first = threading.Thread(target=one_run, args=(probe(1, tmp_path, waits={0: ["start.1.*"]}),))
    second = threading.Thread(target=one_run, args=(probe(2, tmp_path, waits={1: ["first-done"]}),))
    first.start()
    wait_until(lambda: any(tmp_path.glob("start.0.*")), 60, "the first run's item to start")
    second.start()
    try:
        first.join(timeout=120)
        during = [dask.config.get(key) for key in SETTINGS]
    finally:
        (tmp_path / "first-done").touch()
        second.join(timeout=120)
    assert errors == []
    assert during == [0, "7 days"], "the second run lost its settings when the first ended"
    assert [dask.config.get(key) for key in SETTINGS] == before
