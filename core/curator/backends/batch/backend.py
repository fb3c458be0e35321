"""The run's side of a batch backend: tasks out to jobs, their records back as outcomes.

:class:`BatchBackend` is a complete backend except for the batch system: a
subclass says how to submit a task's job, which jobs have ended, and how to
cancel them (:meth:`~BatchBackend.submit`, :meth:`~BatchBackend.ended`,
:meth:`~BatchBackend.cancel`). The rest is here: the work pickled once into
the round's folder, the items cut into tasks of whole units, each task's
records read as its job appends them and turned into outcomes and start
events, crash and timeout blame, a dead job's unfinished items sent out
again in a new task, stop and hard-stop requests passed on through the
folder.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import sys
import tempfile
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from curator.backends import columns
from curator.backends.backend import Backend, Capabilities
from curator.backends.batch.folder import KILL, STOP, RoundFolder, Settings
from curator.backends.batch.records import Kind, Reader, Record
from curator.backends.dispatch import Todo
from curator.backends.lifecycle import setup_timed_out, teardown_abandoned
from curator.backends.shipping import pickle_work
from curator.backends.work import Work
from curator.model.errors import UsageError
from curator.model.outcome import ErrorInfo, ErrorKind, Event, Outcome, Status, TaskStart
from curator.plugin_host.options import option

SILENT_DEATHS = 3
"""Jobs of one item that may end without a word before that item is blamed for it."""


@dataclass(frozen=True)
class BatchOptions:
    """Options every batch backend takes; a backend's own ``Options`` may extend them."""

    job_folder: str | None = option(
        None,
        help="folder for the jobs' work, tasks and records, one every job can reach "
        "(default: a temporary folder, removed when the backend closes)",
    )
    items_per_task: int | None = option(
        None,
        help="items each job runs (default: the round spread over a few tasks per job slot)",
    )


