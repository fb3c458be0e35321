"""Batch-job machinery: a backend whose workers are jobs of a batch system, minus the system.

A batch backend subclasses :class:`~curator.backends.batch.backend.BatchBackend`
and implements three methods: submit a task's job, say which jobs have
ended, cancel jobs. Everything else is here, written once for every batch
system (see ``docs/plugins.md``, "A batch backend"):

- :mod:`~curator.backends.batch.folder`: a round's folder on a file system every
  job can reach: the work pickled once, each task's items, stop and kill requests;
- :mod:`~curator.backends.batch.job`: what a job runs
  (``python -m curator.backends.batch ROUND TASK``): a supervisor that forks a
  worker, blames the item a dead worker was running, enforces time limits,
  and turns a signal to the job into a record;
- :mod:`~curator.backends.batch.records`: the framed records a job appends,
  read back as they come, a torn last one skipped;
- :mod:`~curator.backends.batch.backend`: the run's side, turning records into
  outcomes and sending a dead job's unfinished items out again.

Importing the package imports none of them.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("BatchBackend", "BatchOptions"):
        from curator.backends.batch import backend

        return getattr(backend, name)
    if name in ("RoundFolder", "Settings"):
        from curator.backends.batch import folder

        return getattr(folder, name)
    raise AttributeError(f"module 'curator.backends.batch' has no attribute {name!r}")
