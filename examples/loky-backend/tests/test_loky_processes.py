"""The loky backend's workers and the run's process: a terminal's Ctrl-C, a killed run.

Each test runs a real run in a child process of its own session (as a shell
starts a command), with real loky workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from curator.testing.probes import executions, started
from curator.testing.processes import descendants, running
from curator.testing.waiting import wait_until

RUN = """
import json, sys
import curator
from curator.testing.probes import probe

try:
    result = curator.run(
        probe(40, sys.argv[1], sleep=float(sys.argv[2])), backend="loky", jobs=2,
        on_error="continue", reporter=None,
    )
except curator.RunInterrupted as stopped:
    result = stopped.result
ran = {o.index: o.status.value for o in result.outcomes if o.status.value != "cancelled"}
print(json.dumps(ran))
"""


def _start(folder: Path, sleep: float, output: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(folder), str(sleep)],
        stdout=output,
        stderr=output,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_a_terminal_ctrl_c_lets_the_running_items_finish(tmp_path: Path) -> None:
    """The terminal signals the whole group: the workers ignore it, the run stops dispatching."""
    proc = _start(tmp_path, 1.5)
    try:
        wait_until(lambda: len(started(tmp_path)) >= 2, 60, "two items to start")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    statuses = json.loads(out)
    assert statuses, err
    assert set(statuses.values()) == {"ok"}, f"running items must finish, not fail: {statuses}"
    assert {str(e.index) for e in executions(tmp_path)} == set(statuses)


def test_the_workers_do_not_outlive_a_killed_run(tmp_path: Path) -> None:
    """SIGKILL of the run's process alone: its loky workers exit within seconds."""
    proc = _start(tmp_path, 30.0, subprocess.DEVNULL)  # workers left behind would hold a pipe
    try:
        wait_until(lambda: len(started(tmp_path)) >= 2, 60, "two items to start")
        tree = {pid for pid in descendants(proc.pid) if running(pid)}
        assert len(tree) >= 2, f"expected the run's loky workers, found {tree}"
        proc.kill()
        proc.wait(30)
        killed = time.monotonic()
        while any(running(pid) for pid in tree) and time.monotonic() - killed < 3.0:
            time.sleep(0.02)
        left = sorted(pid for pid in tree if running(pid))
        assert not left, f"processes still running 3 s after the run was killed: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
