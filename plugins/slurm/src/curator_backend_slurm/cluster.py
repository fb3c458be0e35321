"""What the backend asks Slurm, through its commands: partitions, limits, live jobs, cancel.

Job state comes from ``squeue`` (and the job folder's records), never from
``sacct``: clusters without accounting storage have no ``sacct``, and
``squeue`` answers from the controller's memory.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Collection

from curator import UsageError

TIMEOUT = 60.0
"""Seconds a Slurm command may take before the backend gives up on it."""


def slurm(*command: str) -> str:
    """Run a Slurm command; its output, or a :class:`curator.UsageError` with its message."""
    if shutil.which(command[0]) is None:
        raise UsageError(
            f"the slurm backend needs Slurm's {command[0]} on PATH; run curator on a "
            "login node of the cluster (or load Slurm's module first)"
        )
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise UsageError(f"{' '.join(command)} did not answer within {TIMEOUT:g} s") from exc
    if done.returncode != 0:
        raise UsageError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def partitions() -> dict[str, bool]:
    """The cluster's partitions, each with whether it is the default one."""
    found = {}
    for line in slurm("sinfo", "-h", "-o", "%P").split():
        found[line.rstrip("*")] = line.endswith("*")
    return found


def check_partition(name: str | None) -> None:
    """Refuse a partition the cluster does not have, naming those it has."""
    known = partitions()
    if name is not None and name not in known:
        raise UsageError(
            f"Slurm has no partition {name!r}; this cluster has: {', '.join(sorted(known))}"
        )


def max_array_size() -> int:
    """The cluster's ``MaxArraySize``: array indices must stay below it."""
    for line in slurm("scontrol", "show", "config").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            return int(value.strip())
    return 1001  # Slurm's default


def default_minutes(partition: str | None) -> int:
    """Minutes a job may run when it asks for no limit (0: unlimited).

    The partition's default time, else its maximum.
    """
    name = partition or next((p for p, default in partitions().items() if default), None)
    if name is None:
        return 0
    fields = dict(
        item.split("=", 1)
        for item in slurm("scontrol", "show", "partition", name, "-o").split()
        if "=" in item
    )
    for key in ("DefaultTime", "MaxTime"):
        minutes = _minutes(fields.get(key, "NONE"))
        if minutes is not None:
            return minutes
    return 0


def _minutes(value: str) -> int | None:
    """Slurm's ``[days-]hours:minutes:seconds`` (or ``UNLIMITED``/``NONE``) in minutes."""
    if value in ("NONE", "UNLIMITED", "INFINITE"):
        return None
    days, _, clock = value.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


NEVER_STARTS = frozenset({
    "AssocMaxCpuPerJobLimit", "AssocMaxNodePerJobLimit", "AssocMaxWallDurationPerJobLimit",
    "BadConstraints", "DependencyNeverSatisfied", "InvalidAccount", "InvalidQOS",
    "PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "QOSMaxCpuPerJobLimit",
    "QOSMaxGRESPerJob", "QOSMaxMemoryPerJob", "QOSMaxNodePerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
})  # fmt: skip
"""``squeue`` reasons of a pending job that Slurm will never start as it is."""


def live(job_ids: Collection[str]) -> dict[str, str] | None:
    """Which of ``job_ids`` (``ARRAY_TASK``) still wait or run, and why each waits.

    The reason is ``""`` once the job runs; ``None`` if squeue did not answer.
    """
    if not job_ids:
        return {}
    arrays = sorted({job.split("_")[0] for job in job_ids})
    try:
        listed = slurm("squeue", "-h", "-r", "-o", "%i %T %r", "-j", ",".join(arrays))
    except UsageError:
        return None  # the controller is busy or restarting: ask again later
    found = {}
    for line in listed.splitlines():
        job, state, reason = [*line.split(None, 2), "", ""][:3]
        if job in job_ids:
            found[job] = reason if state == "PENDING" else ""
    return found


def cancel(job_ids: Collection[str], wait: float = 30.0) -> None:
    """``scancel`` the jobs, then wait (up to ``wait`` s) until squeue no longer lists them.

    Jobs that may still be there then (Slurm did not answer) are named in a
    warning with the command that cancels them: left queued, they would start
    later, only to find the run gone.
    """
    if not job_ids:
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # the wait below tells
        subprocess.run(
            ["scancel", *sorted(job_ids)], capture_output=True, timeout=TIMEOUT, check=False
        )
    deadline = time.monotonic() + wait
    left: dict[str, str] | None = None
    while time.monotonic() < deadline:
        left = live(job_ids)
        if left == {}:
            return
        time.sleep(0.5)
    named = sorted(job_ids if left is None else left)
    logging.getLogger("curator").warning(
        "Slurm did not confirm that jobs %s were cancelled%s; to be sure, run: scancel %s",
        ", ".join(named),
        " (squeue did not answer)" if left is None else "",
        " ".join(named),
    )
