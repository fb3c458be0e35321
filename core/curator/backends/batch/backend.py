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
import shutil
import sys
import tempfile
from abc import abstractmethod
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from curator.backends.backend import Backend, Capabilities
from curator.backends.dispatch import Todo
from curator.backends.releasing import uninterrupted
from curator.backends.shipping import pickle_work
from curator.backends.work import Work
from curator.model.errors import UsageError
from curator.model.outcome import Event
from curator.plugin_host.options import option

if TYPE_CHECKING:
    # The machinery is imported when a round starts: every run and command loads each
    # installed backend's class, and these modules cost it about 5 ms.
    from curator.backends.batch.folder import RoundFolder


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

    def __post_init__(self) -> None:
        if self.items_per_task is not None and self.items_per_task < 1:
            raise ValueError(f"items_per_task must be 1 or more, not {self.items_per_task}")
        if self.job_folder is not None and not self.job_folder.strip():
            raise ValueError("job_folder is empty; name a folder every job can reach")


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
        self._adopted: set[str] = set()

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

    def job_process(self, folder: RoundFolder, task: str) -> tuple[int, str] | None:
        """The process id and host of the job that last started task ``task`` (its ``HELLO``).

        For :meth:`ended` and :meth:`cancel` of tasks an earlier process
        submitted (a resumed run adopts them): ``None`` if no job of it started.
        """
        from curator.backends.batch.records import Kind, Reader

        hello = None
        for record in Reader(folder.records_path(task)).read():
            if record.kind is Kind.HELLO:
                hello = (int(record.body[0]), str(record.body[1]))
        return hello

    def log_tail(self, folder: RoundFolder, task: str) -> str:
        """The end of what the job of task ``task`` printed, for an error message (optional).

        The run calls it when a job ended before it started its task (its
        Python could not import curator, say); the default says nothing.
        """
        return ""

    @classmethod
    def default_job_folder(cls) -> str | None:
        """Where round folders go without a ``job_folder`` option.

        ``None`` (the default): a temporary folder, removed by :meth:`close`,
        which every job on this machine can reach.
        """
        return None

    def items_per_task(self, count: int) -> int:
        """How many items each task of a round of ``count`` items gets."""
        chosen = getattr(self.options, "items_per_task", None)
        if chosen is not None:
            if int(chosen) < 1:  # Options of the backend's own that do not check it
                raise UsageError(f"items_per_task must be 1 or more, not {chosen}")
            return int(chosen)
        spread = math.ceil(count / (self.tasks_per_job * self.jobs))
        return max(1, spread, min(self.min_items_per_task, math.ceil(count / self.jobs)))

    def _new_round(self, work: Work) -> RoundFolder:
        from curator.backends.batch.folder import RoundFolder, Settings

        if self._base is None:
            chosen = getattr(self.options, "job_folder", None) or self.default_job_folder()
            try:
                if chosen is None:
                    self._base, self._made_base = tempfile.mkdtemp(prefix="curator-jobs-"), True
                else:
                    os.makedirs(chosen, exist_ok=True)
                    self._base = tempfile.mkdtemp(prefix="run-", dir=os.path.abspath(chosen))
            except OSError as exc:
                where = chosen or tempfile.gettempdir()
                raise UsageError(
                    f"cannot make the {self.name} jobs' folder in {where} "
                    f"({exc.strerror or exc}); name a writable folder every job can reach "
                    "with -o job_folder=PATH"
                ) from None
        prepared = self._prepared
        payload = prepared[1] if prepared and prepared[0] is work else pickle_work(work, self.name)
        self._rounds += 1
        try:
            cwd: str | None = os.getcwd()
        except OSError:
            cwd = None
        settings = Settings(
            self.name, self.jobs, work.attempt, self.timeout, self.setup_timeout,
            self.teardown_timeout, list(sys.path), cwd, self.leave_signal, self.run_key,
        )  # fmt: skip
        path = os.path.join(self._base, f"round-{self._rounds}")
        return RoundFolder.create(path, payload, settings)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        """Run the items as tasks of whole units, one job per task (see the class).

        The first round of a run resumed from a checkpoint first adopts what
        the jobs of earlier runs of that checkpoint did (see
        :mod:`curator.backends.batch.adoption`), where the job folder is
        one they share (a ``job_folder``, or :meth:`default_job_folder`).
        """
        from curator.backends.batch.adoption import adopt, without
        from curator.backends.batch.folder import KILL
        from curator.backends.batch.tasks import Round

        folder = self._new_round(work)
        key = self.run_key
        if key is not None and key not in self._adopted and not self._made_base:
            self._adopted.add(key)
            assert self._base is not None
            parent = os.path.dirname(self._base)
            adopted = yield from adopt(self, parent, self._base, indices, work.attempt)
            indices = without(indices, adopted)
            if not indices:
                return
        run = Round(self, folder, work.attempt)
        todo = Todo(indices)
        size = self.items_per_task(len(indices))
        while todo:
            run.add_task(todo.take(size))
        try:
            yield from run.events()
        except BaseException as stop:  # a hard stop (the generator closed), or an error
            folder.request(KILL)
            # Abandoned half-way by another Ctrl-C, the cancel would leave jobs queued.
            with uninterrupted(f"cancelling the {self.name} jobs"):
                self.cancel(folder, [*run.live, *run.leaving])
                finished = run.last_word()  # once the jobs are gone: all they will write
                finished += run.interrupted()
            if finished and not isinstance(stop, GeneratorExit):
                yield finished  # recorded before the stop goes on
            raise
        finally:
            folder.close()  # this process saw it through: nothing here for a resume to adopt
