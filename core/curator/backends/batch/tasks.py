"""The run's bookkeeping of one round: its tasks, the live ones, what each still owes.

:class:`Round` submits tasks as :meth:`BatchBackend.room
<curator.backends.batch.backend.BatchBackend.room>` allows, reads each live
task's records into outcomes, settles a task at its job's last word, and
sends out again what a dead job left undone (blaming the item it last said it
ran).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from curator.backends import columns
from curator.backends.batch import outcomes
from curator.backends.batch.folder import STOP, RoundFolder
from curator.backends.batch.records import Kind, Reader, Record
from curator.backends.lifecycle import setup_timed_out, teardown_abandoned
from curator.model.errors import UsageError
from curator.model.outcome import ErrorInfo, Event, Outcome, TaskStart

if TYPE_CHECKING:
    from curator.backends.batch.backend import BatchBackend

SILENT_DEATHS = 3
"""Jobs of one item that may end without a word before that item is blamed for it."""


class Task:
    """One task: its items in order, which it still owes, and what its records said so far."""

    def __init__(self, name: str, order: list[int], folder: RoundFolder, deaths: int) -> None:
        self.name = name
        self.worker = f"job-{name}"
        self.order = order
        self.left = set(order)
        self.reader = Reader(folder.records_path(name))
        self.announced: int | None = None
        self.running: tuple[int, float] | None = None
        self.hello = False
        """Whether a job of the task started (its first record is in)."""
        self.silent_deaths = deaths
        self.slot = 0

    def unfinished(self) -> list[int]:
        """The items the task still owes, in its order."""
        return [index for index in self.order if index in self.left]


class Round:
    """The bookkeeping of one round: its tasks, the live ones, what each still owes."""

    def __init__(self, backend: BatchBackend, folder: RoundFolder, attempt: int) -> None:
        self.backend = backend
        self.folder = folder
        self.attempt = attempt
        self.queued: deque[tuple[int, list[int], int]] = deque()
        """Tasks not submitted yet: number, items, silent deaths (a :class:`Task` once out).

        A round of a million one-item tasks queues a million: a tuple each, not a
        ``Task`` with its reader and sets (under 200 bytes a task, not 770)."""
        self.live: dict[str, Task] = {}
        self.leaving: set[str] = set()
        """Tasks whose job said its last word, until the batch system says it ended."""
        self.tasks = 0
        self.stopping = False
        self.teardown_problems: list[str] = []

    def add_task(self, order: list[int], deaths: int = 0) -> None:
        """Queue a task of ``order`` (whole units, in order); ``deaths``: its silent deaths."""
        self.queued.append((self.tasks, order, deaths))
        self.tasks += 1

    def events(self) -> Iterator[list[Event]]:
        """Submit, read and settle tasks until every one is done; yield the outcomes."""
        backend = self.backend
        states_due = 0.0
        while self.queued or self.live or self.leaving:
            events: list[Event] = []
            if backend.stop_requested and not self.stopping:
                self.stopping = True
                self.queued.clear()  # never submitted: the core marks them cancelled
                self.folder.request(STOP)
                for task in list(self.live.values()):  # which jobs started, as of now
                    self._read(task, events)
                waiting = [name for name, task in self.live.items() if not task.hello]
                if waiting:  # queued jobs need not start only to stop
                    backend.cancel(self.folder, waiting)
                    for name in waiting:  # one may have started meanwhile
                        self._read(self.live.pop(name), events)
            self._submit()
            now = time.monotonic()
            due = now >= states_due
            # Jobs still queued are looked at less often, but for the next few to start.
            next_few = self.backend.jobs
            for task in list(self.live.values()):
                if not task.hello and not due:
                    if next_few <= 0:
                        continue
                    next_few -= 1
                self._read(task, events)
            if due and (self.live or self.leaving):
                states_due = now + backend.state_seconds
                for name in backend.ended(self.folder, [*self.live, *self.leaving]):
                    self.leaving.discard(name)
                    gone = self.live.get(name)
                    if gone is not None:
                        self._read(gone, events)
                        if name in self.live:
                            self._died(gone, events)
            if events:
                yield events
            else:
                time.sleep(backend.poll_seconds)
        if self.teardown_problems:
            raise UsageError("a stage's teardown() failed on " + "; ".join(self.teardown_problems))

    def last_word(self) -> list[Event]:
        """What the live tasks' jobs recorded since their last read (at a hard stop, an error).

        The loop may not have read them for a while (the batch system was slow
        to answer): their finished items must still be reported, not lost with
        a round that is closed.
        """
        self.stopping = True
        events: list[Event] = []
        for task in list(self.live.values()):
            try:
                self._read(task, events)
            except UsageError:  # a job that could not set up: it finished nothing
                continue
        return events

    def interrupted(self) -> list[Event]:
        """The items the live tasks' jobs were running, as a hard stop ends them.

        Read after :meth:`last_word`: an item a job finished since is not
        among them, and one it started after its last record is not known
        (the core reports it ``cancelled``; either way a resume runs it).
        """
        found: list[Event] = []
        for task in self.live.values():
            if task.running is not None and task.running[0] in task.left:
                index, started = task.running
                found.append(Outcome.interrupted(index, started, task.worker, self.attempt))
        return found

    def _submit(self) -> None:
        if not self.queued:
            return
        room = self.backend.room(len(self.live) + len(self.leaving))
        queued, folder = self.queued, self.folder
        batch = [
            Task(str(number), order, folder, deaths)
            for number, order, deaths in (queued.popleft() for _ in range(min(room, len(queued))))
        ]
        taken = {task.slot for task in self.live.values()}
        free = (slot for slot in range(self.backend.jobs) if slot not in taken)
        for task in batch:
            # Each job's worker is numbered below ``jobs`` (WorkerInfo.slot): a free seat
            # while no more than ``jobs`` are out, else by turns.
            task.slot = next(free, int(task.name) % self.backend.jobs)
            self.folder.write_task(task.name, task.order, task.slot)
        if batch:
            self.live.update((task.name, task) for task in batch)
            self.backend.submit(self.folder, [task.name for task in batch])

    def _read(self, task: Task, events: list[Event]) -> None:
        for record in task.reader.read():
            self._take(task, record, events)

    def _take(self, task: Task, record: Record, events: list[Event]) -> None:
        kind, body = record
        starts = self.backend.wants_starts
        if kind is Kind.ROWS:
            indices, running, _ = body
            rows = outcomes.rows_of(body, task.worker)
            if isinstance(rows, ErrorInfo):
                events.extend(outcomes.unloaded(indices, rows, task.worker, self.attempt))
                task.left.difference_update(indices)
            elif rows is not None:
                columns.decode(rows, task.worker, task.announced, events, starts, self.attempt)
                task.left.difference_update(indices)
            task.running = running
            if running is not None and starts and running[0] != task.announced:
                events.append(TaskStart(running[0], task.worker, running[1], self.attempt))
                task.announced = running[0]
        elif kind is Kind.HELLO:
            task.hello = True
        elif kind is Kind.LEFT:
            task.running = None  # preempted: the item runs again, nobody is blamed
            task.silent_deaths = -1
        elif kind is Kind.CRASH:
            task.left.discard(body[0])
            task.silent_deaths = -1  # it said what happened: the next death starts a count
            events.append(outcomes.crashed(body, task.worker, self.attempt))
        elif kind is Kind.TIMEOUT:
            task.left.discard(body[0])
            events.append(outcomes.timed_out(body, task.worker, self.attempt))
        elif kind is Kind.SETUP_FAILED:
            error = body[0]
            raise UsageError(
                f"{self.backend.name} job {task.worker} could not set up: {error.headline()}\n"
                f"{error.details() if error.traceback else ''}".rstrip()
            )
        elif kind is Kind.SETUP_TIMEOUT:
            stage, limit = body
            left = task.unfinished()
            fate = "its worker was killed"
            events.extend(setup_timed_out(left, stage, limit, task.worker, fate, self.attempt))
            task.left.clear()
            self._settle(task)
        elif kind is Kind.END:
            problem, abandoned, stage = body
            if problem is not None:
                self.teardown_problems.append(f"{task.worker}: {problem}")
            if abandoned:
                limit = self.backend.teardown_timeout or 0.0
                teardown_abandoned(stage, limit, task.worker, "its worker was killed")
            self._settle(task)

    def _settle(self, task: Task) -> None:
        """The task's job is done with it: what it left undone goes out again, unless stopping."""
        self.live.pop(task.name, None)
        if self.backend.waits_for_exit:
            self.leaving.add(task.name)
        if task.left and not self.stopping:
            self.add_task(task.unfinished())

    def _died(self, task: Task, events: list[Event]) -> None:
        """The task's job ended without its end record: blame the running item, if known.

        The item the job last said it ran is blamed. A job that ended before
        it said so (its item was quick) is sent out again; the first item of
        a task whose jobs ended :data:`SILENT_DEATHS` times in a row is blamed.
        """
        self.live.pop(task.name, None)
        order = task.unfinished()
        if not order or self.stopping:
            return
        if not task.hello:
            tail = self.backend.log_tail(self.folder, task.name).strip()
            if tail:
                why = (
                    f"can its Python ({sys.executable} here) import curator and the "
                    f"pipeline's modules there? Its output ends with:\n{tail}"
                )
            else:  # not a word: it may never have reached Python
                why = (
                    "it left no output: can the nodes reach the job folder "
                    f"({self.folder.path}; -o job_folder=... names one they share), and did "
                    f"its node stay up? Can its Python ({sys.executable} here) import curator?"
                )
            raise UsageError(
                f"{self.backend.name} job {task.worker} ended before it started its task: {why}"
            )
        self.folder.supersede(task.name)  # should the batch system run it again: it leaves
        running = task.running[0] if task.running is not None else None
        deaths = task.silent_deaths + 1
        if running not in task.left and deaths >= SILENT_DEATHS:
            running = order[0]
        if running is not None and running in task.left:
            started = task.running[1] if task.running is not None else time.time()
            message = (
                f"job {task.worker} ended while running item {running}, without a word from "
                "it (killed by the batch system, or its node failed)"
            )
            events.append(Outcome.crashed(running, message, task.worker, started, self.attempt))
            order.remove(running)
            deaths = 0
        if order:
            self.add_task(order, deaths)
