"""What a Slurm array task runs (through submitit): one task of a round, then a requeue if asked.

A task signalled before its time limit (``--signal=USR2@...``, sent by
Slurm ``signal_before_limit`` seconds before the limit, or by a preemption
script) leaves without blaming its running item, and requeues itself: Slurm
runs it again later, and the task runs only the items its records lack.
"""

from __future__ import annotations

import os
import signal
import subprocess

LEAVE_SIGNAL = signal.SIGUSR2
"""The signal that asks a task to leave and come back."""


def run_task(round_folder: str, task: str) -> int:
    """Run task ``task`` of the round in ``round_folder``; requeue it when it left."""
    from curator.backends.batch.job import main

    code = main(round_folder, task)
    if code == 128 + LEAVE_SIGNAL:
        array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        job = f"{array}_{index}" if array and index else os.environ.get("SLURM_JOB_ID", "")
        if job:
            subprocess.run(["scontrol", "requeue", job], capture_output=True, check=False)
    return code
