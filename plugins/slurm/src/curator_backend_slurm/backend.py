"""The ``slurm`` backend: curator's batch-job machinery with Slurm job arrays as the jobs.

Everything but the batch system comes from :class:`curator.backends.batch.backend.BatchBackend`:
the work pickled once into a job folder on the shared file system, tasks of
whole units, per-item crash blame, time limits, requeues, the records each
task appends read back as outcomes. This module submits the tasks as job
arrays (with submitit, which writes the ``sbatch`` script), asks ``squeue``
which tasks still wait or run, and cancels them with ``scancel``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from curator import UsageError, option
from curator.backends.batch.backend import BatchBackend, BatchOptions
from curator_backend_slurm import cluster
from curator_backend_slurm.job import LEAVE_SIGNAL, run_task

if TYPE_CHECKING:  # every run imports this module: only what the class needs, at once
    from curator.backends.batch.folder import RoundFolder


_SET_BY_THE_BACKEND = {
    "array": "the backend makes the array itself",
    "job-name": "its jobs are named curator (what 'scancel --name=curator' finds)",
    "output": "it reads each job's own log for error messages",
    "error": "it reads each job's own log for error messages",
    "requeue": "it requeues its jobs itself",
    "no-requeue": "it requeues its jobs itself",
    "signal": "give signal_before_limit",
    "time": "give time_limit",
    "partition": "give partition",
    "cpus-per-task": "give cpus_per_task",
    "mem": "give mem",
    "gpus-per-task": "give gpus_per_task",
    "account": "give account",
    "qos": "give qos",
}
"""``sbatch`` options the backend sets from its own options, or must set as it does."""


@dataclass(frozen=True)
class SlurmOptions(BatchOptions):
    """How the jobs are asked for: what ``sbatch`` gets."""

    job_folder: str | None = option(
        None,
        help="folder on a file system every node reaches, for the jobs' work, tasks, records "
        "and logs (default: curator-jobs in the working directory)",
    )

    partition: str | None = option(None, help="partition to submit to (default: the cluster's)")
    time_limit: int | None = option(
        None,
        help="minutes each job may run, sbatch --time (default: the partition's default or "
        "maximum)",
    )
    cpus_per_task: int = option(1, help="CPUs per job, sbatch --cpus-per-task")
    mem: str | None = option(None, help="memory per job, sbatch --mem (such as 4G)")
    gpus_per_task: int | None = option(None, help="GPUs per job, sbatch --gpus-per-task")
    account: str | None = option(None, help="account to charge, sbatch --account")
    qos: str | None = option(None, help="quality of service, sbatch --qos")
    sbatch: tuple[str, ...] = option(
        (), help="more sbatch options, one per entry ('--constraint=a100', '--exclusive')"
    )
    setup: tuple[str, ...] = option(
        (), help="shell lines each job runs first ('module load cuda', 'source venv/bin/activate')"
    )
    signal_before_limit: int = option(
        90,
        help="seconds before its time limit a job is told to leave and requeue itself "
        "(sbatch --signal=USR2@N): its unfinished items run again, its running item blamed "
        "for nothing",
    )
    max_array_size: int | None = option(
        None, help="tasks per job array (default: the cluster's MaxArraySize)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.signal_before_limit < 0:
            raise ValueError(
                f"signal_before_limit must be 0 or more seconds, not {self.signal_before_limit}"
            )
        if self.mem is not None and not re.fullmatch(r"[0-9]+[KMGTkmgt]?", self.mem):
            raise ValueError(
                f"mem is sbatch --mem: a number of megabytes or one with a unit K, M, G or T "
                f"(such as 4G), not {self.mem!r}"
            )
        for name in ("cpus_per_task", "gpus_per_task", "time_limit", "max_array_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be 1 or more, not {value}")
        for line in self.sbatch:
            if not line.startswith("--"):
                raise ValueError(
                    f"sbatch entries are long options such as '--constraint=a100', not {line!r}"
                )
            why = _SET_BY_THE_BACKEND.get(line[2:].partition("=")[0])
            if why is not None:
                raise ValueError(f"sbatch entry {line!r} is one the backend sets itself: {why}")


class SlurmBackend(BatchBackend):
    """Runs each task of a round as one task of a Slurm job array."""

    name = "slurm"
    description = "Slurm job arrays: per-item blame, time limits, requeue; jobs = tasks at once."
    requires = ("cloudpickle", "submitit")
    Options: ClassVar[type[Any]] = SlurmOptions
    poll_seconds: ClassVar[float] = 0.25
    state_seconds: ClassVar[float] = 1.0
    leave_signal: ClassVar[int | None] = LEAVE_SIGNAL
    min_items_per_task: ClassVar[int] = 8
    waits_for_exit: ClassVar[bool] = False
    silence_seconds: ClassVar[float] = 30.0
    """How long squeue may not answer before the run says that it waits on Slurm."""

    def __init__(self, options: SlurmOptions, jobs: int) -> None:
        super().__init__(options, jobs)
        self.job_ids: dict[tuple[str, str], str] = {}
        """``(round folder, task)`` -> Slurm's id of its array task (``1234_5``)."""
        self._parameters: dict[str, Any] | None = None
        self._array_size = 1
        self._silent_since: float | None = None
        """Since when squeue has not answered (``time.monotonic``); ``None`` while it does."""
        self._told_silence = False

    def check(self) -> None:
        """Check the options against the cluster (partition, time limit, array size).

        Before every run, and alone for ``curator run --dry-run``; nothing is submitted.
        """
        self._parameters = self.parameters()
        options: SlurmOptions = self.options
        largest = cluster.max_array_size()
        if options.max_array_size is not None and options.max_array_size > largest:
            raise UsageError(
                f"max_array_size={options.max_array_size} is above this cluster's "
                f"MaxArraySize ({largest}); give {largest} or less, or leave it out"
            )
        self._array_size = options.max_array_size or largest

    def parameters(self) -> dict[str, Any]:
        """What submitit's ``SlurmExecutor.update_parameters`` gets (checked with the cluster)."""
        options: SlurmOptions = self.options
        cluster.check_partition(options.partition)
        minutes = options.time_limit or cluster.default_minutes(options.partition)
        if minutes and options.signal_before_limit >= minutes * 60:  # 0: no limit
            raise UsageError(
                f"signal_before_limit={options.signal_before_limit} s is not below the jobs' "
                f"time limit ({minutes} min): every job would be told to leave as it starts, "
                "and its items would time out. Give a smaller signal_before_limit "
                "(-o signal_before_limit=30) or a longer time_limit"
            )
        extra: dict[str, Any] = {}
        for line in options.sbatch:
            key, _, value = line[2:].partition("=")
            extra[key.replace("-", "_")] = value or True
        chosen = {
            "job_name": "curator",
            "partition": options.partition,
            "time": minutes,
            "cpus_per_task": options.cpus_per_task,
            "mem": options.mem,
            "gpus_per_task": options.gpus_per_task,
            "account": options.account,
            "qos": options.qos,
            "setup": list(options.setup) or None,
            "signal_delay_s": options.signal_before_limit,
            "array_parallelism": self.jobs,
            "stderr_to_stdout": True,
            "additional_parameters": {"requeue": True, **extra},
        }
        return {key: value for key, value in chosen.items() if value is not None}

    @classmethod
    def default_job_folder(cls) -> str:
        """``curator-jobs`` in the working directory: on a cluster, a shared file system."""
        return os.path.abspath("curator-jobs")

    def room(self, live: int) -> int:
        """A whole array (``%jobs`` runs at once) when none is out."""
        return self._array_size if live == 0 else 0

    def submit(self, folder: RoundFolder, tasks: Sequence[str]) -> None:
        """Submit ``tasks`` as one job array (submitit writes and submits the script)."""
        from curator_backend_slurm.submitting import submit_array

        parameters = self._parameters if self._parameters is not None else self.parameters()
        jobs = submit_array(
            os.path.join(folder.path, "slurm"), parameters, run_task,
            [folder.path] * len(tasks), list(tasks),
        )  # fmt: skip
        for task, job in zip(tasks, jobs, strict=True):
            self.job_ids[folder.path, task] = job.job_id
        known = {t: j for (path, t), j in self.job_ids.items() if path == folder.path}
        with open(os.path.join(folder.path, "jobs.json.partial"), "w") as file:
            json.dump(known, file)  # a resumed run finds the jobs of this one here
        os.replace(os.path.join(folder.path, "jobs.json.partial"), self._ids_path(folder))

    def _ids_path(self, folder: RoundFolder) -> str:
        return os.path.join(folder.path, "jobs.json")

    def _job_id(self, folder: RoundFolder, task: str) -> str | None:
        """Slurm's id of the task's array task.

        Read from the round's ``jobs.json`` when an earlier process submitted it.
        """
        if (folder.path, task) not in self.job_ids:
            try:
                with open(self._ids_path(folder)) as file:
                    for name, job in json.load(file).items():
                        self.job_ids.setdefault((folder.path, name), job)
            except (OSError, ValueError):
                return None
        return self.job_ids.get((folder.path, task))

    def ended(self, folder: RoundFolder, tasks: Collection[str]) -> set[str]:
        """The tasks squeue no longer lists (none when squeue does not answer).

        Raises
        ------
        UsageError
            When Slurm will never start a pending task as it was asked for (its
            time limit above the partition's, an account it does not know, ...).
        """
        ids = {task: self._job_id(folder, task) for task in tasks}
        known = {job for job in ids.values() if job is not None}
        asked = time.monotonic()
        still = cluster.live(known)
        if still is None:
            self._not_answering(asked)
            return set()
        if known:  # squeue was asked, and answered
            if self._told_silence:
                logging.getLogger("curator").warning("Slurm's squeue answers again")
            self._silent_since, self._told_silence = None, False
        for job, reason in still.items():
            if reason in cluster.NEVER_STARTS:
                raise UsageError(
                    f"Slurm will never start job {job} as asked: it waits for "
                    f"{reason!r} (see 'squeue --start -j {job}'); fix the options "
                    "(time_limit, partition, account, qos, ...) and run again"
                )
        return {task for task, job in ids.items() if job not in still}

    def _not_answering(self, asked: float) -> None:
        """Say once when squeue has not answered since a while: the run waits on Slurm.

        ``asked``: when the call that failed began (one that timed out took a minute).
        """
        now = time.monotonic()
        if self._silent_since is None:
            self._silent_since = asked
        if not self._told_silence and now - self._silent_since >= self.silence_seconds:
            self._told_silence = True
            logging.getLogger("curator").warning(
                "Slurm's squeue has not answered for %.0f s (its controller is busy or down): "
                "the run waits for it, and records items as their jobs finish. Ctrl-C stops "
                "the run; its jobs are cancelled once Slurm answers, or curator names the "
                "scancel command that cancels them",
                now - self._silent_since,
            )

    def log_tail(self, folder: RoundFolder, task: str) -> str:
        """The end of the task's Slurm output (submitit's log), for error messages."""
        job = self._job_id(folder, task)
        if job is None:
            return ""
        try:
            with open(os.path.join(folder.path, "slurm", f"{job}_0_log.out"), "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def cancel(self, folder: RoundFolder, tasks: Collection[str]) -> None:
        """``scancel`` the tasks' array tasks and wait until they are gone.

        Also those an earlier process submitted (a resume adopting a killed run's
        round cancels its queued tasks): their ids are read from the round's folder.
        """
        ids = {self._job_id(folder, task) for task in tasks}
        cluster.cancel({job for job in ids if job is not None})

    def script(self, tasks: int) -> str:
        """The ``sbatch`` script an array of ``tasks`` tasks would be submitted with."""
        from submitit.slurm.slurm import _make_sbatch_string

        parameters = dict(self._parameters if self._parameters is not None else self.parameters())
        command = "python -u -m submitit.core._submit " + shlex.quote("FOLDER")
        return str(_make_sbatch_string(command=command, folder="FOLDER", map_count=tasks,
                                       **parameters))  # fmt: skip
