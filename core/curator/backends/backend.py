"""The Backend contract: what a run backend declares and the one method it implements.

A backend only *executes*. The core owns index validation, ordering,
failure policies, events and results, so every backend behaves the same and a
third-party backend stays small. See ``docs/plugins.md`` for a walk-through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from curator.backends.work import Work
from curator.model.outcome import Event
from curator.plugin_host.options import NoOptions
from curator.plugin_host.requirements import missing_requirements


class StopFlag:
    """A flag without a lock, set from a signal handler and read by any thread.

    ``threading.Event`` takes a lock in ``set()``: a Ctrl-C handled while the
    main thread held that lock (in the same event's ``set()`` or ``wait()``)
    would wait on it for ever.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Raise the flag."""
        self._set = True

    def clear(self) -> None:
        """Lower the flag."""
        self._set = False

    def is_set(self) -> bool:
        """Whether the flag is raised."""
        return self._set


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the core and the conformance kit rely on these.

    Attributes
    ----------
    parallel
        Runs several items at the same time. A non-parallel backend refuses ``jobs > 1``.
    needs_picklable_work
        Sends the work to other processes, so the pipeline must pickle.
    timeouts
        Can stop an item that runs too long.
    cancel_running
        Can stop items that are already running when the run is cancelled
        (otherwise it stops dispatching and waits for them).
    isolates_crashes
        A worker that dies (segfault, ``os._exit``, OOM kill) costs only the
        item it was running, reported ``crashed``; the run goes on.
    crash_exit_codes
        With ``isolates_crashes``: a crashed item's outcome carries its
        worker's exit code (:attr:`curator.ErrorInfo.exit_code`, negative for a
        signal). ``False`` where the backend cannot tell it (a batch system
        that reports only that a job ended): its crashed outcomes then carry
        none, and the conformance kit accepts ``None`` there, never a wrong code.
    checks_results
        Turns a result that cannot be pickled into that item's ``failed``
        outcome itself, where the pickling fails (so the core need not pickle
        every result once more to check it).
    worker_lifecycle
        Calls :meth:`~curator.Work.setup` on each worker's copy of the work
        before its first item and :meth:`~curator.Work.teardown` after its
        last, so stages' ``setup(worker)``/``teardown()`` run. The core refuses
        a pipeline whose stages define them on a backend without it.
    lifecycle_timeouts
        Bounds the stages' ``setup(worker)`` and ``teardown()`` by
        :attr:`Backend.setup_timeout` and :attr:`Backend.teardown_timeout`:
        a setup past its limit fails the items its worker took (error type
        ``SetupTimeout``, see :func:`curator.backends.lifecycle.setup_timed_out`) and
        the run goes on on the other workers; a teardown past its limit is
        abandoned with a warning (:func:`curator.backends.lifecycle.teardown_abandoned`)
        and the run ends with every outcome recorded. The core refuses the
        ``setup_timeout``/``teardown_timeout`` options on a backend without it.
    keeps_groups
        Honours keep-together groups: given :class:`~curator.backends.dispatch.Grouped`
        indices, runs each of their units on one worker, in order, one item
        at a time (:class:`~curator.backends.dispatch.Todo` does the bookkeeping). The
        core refuses a pipeline that declares groups (``partition_indices``)
        on a backend without it.
    runs_elsewhere
        Runs items away from the run's process by nature (the jobs of a batch
        system, a remote cluster): asked for one job, it runs one job there.
        A parallel backend without it runs a one-job run in the run's own
        process instead (no start-up cost; stateful stages keep their state).
    """

    parallel: bool = False
    needs_picklable_work: bool = False
    timeouts: bool = False
    cancel_running: bool = False
    isolates_crashes: bool = False
    checks_results: bool = False
    keeps_groups: bool = False
    worker_lifecycle: bool = False
    lifecycle_timeouts: bool = False
    crash_exit_codes: bool = True  # fields are only added at the end: built by position too
    runs_elsewhere: bool = False


class Backend(ABC):
    """Base class of every run backend, built-in or third-party.

    Subclasses set the class attributes and implement :meth:`execute`.

    Attributes
    ----------
    name
        Stable short name, lowercase with dashes (``"thread-pool"``).
    description
        One line for ``curator backends list``.
    requires
        Import names that must be installed (checked without importing them).
    capabilities
        See :class:`Capabilities`.
    Options
        A dataclass of typed options (see :func:`curator.plugin_host.options.option`).

    Parameters
    ----------
    options
        An instance of :attr:`Options`, already validated by the core.
    jobs
        How many items may run at once (>= 1; resolved from ``-1``/``-2``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type[Any]] = NoOptions

    def __init__(self, options: Any, jobs: int) -> None:
        self.options = options
        self.jobs = jobs
        self.timeout: float | None = None
        """Per-item time limit in seconds, set by the core before :meth:`execute`.

        Only given to backends whose capabilities include ``timeouts``: such a
        backend stops an item that runs longer and reports it ``timed_out``.
        """
        self.setup_timeout: float | None = None
        """Seconds a worker's stages may take in ``setup(worker)``, set by the core before
        :meth:`execute` (``None``: no limit).

        Only given to backends whose capabilities include ``lifecycle_timeouts``.
        """
        self.teardown_timeout: float | None = None
        """Seconds a worker's stages may take in ``teardown()`` (the same)."""
        self.wants_starts = True
        """Whether anybody listens to start events; the core sets it before :meth:`execute`.

        When false, a backend may skip making :class:`~curator.model.outcome.TaskStart`
        records (the core would drop them anyway).
        """
        self.failure_budget: int | None = None
        """How many failures end the current round (``None``: none); set before :meth:`execute`.

        A backend that hands outcomes back in batches may use it to send a
        failure back at once, so that the core can stop the run close to its
        budget (the dask backend ends a chunk at its first failure when it is
        set). ``None`` in a round whose failures are retried.
        """
        self.run_key: str | None = None
        """The run's checkpoint (its path), set by the core before :meth:`execute`; ``None``
        without a checkpoint.

        A run resumed from a checkpoint has the same key as the run it continues,
        so a backend whose workers outlive the run's process (the jobs of a batch
        system) can tell what an earlier, killed run of the same checkpoint left
        running or finished, and adopt it instead of running it again.
        """
        self.resumes = False
        """Whether the run resumes its checkpoint (set by the core with :attr:`run_key`).

        Only a resume adopts what an earlier run left done; a run that starts
        over does every item again (a backend still stops what such a run left
        running, so that no item runs twice at once).
        """
        self._stop = StopFlag()

    def request_stop(self) -> None:
        """Ask the running :meth:`execute` to dispatch nothing new (called by the core).

        The core calls this when the run should end early but gracefully, e.g. at
        the first failure with ``on_error="raise"``. It may be called from
        another thread, and from a signal handler in the main thread (the first
        Ctrl-C), wherever :meth:`execute` stands: an override must not wait for
        a lock that :meth:`execute`'s own thread may hold (set a flag, write to
        shared memory, or hand the message to a thread).
        """
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        """Whether the core asked to stop dispatching; check it before each item or chunk."""
        return self._stop.is_set()

    def prepare(self, work: Work) -> None:
        """Check the run's work before the run starts (called once per run, before any event).

        Optional. Raise :class:`~curator.model.errors.UsageError` for work this
        backend cannot take, say a pipeline it cannot send to its workers, so
        the user hears of it before a reporter or the checkpoint records a
        run. A backend may keep what it made here (the pickled work) for
        :meth:`execute`, which receives the same ``work`` object for the
        first attempt. Start nothing here: ``curator run --dry-run`` calls it
        too (then :meth:`close`), and a run with nothing left to run (no
        index selected, every item done before a resume) never calls
        :meth:`execute`. The default accepts any work.
        """
        return

    @classmethod
    def start_early(cls, options: Any, jobs: int) -> None:
        """Begin, without waiting for it, a slow start that every run with ``options`` waits for.

        Optional. The core calls it as soon as a run is checked far enough to
        know its backend, options and jobs: before the rest of the checks, the
        checkpoint's opening and the reporters' start, so that a slow start
        (the process pool's fork server: an interpreter and its imports)
        overlaps them. It must start nothing that would need stopping: the run
        may still be refused (a bad reporter, a busy checkpoint) or never begin
        (a stream never iterated), and no instance exists yet to close it.
        Never called for a dry run, nor for a run in the calling process
        (``jobs=1``). The default does nothing.
        """
        return

    def check(self) -> None:
        """Check the options against the system the items would run on, starting nothing.

        Optional. The core calls it right before :meth:`prepare` in every run,
        and so does ``curator run --dry-run`` (on a backend it then closes,
        never calling :meth:`execute`), so that an option the system refuses
        (a partition the cluster does not have, an array larger than it
        takes) is named before anything runs. Raise
        :class:`~curator.model.errors.UsageError`. It must not start workers,
        submit jobs or write files. The default checks nothing.
        """
        return

    def close(self) -> None:
        """Release what the backend keeps between calls of :meth:`execute` (workers, a cluster).

        Optional. The core runs every round of a run (its retries) on one
        backend instance, and a :class:`curator.Session` runs many runs on
        one, so a backend may keep its workers up between calls; the core
        calls this once the run (or the session) is over. The default keeps
        nothing and does nothing.
        """
        return

    def _begin(
        self,
        timeout: float | None,
        wants_starts: bool,
        setup_timeout: float | None = None,
        teardown_timeout: float | None = None,
        failure_budget: int | None = None,
    ) -> None:
        """Set up for the next call of :meth:`execute` (the core calls this before each)."""
        self.timeout = timeout
        self.setup_timeout = setup_timeout
        self.teardown_timeout = teardown_timeout
        self.wants_starts = wants_starts
        self.failure_budget = failure_budget
        self._stop.clear()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Say why the backend cannot run here (a missing requirement), or ``None``.

        The check uses :func:`importlib.util.find_spec` on top-level names, so
        listing backends never imports a heavy engine.
        """
        return missing_requirements(cls.requires)

    def activity(self) -> Mapping[str, tuple[int, float]] | None:
        """What each busy worker runs now: worker id -> (index, wall-clock start).

        Optional. Reporters call it a few times per second from their own
        thread while :meth:`execute` runs, so it must be cheap and thread-safe.
        ``None`` (the default) lets the core derive it from start events.
        """
        return None

    @abstractmethod
    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event | list[Event]]:
        """Run ``work`` for every index and yield records as items complete.

        Records may be yielded one at a time or in lists: a backend that
        receives results in batches (a chunk from a worker) yields each batch
        as one list, which costs the run loop one step per batch instead of
        one per item.

        The contract:

        - yield exactly one :class:`~curator.model.outcome.Outcome` per index in
          ``indices``, in any order, as soon as each is known (successes
          may come many at once as a :class:`~curator.model.outcome.Successes`,
          whose columns the core stores without an ``Outcome`` per item);
        - optionally yield a :class:`~curator.model.outcome.TaskStart` before an
          index's outcome, so reporters can show what each worker does;
        - run at most ``self.jobs`` items at the same time;
        - once :attr:`stop_requested` is true, dispatch nothing new, keep
          yielding the outcomes of items already running, then return (indices
          never dispatched need no outcome; the core marks them cancelled);
        - when the generator is closed (a hard stop), stop dispatching,
          release every worker and return promptly.

        Parameters
        ----------
        work
            Turns one index into an Outcome and never raises for an item. Send
            it to each worker once, then call it per index.
        indices
            Distinct, valid pipeline indices; never empty.
        """


def normalize_name(name: str) -> str:
    """Canonical spelling of a backend or reporter name (``process_pool`` -> ``process-pool``)."""
    return name.strip().lower().replace("_", "-")