class BatchBackend(Backend):
    """Base class of backends whose workers are the jobs of a batch system.

    Subclasses set :attr:`name` and implement :meth:`submit`, :meth:`ended`
    and :meth:`cancel`; a job runs ``folder.command(task)``
    (``python -m curator.backends.batch ROUND TASK``) with this Python's
    curator importable. See ``docs/plugins.md``, "A batch backend".

    Attributes
    ----------
    poll_seconds
        How often the tasks' records are read.
    state_seconds
        How often :meth:`ended` is asked (it may cost a call to the batch system).
    leave_signal
        The signal the batch system sends a job to make it leave and come
        back (preemption): the job leaves without blaming its running item.
    tasks_per_job, min_items_per_task
        Without the ``items_per_task`` option, a round's items are spread
        over ``tasks_per_job`` tasks per job slot (so that a slow task does
        not hold the tail of the run), each of at least ``min_items_per_task``
        items while every slot still gets one (a job that takes seconds to
        start should not run one quick item).
    waits_for_exit
        Whether a round ends only once :meth:`ended` reports every job gone
        (a local process to reap), or already when each job said its last
        word (a batch system's job needs no reaping).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        parallel=True,
        needs_picklable_work=True,
        timeouts=True,
        cancel_running=True,
        isolates_crashes=True,
        checks_results=True,
        keeps_groups=True,
        worker_lifecycle=True,
        lifecycle_timeouts=True,
        runs_elsewhere=True,
    )
    requires: ClassVar[tuple[str, ...]] = ("cloudpickle",)
    Options: ClassVar[type[Any]] = BatchOptions
    poll_seconds: ClassVar[float] = 0.05
    state_seconds: ClassVar[float] = 0.2
    leave_signal: ClassVar[int | None] = None
    tasks_per_job: ClassVar[int] = 4
    min_items_per_task: ClassVar[int] = 1
    waits_for_exit: ClassVar[bool] = True

    def __init__(self, options: Any, jobs: int) -> None:
        super().__init__(options, jobs)
        self._prepared: tuple[Work, bytes] | None = None
        self._base: str | None = None
        self._made_base = False
        self._rounds = 0

    @abstractmethod
    def submit(self, folder: RoundFolder, tasks: Sequence[str]) -> None:
        """Submit one job per task; each runs ``folder.command(task)``."""

    @abstractmethod
    def ended(self, folder: RoundFolder, tasks: Collection[str]) -> set[str]:
        """Which of ``tasks`` have a job that no longer waits or runs (it ended, however)."""

    @abstractmethod
    def cancel(self, folder: RoundFolder, tasks: Collection[str]) -> None:
        """End the jobs of ``tasks`` now (a hard stop); return once they are gone."""

    def prepare(self, work: Work) -> None:
        """Pickle the work once (a clear error names what cannot be pickled)."""
        self._prepared = (work, pickle_work(work, self.name))

    def close(self) -> None:
        """Remove the job folder when the backend made it (a temporary one)."""
        if self._made_base and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
        self._base, self._made_base = None, False

    def room(self, live: int) -> int:
        """How many more tasks may be submitted now, with ``live`` tasks out.

        The default keeps at most ``jobs`` out. A backend whose batch system
        keeps the count itself (Slurm's ``--array=...%jobs``) submits more at
        once, say a whole array when none is out.
        """
        return self.jobs - live

    def log_tail(self, folder: RoundFolder, task: str) -> str:
        """The end of what the job of task ``task`` printed, for an error message (optional).

        The run calls it when a job ended before it started its task (its
        Python could not import curator, say); the default says nothing.
        """
        return ""

    def default_job_folder(self) -> str | None:
        """Where round folders go without a ``job_folder`` option.

        ``None`` (the default): a temporary folder, removed by :meth:`close`,
        which every job on this machine can reach.
        """
        return None

    def items_per_task(self, count: int) -> int:
        """How many items each task of a round of ``count`` items gets."""
        chosen = getattr(self.options, "items_per_task", None)
        if chosen is not None:
            return int(chosen)
        spread = math.ceil(count / (self.tasks_per_job * self.jobs))
        return max(1, spread, min(self.min_items_per_task, math.ceil(count / self.jobs)))

    def _new_round(self, work: Work) -> RoundFolder:
        if self._base is None:
            chosen = getattr(self.options, "job_folder", None) or self.default_job_folder()
            if chosen is None:
                self._base, self._made_base = tempfile.mkdtemp(prefix="curator-jobs-"), True
            else:
                os.makedirs(chosen, exist_ok=True)
                self._base = tempfile.mkdtemp(prefix="run-", dir=os.path.abspath(chosen))
        prepared = self._prepared
        payload = prepared[1] if prepared and prepared[0] is work else pickle_work(work, self.name)
        self._rounds += 1
        try:
            cwd: str | None = os.getcwd()
        except OSError:
            cwd = None
        settings = Settings(
            self.name, self.jobs, work.attempt, self.timeout, self.setup_timeout,
            self.teardown_timeout, list(sys.path), cwd, self.leave_signal,
        )  # fmt: skip
        path = os.path.join(self._base, f"round-{self._rounds}")
        return RoundFolder.create(path, payload, settings)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        """Run the items as tasks of whole units, one job per task (see the class)."""
        folder = self._new_round(work)
        run = _Round(self, folder, work.attempt)
        todo = Todo(indices)
        size = self.items_per_task(len(indices))
        while todo:
            run.add_task(todo.take(size))
        try:
            yield from run.events()
        except GeneratorExit:
            folder.request(KILL)
            self.cancel(folder, [*run.live, *run.leaving])
            raise
        except BaseException:
            folder.request(KILL)
            self.cancel(folder, [*run.live, *run.leaving])
            raise


class _Task:
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


class _Round:
    """The bookkeeping of one round: its tasks, the live ones, what each still owes."""

    def __init__(self, backend: BatchBackend, folder: RoundFolder, attempt: int) -> None:
        self.backend = backend
        self.folder = folder
        self.attempt = attempt
        self.queued: deque[_Task] = deque()
        self.live: dict[str, _Task] = {}
        self.leaving: set[str] = set()
        """Tasks whose job said its last word, until the batch system says it ended."""
        self.tasks = 0
        self.stopping = False
        self.teardown_problems: list[str] = []

    def add_task(self, order: list[int], deaths: int = 0) -> None:
        """Queue a task of ``order`` (whole units, in order); ``deaths``: its silent deaths."""
        task = _Task(str(self.tasks), order, self.folder, deaths)
        self.tasks += 1
        self.queued.append(task)

    def events(self) -> Iterator[list[Event]]:
        backend = self.backend
        states_due = 0.0
        while self.queued or self.live or self.leaving:
            events: list[Event] = []
            if backend.stop_requested and not self.stopping:
                self.stopping = True
                self.queued.clear()  # never submitted: the core marks them cancelled
                self.folder.request(STOP)
                waiting = [name for name, task in self.live.items() if not task.hello]
                if waiting:  # queued jobs need not start only to stop
                    backend.cancel(self.folder, waiting)
                    for name in waiting:  # one may have started meanwhile
                        self._read(self.live.pop(name), events)
            self._submit()
            now = time.monotonic()
            due = now >= states_due
            for task in list(self.live.values()):
                if task.hello or due:  # a job still queued is looked at less often
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

    def _submit(self) -> None:
        if not self.queued:
            return
        room = self.backend.room(len(self.live) + len(self.leaving))
        batch = [self.queued.popleft() for _ in range(min(room, len(self.queued)))]
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

    def _read(self, task: _Task, events: list[Event]) -> None:
        for record in task.reader.read():
            self._take(task, record, events)

    def _take(self, task: _Task, record: Record, events: list[Event]) -> None:
        kind, body = record
        starts = self.backend.wants_starts
        if kind is Kind.ROWS:
            indices, running, blob = body
            if blob is not None:
                try:
                    rows = pickle.loads(blob)[0]
                except Exception as exc:
                    raise UsageError(
                        f"this process cannot load what job {task.worker} sent back for items "
                        f"{list(indices)[:5]}: {type(exc).__name__}: {exc}; results must load "
                        "where the run is (a module the jobs have and this process lacks?)"
                    ) from exc
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
            index, started, code, message = body
            task.left.discard(index)
            task.silent_deaths = -1  # it said what happened: the next death starts a count
            events.append(Outcome.crashed(index, message, task.worker, started, self.attempt, code))
        elif kind is Kind.TIMEOUT:
            index, started, seconds, message = body
            task.left.discard(index)
            error = ErrorInfo(
                ErrorKind.TIMEOUT.value,
                message
                or f"item {index} ran longer than {seconds:g} s; the worker of {task.worker} "
                "was killed and replaced",
            )
            events.append(
                Outcome(index, Status.TIMED_OUT, None, error, task.worker, started, time.time(),
                        self.attempt)
            )  # fmt: skip
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

    def _settle(self, task: _Task) -> None:
        """The task's job is done with it: what it left undone goes out again, unless stopping."""
        self.live.pop(task.name, None)
        if self.backend.waits_for_exit:
            self.leaving.add(task.name)
        if task.left and not self.stopping:
            self.add_task(task.unfinished())

    def _died(self, task: _Task, events: list[Event]) -> None:
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
            said = f"; its output ends with:\n{tail}" if tail else ""
            raise UsageError(
                f"{self.backend.name} job {task.worker} ended before it started its task: "
                f"can its Python ({sys.executable} here) import curator and the pipeline's "
                f"modules there?{said}"
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
