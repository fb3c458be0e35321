"""The job side: what ``python -m curator.backends.batch ROUND TASK`` runs in a batch job.

A job runs the units of its task through :class:`curator.Work`, in order. It
is two processes:

- the **supervisor** (the job's own process) forks a worker, watches the
  item it runs through a page of shared memory, kills it past the item's
  time limit, and when the worker dies writes down which item it was running
  (``crashed``, with its exit code, or ``timed_out``), then forks a fresh
  worker for the rest of the task. It watches the round's ``stop`` and
  ``kill`` files, and turns a signal to the job (``scancel``, the batch
  system's time limit) into a record blaming only the running item;
- the **worker** loads the work, runs the stages' ``setup(worker)``, then the
  items, appending what finished to the task's records file every
  :data:`~curator.backends.batch.worker.FLUSH_SECONDS` and at the end, and tears
  the stages down (:mod:`curator.backends.batch.worker`).

A job that runs again for the same task (a requeue) reads the task's records
first and runs only the items not yet finished.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any

from curator.backends.batch import records
from curator.backends.batch.folder import KILL, RoundFolder, Settings
from curator.backends.batch.records import Kind
from curator.backends.batch.worker import IDLE, SETTING_UP, TEARING_DOWN, Shared, worker_process
from curator.backends.spawning import describe_exit, signal_name

WATCH_SECONDS = 0.02
"""How often the supervisor looks at its worker (time limits, its death)."""
FILES_SECONDS = 0.1
"""How often the supervisor looks for the round's ``stop`` and ``kill`` files."""
MAX_LEAVES = 2
"""Times an item may be running when its job is told to leave before it is given up."""
LEAVE_SECONDS = 2.0
"""How long a worker told to leave may take to append what finished before it is killed."""


