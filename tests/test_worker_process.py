"""``curator.tie_to_run``: a worker process deaf to Ctrl-C that goes when the run goes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import curator
from curator.backends.worker_process import RUN_GONE_EXIT
from curator.testing.processes import running
from curator.testing.waiting import wait_until

WORKER = """
import sys, time
import curator
curator.tie_to_run(int(sys.argv[1]))
open(sys.argv[2], "w").close()
time.sleep(60)
"""


def _worker_of(run: subprocess.Popen[bytes], ready: Path) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(run.pid), str(ready)])
    wait_until(ready.exists, 30, "the worker to tie itself to the run")
    return worker


def test_the_worker_ignores_sigint_and_exits_when_the_run_is_killed(tmp_path: Path) -> None:
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = _worker_of(run, tmp_path / "ready")
    try:
        worker.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert worker.poll() is None, "a tied worker must ignore the terminal's Ctrl-C"
        run.kill()
        run.wait(10)
        killed = time.monotonic()
        assert worker.wait(10) == RUN_GONE_EXIT
        assert time.monotonic() - killed < 2.0
    finally:
        for process in (run, worker):
            if running(process.pid):
                process.kill()
            process.wait()


def test_a_worker_tied_to_a_run_already_gone_exits_at_once(tmp_path: Path) -> None:
    run = subprocess.Popen([sys.executable, "-c", "pass"])
    run.wait(10)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(run.pid), str(tmp_path / "r")])
    try:
        assert worker.wait(10) == RUN_GONE_EXIT
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_it_is_public() -> None:
    assert "tie_to_run" in curator.__all__
    assert curator.tie_to_run.__module__ == "curator.backends.worker_process"


BLOCKED = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set()))"


def test_a_process_started_while_starting_workers_holds_ctrl_c_back_until_it_ties() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with curator.starting_workers():
        held = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True)
        tied = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import curator, os; curator.tie_to_run(os.getppid()); {BLOCKED}",
            ],
            capture_output=True,
            text=True,
        )
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before, "the mask is restored"
    assert held.stdout.strip() == "True", held.stderr
    assert tied.stdout.strip() == "False", "tie_to_run ignores SIGINT, then unblocks it"
