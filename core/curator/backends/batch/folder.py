"""A round's job folder: what the jobs of one round read, and where they write.

Laid out as::

    ROUND/
      settings.json      time limits, the backend's name, the run's import path
      work.pkl           the run's Work, pickled once for every job
      tasks/T.json       the items of task T (whole units, in order), its worker's slot
      tasks/T.json.superseded   present: task T was given up, its items went elsewhere
      records/T.rec      what the job of task T appended (see records.py)
      stop               present: finish the running item, start no other
      kill               present: leave at once
      closed             present: the run saw the round through (nothing to adopt)
      adopted            present: a resumed run took what the round's jobs did

The folder must be one every job can reach (a shared file system on a
cluster). Nothing in it is specific to a batch system.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field

STOP, KILL = 1, 2
"""Levels of :meth:`RoundFolder.stop_level`: finish the running item; leave at once."""


@dataclass(frozen=True)
class Settings:
    """What every job of a round needs besides the work (``settings.json``)."""

    backend: str
    jobs: int
    attempt: int = 1
    timeout: float | None = None
    setup_timeout: float | None = None
    teardown_timeout: float | None = None
    path: list[str] = field(default_factory=list)
    """The run's ``sys.path``, so that the work unpickles where modules were found."""
    cwd: str | None = None
    leave_signal: int | None = None
    """A signal that asks a job to leave and come back (preemption): nobody is blamed."""
    run_key: str | None = None
    """The run's checkpoint (:attr:`curator.Backend.run_key`): a resumed run adopts what
    the rounds of its checkpoint did."""


class RoundFolder:
    """The folder of one round (see the module's docstring).

    Parameters
    ----------
    path
        The round's folder; made by :meth:`create`.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def create(cls, path: str, work: bytes, settings: Settings) -> RoundFolder:
        """Make the folder at ``path`` with the pickled work and the settings."""
        os.makedirs(os.path.join(path, "tasks"))
        os.makedirs(os.path.join(path, "records"))
        folder = cls(path)
        _write(folder.work_path, work)
        _write(os.path.join(path, "settings.json"), json.dumps(asdict(settings)).encode())
        return folder

    @property
    def work_path(self) -> str:
        """The pickled work."""
        return os.path.join(self.path, "work.pkl")

    def settings(self) -> Settings:
        """The round's settings."""
        with open(os.path.join(self.path, "settings.json"), "rb") as file:
            return Settings(**json.load(file))

    def write_task(self, task: str, indices: list[int], slot: int) -> None:
        """Give task ``task`` its items (whole units, in order) and its worker's slot."""
        _write(self._task_path(task), json.dumps({"indices": indices, "slot": slot}).encode())

    def task(self, task: str) -> tuple[list[int], int]:
        """The items of task ``task``, in the order its job runs them, and its worker's slot."""
        with open(self._task_path(task), "rb") as file:
            found = json.load(file)
        return list(found["indices"]), int(found["slot"])

    def task_names(self) -> list[str]:
        """The round's tasks that were not given up, in the order they were made."""
        names = [
            name[: -len(".json")]
            for name in os.listdir(os.path.join(self.path, "tasks"))
            if name.endswith(".json")
        ]
        ordered = sorted(names, key=lambda name: (len(name), name))
        return [name for name in ordered if not self.superseded(name)]

    def close(self) -> None:
        """Mark the round seen through by its run: a resumed run has nothing to adopt here."""
        _write(os.path.join(self.path, "closed"), b"")

    @property
    def closed(self) -> bool:
        """Whether the round's run saw it through (see :meth:`close`)."""
        return os.path.exists(os.path.join(self.path, "closed"))

    def mark_adopted(self) -> None:
        """Mark the round settled by a later run of its checkpoint.

        A resume took what its jobs did; a run that started over stopped them and
        does every item again. Either way no later run adopts it.
        """
        _write(os.path.join(self.path, "adopted"), b"")

    @property
    def adopted(self) -> bool:
        """Whether a resumed run took what the round's jobs did (see :meth:`mark_adopted`)."""
        return os.path.exists(os.path.join(self.path, "adopted"))

    def supersede(self, task: str) -> None:
        """Mark task ``task`` given up: its items went out in other tasks.

        A job of it that starts later (the batch system ran it again) leaves at once.
        """
        _write(self._task_path(task) + ".superseded", b"")

    def superseded(self, task: str) -> bool:
        """Whether task ``task`` was given up (see :meth:`supersede`)."""
        return os.path.exists(self._task_path(task) + ".superseded")

    def records_path(self, task: str) -> str:
        """Where the jobs of task ``task`` append their records."""
        return os.path.join(self.path, "records", f"{task}.rec")

    def command(self, task: str, python: str | None = None) -> list[str]:
        """What a job of task ``task`` runs: ``python -m curator.backends.batch ROUND T``."""
        return [python or sys.executable, "-m", "curator.backends.batch", self.path, task]

    def request(self, level: int) -> None:
        """Ask every job to stop (:data:`STOP`) or leave at once (:data:`KILL`)."""
        name = "kill" if level >= KILL else "stop"
        _write(os.path.join(self.path, name), b"")

    def stop_level(self) -> int:
        """What was requested of the jobs: 0, :data:`STOP` or :data:`KILL`."""
        if os.path.exists(os.path.join(self.path, "kill")):
            return KILL
        return STOP if os.path.exists(os.path.join(self.path, "stop")) else 0

    def _task_path(self, task: str) -> str:
        return os.path.join(self.path, "tasks", f"{task}.json")


def _write(path: str, data: bytes) -> None:
    """Write ``path`` whole or not at all: readers on other machines never see half of it."""
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "wb") as file:
        file.write(data)
    os.replace(partial, path)
