"""Adopting what the jobs of an earlier, killed run of the same checkpoint did.

Batch jobs do not depend on the process that submitted them: when ``curator
run`` dies (its shell closed, the login node rebooted), its jobs run on and
append to their records. A resumed run (the same checkpoint:
:attr:`curator.Backend.run_key`) looks in the job folder for those rounds,
asks their jobs still running to finish their running item and stop, cancels
those still queued, and takes the items they finished as its own outcomes: an
item they finished is neither lost nor run again. A round its run saw through
(``closed``) is never looked at again.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING

from curator.backends.batch import outcomes
from curator.backends.batch.folder import STOP, RoundFolder
from curator.backends.batch.records import Kind, Reader, Record
from curator.backends.columns import decode
from curator.backends.dispatch import Grouped
from curator.model.outcome import ErrorInfo, Event, Outcome

if TYPE_CHECKING:
    from curator.backends.batch.backend import BatchBackend


def earlier_rounds(parent: str, run_key: str, own: str) -> list[RoundFolder]:
    """Earlier rounds of checkpoint ``run_key`` under ``parent``, oldest first.

    Those of the run folder ``own`` and those adopted already are left out.
    """
    found = []
    for run in sorted(glob.glob(os.path.join(parent, "run-*")), key=os.path.getmtime):
        if os.path.abspath(run) == os.path.abspath(own):
            continue
        for path in sorted(glob.glob(os.path.join(run, "round-*")), key=os.path.getmtime):
            folder = RoundFolder(path)
            try:
                key = folder.settings().run_key
            except (OSError, ValueError, TypeError):
                continue  # not a round folder, or one being written
            if key == run_key and not folder.adopted and not folder.closed:
                found.append(folder)
    return found


def not_adopted(parent: str, run_key: str) -> tuple[int, set[int]]:
    """Rounds of checkpoint ``run_key`` under ``parent`` that wait to be adopted.

    How many there are, and the items their jobs finished (read without
    loading the items' values): what ``curator status`` shows.
    """
    rounds = earlier_rounds(parent, run_key, own="")
    finished: set[int] = set()
    for old in rounds:
        for task in old.task_names():
            for record in Reader(old.records_path(task)).read():
                if record.kind is Kind.ROWS and record.body[0] is not None:
                    finished.update(record.body[0])
    return len(rounds), finished


def adopt(
    backend: BatchBackend, parent: str, own: str, indices: Sequence[int], attempt: int
) -> Generator[list[Event], None, set[int]]:
    """Yield the successes earlier rounds recorded for ``indices``; return those indices.

    Items those rounds recorded as failed are left to run again, as a resume
    runs every item its checkpoint does not hold as done. A run that starts
    over (not :attr:`~curator.Backend.resumes`) adopts nothing: it only stops
    those rounds' jobs, which would otherwise run items beside its own.
    """
    wanted = set(indices)
    adopted: set[int] = set()
    for old in earlier_rounds(parent, backend.run_key or "", own):
        tasks = {task: _Said(old.records_path(task)) for task in old.task_names()}
        _let_finish(backend, old, tasks)
        if not backend.resumes:
            old.mark_adopted()  # settled: a later resume takes this run's records instead
            continue
        for task, said in tasks.items():
            said.read()  # what the jobs appended until they ended
            events: list[Event] = []
            worker = f"job-{task}"
            for record in said.records:
                rows = outcomes.rows_of(record.body, worker) if record.kind is Kind.ROWS else None
                if rows is None or isinstance(rows, ErrorInfo):  # unloadable here: run again
                    continue
                found: list[Event] = []
                decode(rows, worker, None, found, True, attempt)
                for event in found:
                    # What succeeded; an item that failed runs again, as a resume does.
                    if (
                        isinstance(event, Outcome) and event.ok and event.index in wanted
                        and event.index not in adopted
                    ):  # fmt: skip
                        adopted.add(event.index)
                        events.append(event)
            if events:
                yield events
        old.mark_adopted()
    return adopted


class _Said:
    """A task's records as read so far: each poll reads only what was appended since."""

    def __init__(self, path: str) -> None:
        self.reader = Reader(path)
        self.records: list[Record] = []
        self.kinds: set[Kind] = set()

    def read(self) -> set[Kind]:
        """Read what is new; the kinds of record seen so far."""
        for record in self.reader.read():
            self.records.append(record)
            self.kinds.add(record.kind)
        return self.kinds


def _let_finish(backend: BatchBackend, old: RoundFolder, tasks: dict[str, _Said]) -> None:
    """Ask the round's jobs to stop after their running item; wait until they have."""
    old.request(STOP)
    queued = [task for task, said in tasks.items() if Kind.HELLO not in said.read()]
    if queued:
        backend.cancel(old, queued)
    running = {task for task in tasks if task not in queued}
    while running:
        running -= {task for task in running if Kind.END in tasks[task].read()}
        if running:
            running -= backend.ended(old, running)
        if running:
            time.sleep(backend.state_seconds)


def without(indices: Sequence[int], adopted: set[int]) -> Sequence[int]:
    """``indices`` less the ``adopted`` ones, groups kept whole (what is left of each)."""
    if isinstance(indices, Grouped):
        units = [[i for i in unit if i not in adopted] for unit in indices.units]
        return Grouped([unit for unit in units if unit])
    return [index for index in indices if index not in adopted]
