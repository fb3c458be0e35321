"""What the workers cannot import, and a scheduler that dies.

The users' clusters are real `dask scheduler` and `dask worker` processes,
started in another directory than the run, with nothing of the run's folder on
their import path, as on machines of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from distributed import Client

from curator import UsageError, run
from curator.checkpoint.catalog import read as read_checkpoint
from curator.testing.events import EventRecorder
from curator.testing.probes import executions, pipeline_file, probe
from curator.testing.processes import child_env
from curator.testing.waiting import wait_until

HERE = Path(__file__).parent

NEEDS_HELPER = """
from helper_stage import Square

from curator import Source


class Numbers(Source):
    def __len__(self):
        return 20

    def __getitem__(self, index):
        yield index


pipeline = Numbers().write(Square())
"""

HELPER = """
from curator import Sink


class Square(Sink):
    def __call__(self, items, index):
        return [i * i for i in items]
"""


def _curator_run(
    target: str, cluster: Path | None, cwd: Path, *more: str
) -> subprocess.CompletedProcess[str]:
    options = ["-b", "dask", "-j", "2", "--json", "--reporter", "none", *more]
    if cluster is not None:
        options += ["-o", f"address={json.loads(cluster.read_text())['address']}"]
    return subprocess.run(
        [sys.executable, "-m", "curator", "run", target, *options],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(*sys.path),
        timeout=300,
    )


@pytest.mark.parametrize("where", ["users-cluster", "local-cluster"])
def test_a_pipeline_file_runs_on_workers_that_cannot_import_it(
    where: str, cluster: Path, tmp_path: Path
) -> None:
    # jobs/convert.py is imported as `convert` from jobs/ here. The user's workers
    # have no such module; the LocalCluster's do (they share this import path), and
    # get the copies that came by value all the same. Its results, objects of its
    # own class, pass the workers' check and come back as the run's own.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "convert.py").write_text(pipeline_file(20))
    on = cluster if where == "users-cluster" else None
    done = _curator_run("jobs/convert.py:pipeline", on, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 20
    # The checkpoint stored the results; a resume reads them back.
    resumed = _curator_run("jobs/convert.py:pipeline", on, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["skipped"] == 20


def test_workers_that_cannot_import_a_module_of_the_pipeline_name_it(
    cluster: Path, tmp_path: Path
) -> None:
    # The file travels by value, but what it imports from beside it does not.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "needs_helper.py").write_text(NEEDS_HELPER)
    (tmp_path / "jobs" / "helper_stage.py").write_text(HELPER)
    done = _curator_run("jobs/needs_helper.py:pipeline", cluster, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cannot load the pipeline" in done.stderr
    assert "No module named 'helper_stage'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr


def test_a_scheduler_killed_mid_run_is_a_clear_error_and_keeps_what_finished(
    own_cluster: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "items"
    folder.mkdir()
    store = tmp_path / "run.sqlite"
    with Client(scheduler_file=str(own_cluster), timeout="10s") as client:
        scheduler = client.run_on_scheduler(os.getpid)

    events = EventRecorder()

    def ten_outcomes() -> bool:  # reached the run, so the checkpoint has them too
        return len(events.of("task_finish")) >= 10

    def kill_the_scheduler() -> None:
        wait_until(ten_outcomes, 120, "ten outcomes to reach the run")
        os.kill(scheduler, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_scheduler)
    killer.start()
    try:
        with pytest.raises(UsageError, match="lost the Dask scheduler") as info:
            run(
                probe(400, folder, sleep=0.1),
                backend="dask",
                reporter=events,
                checkpoint=store,
                options={"scheduler_file": str(own_cluster)},
            )
    finally:
        killer.join()
    assert "--resume" in str(info.value)
    recorded = read_checkpoint(store).counts
    assert recorded.get("ok", 0) >= 10, recorded
    assert recorded["ok"] <= len(executions(folder))


def test_a_scheduler_without_workers_is_a_clear_error(tmp_path: Path) -> None:
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=0, dashboard_address=":0")  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(UsageError, match="no Dask worker is running") as info:
            run(
                probe(4, tmp_path, sleep=0.0),
                backend="dask",
                reporter=None,
                options={"address": cluster.scheduler_address},
            )
    finally:
        cluster.close()
    assert "No valid workers found" in str(info.value)
    assert "--resume" not in str(info.value)  # nothing ran


def test_a_local_cluster_whose_client_fails_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LocalCluster is up when its Client is made: if that fails, its worker
    processes must not outlive the run (they did, until the interpreter's exit)."""
    import distributed

    from curator.testing import processes

    before = processes.children()

    class Refused(distributed.Client):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise OSError("the client refused to start")

    monkeypatch.setattr(distributed, "Client", Refused)
    with pytest.raises(OSError, match="the client refused to start"):
        run(probe(4, tmp_path), backend="dask", jobs=2, reporter=None)
    wait_until(
        lambda: not (processes.children() - before - processes.interpreter_helpers()),
        30,
        "the LocalCluster's worker processes to end",
    )
