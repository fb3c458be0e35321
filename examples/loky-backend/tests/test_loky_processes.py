"""The loky backend's workers: a terminal's Ctrl-C, a killed run, a worker that dies.

The signal tests run a real run in a child process of its own session (as a
shell starts a command); every test has real loky workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import curator
from curator.testing.probes import executions, probe, started
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


def _ctrl_c_once(proc: subprocess.Popen[str], when: Callable[[], object], what: str) -> str:
    """Ctrl-C to the run's whole group once ``when`` holds; the run's stdout (stderr checked)."""
    try:
        wait_until(when, 60, what)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "KeyboardInterrupt" not in err, err
    return out


def test_a_terminal_ctrl_c_lets_the_running_items_finish(tmp_path: Path) -> None:
    """The terminal signals the whole group: the workers ignore it, the run stops dispatching."""
    proc = _start(tmp_path, 1.5)
    out = _ctrl_c_once(proc, lambda: len(started(tmp_path)) >= 2, "two items to start")
    statuses = json.loads(out)
    assert statuses
    assert set(statuses.values()) == {"ok"}, f"running items must finish, not fail: {statuses}"
    assert {str(e.index) for e in executions(tmp_path)} == set(statuses)


def _loky_workers(pid: int) -> set[int]:
    found = set()
    for child in descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"popen_loky_posix" in command:
            found.add(child)
    return found


def test_a_ctrl_c_while_the_workers_start_reaches_none_of_them(tmp_path: Path) -> None:
    """Sent the moment the first worker process exists, before it could tie itself to the run."""
    proc = _start(tmp_path, 1.0)
    out = _ctrl_c_once(proc, lambda: _loky_workers(proc.pid), "a loky worker to start")
    statuses = json.loads(out)
    assert set(statuses.values()) <= {"ok"}, f"the submitted items must finish: {statuses}"


def test_a_dead_worker_costs_only_its_item_and_a_retry_runs_it_again(tmp_path: Path) -> None:
    """loky fails every item of the broken pool: the backend runs them alone to find the one."""
    result = curator.run(
        probe(40, tmp_path, crash=frozenset({5}), sleep=0.05), backend="loky", jobs=2,
        retries=1, on_error="continue", reporter=None,
    )  # fmt: skip
    assert [o.index for o in result.outcomes if not o.ok] == [5]
    crashed = result.outcomes[5]
    assert crashed.attempt == 2
    assert crashed.error is not None
    assert crashed.error.exit_code == 7
    assert "the loky worker running this item died" in crashed.error.message


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
