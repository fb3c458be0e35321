"""``curator.Session`` on the process pool: warm workers across runs and retries, still fresh."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pp_pipelines import Numbers, WhereAmI
from pp_support import running, subprocess_env

from curator import Pipeline, RunResult, Session, SessionBusyError, Status, UsageError, run
from curator.testing.probes import probe, started
from curator.testing.waiting import wait_until

START_METHODS = multiprocessing.get_all_start_methods()


def _pids(outputs: list[list[str] | None]) -> set[str]:
    return {out[0] for out in outputs if out is not None}


@pytest.mark.parametrize("method", START_METHODS)
def test_runs_of_a_session_share_workers_and_each_sees_its_own_world(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = tmp_path / "mods"
    probe.mkdir()
    (probe / "probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(probe))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pipeline = Numbers(40).write(WhereAmI(probe=True))
    with Session(backend="process-pool", jobs=2, options={"start_method": method}) as session:
        monkeypatch.setenv("CURATOR_TEST_X", "first")
        first = session.run(pipeline, reporter=None)
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        monkeypatch.setenv("CURATOR_TEST_X", "second")
        second = session.run(pipeline, reporter=None)
        (probe / "probe.py").write_text("VALUE = 222\n")  # another size: a new mtime for sure
        os.utime(probe / "probe.py", (time.time() + 5, time.time() + 5))
        third = session.run(pipeline, reporter=None)
    assert first.ok
    assert second.ok
    assert third.ok
    assert _pids(first.outputs) == _pids(second.outputs)  # the same warm workers
    assert {(o[1], o[3]) for o in first.outputs if o} == {("first", "1")}
    assert {(o[1], Path(o[2]).name, o[3]) for o in second.outputs if o} == {
        ("second", "elsewhere", "1")
    }
    # The module changed on disk: its workers were replaced, and the edit is seen.
    assert {o[3] for o in third.outputs if o} == {"222"}
    assert not (_pids(third.outputs) & _pids(second.outputs))
    assert multiprocessing.active_children() == []


def test_retry_rounds_of_one_run_reuse_the_workers(tmp_path: Path) -> None:
    pipeline = Numbers(30).write(WhereAmI(fail_first=str(tmp_path / "failed-once")))
    result = run(pipeline, backend="process-pool", jobs=2, retries=1, reporter=None)
    assert result.ok
    retried = result.outcomes[0]
    assert retried.attempt == 2
    assert retried.value is not None
    assert retried.value[0] in _pids(result.outputs[1:])  # a worker of the first round
    assert multiprocessing.active_children() == []


def test_a_session_streams_and_says_what_it_fixes() -> None:
    with Session(backend="process-pool", jobs=2) as session:
        outcomes = list(session.stream(Numbers(25).write(WhereAmI()), reporter=None, ordered=True))
        assert [o.index for o in outcomes] == list(range(25))
        assert all(o.status is Status.OK for o in outcomes)
        with pytest.raises(UsageError, match="a session fixes backend, jobs"):
            session.run(Numbers(2).write(WhereAmI()), backend="thread-pool", jobs=3)
    with pytest.raises(UsageError, match="session is closed"):
        session.run(Numbers(2).write(WhereAmI()), reporter=None)
    with pytest.raises(UsageError, match="nosuch"):
        Session(backend="nosuch")
    with pytest.raises(UsageError, match="chunksize"):
        Session(backend="process-pool", options={"chunksize": 0})


IDLE_SESSION = """
import sys, time
from curator import Session
from pp_pipelines import Numbers, WhereAmI
session = Session(backend="process-pool", jobs=2, options={"start_method": sys.argv[1]})
result = session.run(Numbers(20).write(WhereAmI()), reporter=None)
print(" ".join(sorted({out[0] for out in result.outputs})), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_killing_the_parent_of_an_idle_session_leaves_no_worker(
    method: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", IDLE_SESSION, method],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        assert all(running(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    wait_until(lambda: not any(running(p) for p in pids), 5, "the workers to exit")


def test_a_run_from_a_second_thread_is_refused_and_the_first_runs_whole(tmp_path: Path) -> None:
    gated = probe(10, tmp_path, waits=dict.fromkeys(range(10), ("go",)))
    ended: dict[str, object] = {}

    def run_in_thread(name: str, pipeline: Pipeline[int]) -> None:
        try:
            ended[name] = session.run(pipeline, reporter=None)
        except SessionBusyError as exc:
            ended[name] = exc

    with Session(backend="process-pool", jobs=2) as session:
        first = threading.Thread(target=run_in_thread, args=("first", gated))
        first.start()
        wait_until(lambda: started(tmp_path), 30, "the first run's items to start")
        second = threading.Thread(
            target=run_in_thread, args=("second", Numbers(6).write(WhereAmI()))
        )
        second.start()
        second.join(60)
        (tmp_path / "go").touch()
        first.join(60)
        assert isinstance(ended["second"], SessionBusyError), ended["second"]
        assert "one run at a time" in str(ended["second"])
        result = ended["first"]
        assert isinstance(result, RunResult)
        assert result.counts() == {Status.OK: 10}
        assert session.run(Numbers(6).write(WhereAmI()), reporter=None).ok  # free again
    assert multiprocessing.active_children() == []
