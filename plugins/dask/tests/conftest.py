from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import curator_backend_dask.hooks as hooks
from curator import Registry
from curator.testing.processes import child_env
from curator.testing.registries import default_registry, isolated_registry
from curator.testing.waiting import wait_until

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

pytest_plugins = ["curator.testing.pytest_plugin"]


@pytest.fixture
def registry() -> Registry:
    return isolated_registry(("dask", hooks))


@pytest.fixture(autouse=True)
def _default_registry(registry: Registry) -> Iterator[None]:
    with default_registry(registry):
        yield


def io_loops() -> set[threading.Thread]:
    """The IO-loop threads of Dask clients (and clusters) running in this process."""
    return {thread for thread in threading.enumerate() if thread.name == "IO loop"}


@pytest.fixture(autouse=True)
def _no_io_loop_left() -> Iterator[None]:
    """No test leaves a Dask client's IO loop running in the test process.

    What is left running is closed by the garbage collector later, in whichever
    thread it collects in: in one starting another client, that close waits on
    distributed's loop lock, which the start holds (a 10 s failure in another
    test, or a hang; tests/test_dask_connect.py).
    """
    before = io_loops()
    yield
    deadline = time.monotonic() + 2.0  # a loop stopped by the test may take a moment to end
    while (left := io_loops() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"the test left {len(left)} Dask IO loop(s) running"


@contextmanager
def running_cluster(folder: Path) -> Iterator[Path]:
    """A real cluster of separate processes: `dask scheduler` and two `dask worker`s on loopback.

    Yields the scheduler file; every process is stopped on exit.
    """
    scheduler_file = folder / "scheduler.json"
    env = child_env(HERE, *sys.path)
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [
        subprocess.Popen(
            [
                *dask,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                # Its HTTP server would otherwise take port 8787, which a LocalCluster
                # started by another test wants too.
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        wait_until(scheduler_file.exists, 60, "the Dask scheduler to write its scheduler file")
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield scheduler_file
    finally:
        # Workers first: a worker closing while its scheduler is gone waits for it.
        _stop(procs[1:])
        _stop(procs[:1])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cluster shared by a module's tests; none of them may harm it."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as scheduler_file:
        yield scheduler_file


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cluster for one test alone, for tests that kill its workers."""
    with running_cluster(tmp_path_factory.mktemp("own-cluster")) as scheduler_file:
        yield scheduler_file