def main(path: str, task: str) -> int:
    """Run task ``task`` of the round in folder ``path``; the job's exit code."""
    folder = RoundFolder(path)
    if folder.superseded(task):
        return 0  # run again by the batch system after the run gave it up: its items went on
    settings = folder.settings()
    # The run's import path first (its modules as the run found them), then the job's own.
    sys.path[:] = [*settings.path, *(p for p in sys.path if p not in settings.path)]
    if settings.cwd is not None:
        with contextlib.suppress(OSError):
            os.chdir(settings.cwd)
    records_path = folder.records_path(task)
    done, leaves = _finished(records_path)
    indices, slot = folder.task(task)
    todo = [index for index in indices if index not in done]
    fd = os.open(records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    records.append(fd, Kind.HELLO, (os.getpid(), socket.gethostname(), time.time()))
    if folder.stop_level():  # asked to stop before it started: nothing to set up
        records.append(fd, Kind.END, (None, False, None))
        return 0
    for index, count in leaves.items():
        if count >= MAX_LEAVES and index in todo:  # it cannot finish within one job
            message = (
                f"item {index} was running each of the {count} times its job was told to "
                "leave (its time limit was near, or it was preempted); it is not run again"
            )
            records.append(fd, Kind.TIMEOUT, (index, time.time(), None, message))
            todo.remove(index)
    return _Supervisor(folder, settings, task, fd).run(todo, slot)


def _finished(path: str) -> tuple[set[int], dict[int, int]]:
    """What jobs of this task did before (the task runs again), the torn tail cut off.

    The items they finished, and how many times each item was running when
    its job was told to leave.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return set(), {}
    found, used = records.parse(data)
    if used < len(data):
        os.truncate(path, used)
    done = _done_in(found)
    leaves: dict[int, int] = {}
    for record in found:
        if record.kind is Kind.LEFT and record.body[1] is not None:
            leaves[record.body[1]] = leaves.get(record.body[1], 0) + 1
    return done, leaves


def _done_in(found: list[records.Record]) -> set[int]:
    """The items ``found`` says finished, or were blamed (never run again)."""
    done: set[int] = set()
    for record in found:
        if record.kind is Kind.ROWS and record.body[0] is not None:
            done.update(record.body[0])
        elif record.kind in (Kind.CRASH, Kind.TIMEOUT):
            done.add(record.body[0])
    return done


FRUITLESS_DEATHS = 3
"""Workers that may die in a row, finishing and blaming nothing, before the task gives up."""


class _Supervisor:
    def __init__(self, folder: RoundFolder, settings: Settings, task: str, fd: int) -> None:
        self.folder = folder
        self.settings = settings
        self.task = task
        self.fd = fd
        self.shared = Shared()
        self.signalled: int | None = None
        self.killed_for: int | None = None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, settings.leave_signal):
            if signum is not None:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signalled = signum

    def run(self, todo: list[int], slot: int) -> int:
        fruitless = 0
        while todo:
            offset = os.lseek(self.fd, 0, os.SEEK_END)
            ints = self.shared.ints
            ints[0], ints[2] = IDLE, 0
            pid = os.fork()
            if pid == 0:
                worker_process(self.folder, self.settings, self.fd, self.shared, slot, todo)
            status, left = self._watch(pid)
            running, started_any = int(ints[0]), int(ints[2]) > 0
            since = float(self.shared.since[0])
            found = self._written_since(offset)
            if any(r.kind in (Kind.END, Kind.SETUP_FAILED, Kind.SETUP_TIMEOUT) for r in found):
                return 0
            finished = _done_in(found)
            todo = [index for index in todo if index not in finished]
            code = os.waitstatus_to_exitcode(status)
            if left is not None:
                self._left(left, running if running in todo else None, since)
                return 128 + left
            if self.folder.stop_level() >= KILL:
                return 0  # the run is going away: nobody is blamed, nothing more is run
            timed_out = self.killed_for is not None and self.killed_for == running
            if running == TEARING_DOWN:
                stage = _last_stage(found)
                if timed_out:
                    records.append(self.fd, Kind.END, (None, True, stage))
                else:
                    problem = f"its worker (pid {pid}) {describe_exit(code)} in teardown"
                    records.append(self.fd, Kind.END, (problem, False, None))
                return 0
            if running == SETTING_UP and timed_out:
                limit = self.settings.setup_timeout
                records.append(self.fd, Kind.SETUP_TIMEOUT, (_last_stage(found), limit))
                return 0
            if running in todo:
                if timed_out:
                    limit = self.settings.timeout
                    records.append(self.fd, Kind.TIMEOUT, (running, since, limit, None))
                else:
                    message = f"worker of job task {self.task} (pid {pid}) {describe_exit(code)}"
                    records.append(self.fd, Kind.CRASH, (running, since, code, message))
                todo.remove(running)
                fruitless = 0
            elif finished:
                fruitless = 0
            else:
                fruitless += 1
                if not started_any or fruitless >= FRUITLESS_DEATHS:
                    return self._gave_up(pid, code, running, started_any)
            if self.folder.stop_level():
                break
        records.append(self.fd, Kind.END, (None, False, None))
        return 0

    def _written_since(self, offset: int) -> list[records.Record]:
        """The records the dead worker appended; a record it was killed writing is cut off."""
        path = self.folder.records_path(self.task)
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read()
        found, used = records.parse(data)
        if used < len(data):
            os.ftruncate(self.fd, offset + used)
        return found

    def _gave_up(self, pid: int, code: int, running: int, started_any: bool) -> int:
        from curator.model.outcome import ErrorInfo

        when = "in setup(worker)" if running == SETTING_UP else "before its first item"
        if started_any:
            when = f"{FRUITLESS_DEATHS} times in a row between items"
        message = (
            f"the worker of job task {self.task} (pid {pid}) {describe_exit(code)} {when}; "
            "its job's output (the batch system's log) says why"
        )
        error = ErrorInfo("WorkerCrash", message, exit_code=code)
        records.append(self.fd, Kind.SETUP_FAILED, (error,))
        return 1

    def _watch(self, pid: int) -> tuple[int, int | None]:
        """Wait for the worker ``pid`` to end, minding its time limits and the round's requests.

        Returns its wait status and the signal that asked the job to leave (or
        ``None``); :attr:`killed_for` names what it was killed for overrunning.
        """
        ints, since = self.shared.ints, self.shared.since
        limits = {
            SETTING_UP: self.settings.setup_timeout,
            TEARING_DOWN: self.settings.teardown_timeout,
        }
        self.killed_for = None
        left: int | None = None
        files_due = 0.0
        kill_at: float | None = None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, left
            now = time.time()
            running = ints[0]
            limit = limits.get(running, self.settings.timeout)
            overran = limit is not None and running != IDLE and now - since[0] > limit
            if self.killed_for is None and overran:
                self.killed_for = running  # blamed only if still running it when it died
                _kill(pid)
            if self.signalled is not None and left is None:
                left = self.signalled
                ints[1] = KILL  # the worker appends what finished, then leaves
                kill_at = now + LEAVE_SECONDS
            if now >= files_due:
                files_due = now + FILES_SECONDS
                level = self.folder.stop_level()
                if level > ints[1]:
                    ints[1] = level
                    if level >= KILL:
                        kill_at = now + LEAVE_SECONDS
            if kill_at is not None and now >= kill_at:
                _kill(pid)
            time.sleep(WATCH_SECONDS)

    def _left(self, signum: int, running: int | None, since: float) -> None:
        if signum == self.settings.leave_signal or self.folder.stop_level() or running is None:
            # Told to leave, or ended while the run stops, or between items: nobody's fault.
            records.append(self.fd, Kind.LEFT, (signum, running))
            return
        name = signal_name(signum)
        message = (
            f"job task {self.task} was ended by {name} (cancelled, or past the batch "
            f"system's time limit) while running item {running}"
        )
        records.append(self.fd, Kind.CRASH, (running, since, None, message))


def _last_stage(found: list[records.Record]) -> str | None:
    """The stage whose hook the worker announced last."""
    return next((r.body[1] for r in reversed(found) if r.kind is Kind.HOOK), None)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


__all__ = ["main"]
