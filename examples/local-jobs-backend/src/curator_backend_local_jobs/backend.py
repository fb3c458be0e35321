"""Each job a process on this machine: the batch system part of a batch backend, and no more.

curator's :class:`~curator.backends.batch.BatchBackend` does the rest: the
work pickled once into the round's folder, tasks of whole units, the records
each job appends read back as outcomes, crash and timeout blame, requeues.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from curator.backends.batch.backend import BatchBackend

if TYPE_CHECKING:  # every run imports this module: only what the class needs, at once
    from curator.backends.batch.folder import RoundFolder


class LocalJobsBackend(BatchBackend):
    """Runs each task as a job: a process of its own session, its output in a log file."""

    name = "local-jobs"
    description = "batch jobs as local processes (a worked example of a batch backend)"

    def __init__(self, options: object, jobs: int) -> None:
        super().__init__(options, jobs)
        self.jobs_running: dict[tuple[str, str], subprocess.Popen[bytes]] = {}

    def submit(self, folder: RoundFolder, tasks: Sequence[str]) -> None:
        """Start one process per task, in a session of its own (as a batch system would)."""
        for task in tasks:
            with open(os.path.join(folder.path, f"job-{task}.log"), "ab") as log:
                job = subprocess.Popen(
                    folder.command(task), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            self.jobs_running[folder.path, task] = job

    def ended(self, folder: RoundFolder, tasks: Collection[str]) -> set[str]:
        """The tasks whose process has exited (and is reaped), or was never ours and is gone."""
        gone = set()
        for task in tasks:
            job = self.jobs_running.get((folder.path, task))
            if job is None:  # started by an earlier run's process: is its job still there?
                started = self.job_process(folder, task)
                if started is None or not os.path.exists(f"/proc/{started[0]}"):
                    gone.add(task)
            elif job.poll() is not None:
                self.jobs_running.pop((folder.path, task), None)
                gone.add(task)
        return gone

    def log_tail(self, folder: RoundFolder, task: str) -> str:
        """The end of the job's log, for the error when a job ended before its task started."""
        try:
            with open(os.path.join(folder.path, f"job-{task}.log"), "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def cancel(self, folder: RoundFolder, tasks: Collection[str]) -> None:
        """Kill each task's whole process group, as ``scancel`` would, and reap it."""
        for task in tasks:
            job = self.jobs_running.pop((folder.path, task), None)
            if job is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job.pid, signal.SIGKILL)
                job.wait()
