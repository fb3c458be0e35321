"""``BackendConformance``: the contract tests every backend should pass.

Subclass it in a pytest module and name the backend::

    class TestMyBackend(BackendConformance):
        backend = "my-backend"

Class attributes to adjust it:

``backend``
    The registered name (required).
``jobs``
    Workers to use (default 2 for parallel backends).
``options``
    Backend options passed to every run.
``plugins``
    Extra ``(name, plugin)`` pairs to register, for a backend that is not
    installed through an entry point (its hook module, or any object with
    hook implementations).
``load_entrypoints``
    Also load installed plugins (default true).
``limits``
    The numbers the checks hold the backend to
    (:class:`~curator.testing.limits.KitLimits`; its time budget per check).

Tests that need a capability the backend does not declare are skipped with
the reason.
"""

from __future__ import annotations

import difflib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from curator import (
    HardStop,
    Outcome,
    Registry,
    RunInterrupted,
    RunResult,
    Session,
    Status,
    TaskFailedError,
    UsageError,
    hookimpl,
    run,
)
from curator.backends.backend import Backend, normalize_name
from curator.checkpoint.catalog import read as report
from curator.plugin_host.plugins import PluginSettings
from curator.testing import HEAVY_MODULES, probes, processes
from curator.testing.capturing import CaptureChecks
from curator.testing.crashes import CrashChecks
from curator.testing.events import EventRecorder
from curator.testing.extras import ExtrasChecks
from curator.testing.grouping import GroupChecks
from curator.testing.lifecycle import LifecycleChecks, LifecycleLimitChecks
from curator.testing.limits import DEFAULT_LIMITS, KitLimits
from curator.testing.measuring import MetricsChecks
from curator.testing.probes import executions, peak_concurrency, probe, release, started
from curator.testing.stages import StateChecks
from curator.testing.storing import StoringChecks
from curator.testing.streams import StreamChecks
from curator.testing.timelimit import TimeLimit


class _Events(EventRecorder):
    """Records events; raises a hard stop after ``stop_after`` outcomes, as a second Ctrl-C does."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.stopped = False

    @hookimpl
    def curator_task_finish(self, outcome: Outcome) -> None:
        super().curator_task_finish(outcome)
        finishes = len(self.of("task_finish"))
        if self.stop_after is not None and finishes >= self.stop_after and not self.stopped:
            self.stopped = True
            raise HardStop  # what a second Ctrl-C does inside the run loop


class _signal_later:
    """Send ``signum`` to this process's main thread once ``ready()`` is true.

    If the run does not get that far within ``deadline`` seconds, the check
    fails at once through its time limit, saying what it waited for and how
    far the run got (``ready.progress()``), rather than letting a run of hung
    items go on.
    """

    def __init__(self, signum: int, ready: _Progress, limit: TimeLimit, deadline: float) -> None:
        self.signum = signum
        self.ready = ready
        self.limit = limit
        self.deadline = deadline
        self.sent = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._wait, daemon=True)

    def _wait(self) -> None:
        end = time.monotonic() + self.deadline
        while not self.done.is_set():
            if self.limit.failure is not None:  # the check failed meanwhile: send nothing
                return
            if self.ready():
                if self.limit.signal_unless_failed(self.signum):
                    self.sent.set()
                return
            if time.monotonic() > end:
                self.limit.fail_now(
                    f"waited {self.deadline:g} s for {self.ready.what} before sending "
                    f"{signal.Signals(self.signum).name}; {self.ready.progress()}"
                )
                return
            time.sleep(0.01)

    def __enter__(self) -> _signal_later:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        if kind is not None:  # the check failed already (its time limit names why)
            return
        assert self.sent.is_set(), (
            f"the signal was never sent: the run ended before {self.ready.what}; "
            f"{self.ready.progress()}"
        )


class _Progress:
    """Whether a run got far enough to be signalled: outcomes in the parent, another start."""

    def __init__(self, events: _Events, folder: Path, count: int) -> None:
        self.events = events
        self.folder = folder
        self.count = count
        self.what = f"{count} outcome(s) to reach the parent and another item to start"

    def __call__(self) -> bool:
        finished = len(self.events.of("task_finish"))
        return finished >= self.count and len(list(self.folder.glob("start.*"))) > self.count

    def progress(self) -> str:
        return (
            f"the parent had {len(self.events.of('task_finish'))} outcome(s) and "
            f"{len(self.events.of('task_start'))} start event(s); items started in the "
            f"workers: {sorted(started(self.folder))}"
        )


class BackendConformance(
    CaptureChecks,
    CrashChecks,
    ExtrasChecks,
    GroupChecks,
    LifecycleChecks,
    LifecycleLimitChecks,
    MetricsChecks,
    StateChecks,
    StoringChecks,
    StreamChecks,
):
    """The backend contract as tests; subclass and set ``backend``.

    Feature checks come in as mixins (:class:`~curator.testing.grouping.GroupChecks`,
    :class:`~curator.testing.lifecycle.LifecycleChecks`).
    """

    backend: ClassVar[str]
    jobs: ClassVar[int | None] = None
    options: ClassVar[dict[str, Any]] = {}
    plugins: ClassVar[Sequence[tuple[str, object]]] = ()
    load_entrypoints: ClassVar[bool] = True
    limits: ClassVar[KitLimits] = DEFAULT_LIMITS
    lasting_threads: ClassVar[tuple[str, ...]] = ()
    """Name prefixes of threads the backend's engine starts once per interpreter.

    Such a thread (Dask's ``Dask-Offload`` executor) is started by whichever
    run needs it first and lives as long as the interpreter, like
    multiprocessing's fork server: it is not counted as a leftover.
    """

    # -- helpers ------------------------------------------------------------------

    @pytest.fixture
    def backend_options(self) -> dict[str, Any]:
        """The backend options every check runs with (default: the ``options`` attribute).

        Override it as a fixture to build them from other fixtures, say the
        address of a cluster a fixture started.
        """
        return dict(self.options)

    @pytest.fixture(autouse=True)
    def _conformance_setup(
        self, tmp_path: Path, backend_options: dict[str, Any], request: pytest.FixtureRequest
    ) -> Iterator[None]:
        self.run_options = backend_options
        self.folder = tmp_path / "executions"
        self.folder.mkdir()
        self._load_backend()
        limits = self.limits
        capture = request.config.pluginmanager.getplugin("capturemanager")
        self.time_limit = TimeLimit(
            request.node.name,
            limits.check,
            limits.released_within,
            self._release,
            getattr(capture, "stop_global_capturing", None),
        )
        probes.kit_process = os.getpid()
        try:
            with self.time_limit:
                yield
        finally:
            probes.kit_process = None
            self.time_limit.close()  # even if the failure landed as the limit ended
            self._release()  # items the probe held end now, not in HOLD_SECONDS

    def _release(self) -> None:
        release(self.folder)

    def _load_backend(self) -> None:
        # Tolerant, so that one broken class fails the checks with its own problems
        # rather than every check with a loading error.
        self.registry = Registry.load(
            PluginSettings(strict=False),
            entrypoints=self.load_entrypoints,
            plugins=list(self.plugins),
        )
        name = normalize_name(self.backend)
        if name not in self.registry.backends:
            close = difflib.get_close_matches(name, self.registry.backends, n=1)
            said = f"; did you mean {close[0]!r}?" if close else ""
            problems = [r.describe() + ": " + r.error for r in self.registry.broken_plugins()]
            if problems:  # one of them may be the plugin that would have provided it
                said += "; broken plugins: " + "; ".join(problems)
            pytest.fail(
                f"backend {name!r} is not registered: no plugin provides it{said}", pytrace=False
            )
        try:
            self.backend_cls: type[Backend] = self.registry.backend(self.backend)
        except UsageError as exc:  # registered, but cannot run here (a missing requirement)
            pytest.fail(str(exc), pytrace=False)
        self.caps = self.backend_cls.capabilities
        self.n_jobs = self.jobs if self.jobs is not None else (2 if self.caps.parallel else 1)

    def run(self, count: int, *, indices: Any = None, **kwargs: Any) -> RunResult:
        """Run a probe pipeline of ``count`` items on the backend under test."""
        behaviour = {
            k: kwargs.pop(k)
            for k in (
                "sleep",
                "fail",
                "flaky",
                "crash",
                "hang",
                "meet",
                "interrupt",
                "exit",
                "unprintable",
                "unpicklable",
                "local",
                "groups",
                "lifecycle",
                "lazy_teardown",
                "hang_hook",
                "tally",
                "shards",
                "chatty",
                "binary",
                "bypass",
                "waits",
                "hang_after",
                "fail_after",
            )
            if k in kwargs
        }
        kwargs.setdefault("reporter", None)
        kwargs.setdefault("on_error", "continue")
        return run(
            probe(count, self.folder, **behaviour),
            backend=self.backend,
            jobs=kwargs.pop("jobs", self.n_jobs),
            options=kwargs.pop("options", self.run_options),
            indices=indices,
            registry=kwargs.pop("registry", self.registry),
            **kwargs,
        )

    def runs_per_index(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for execution in executions(self.folder):
            counts[execution.index] = counts.get(execution.index, 0) + 1
        return counts

    def need(self, capability: str) -> None:
        if not getattr(self.caps, capability):
            pytest.skip(f"backend {self.backend!r} does not declare {capability}")

    # -- the contract itself ------------------------------------------------------

    def test_the_backend_itself_runs_the_items(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if self.n_jobs == 1 and self.caps.parallel:
            pytest.skip("a parallel backend asked for jobs=1 is not called: items run in-process")
        calls: list[list[int]] = []
        execute = self.backend_cls.execute

        def counted(backend: Backend, work: Any, indices: Sequence[int]) -> Any:
            calls.append(list(indices))
            return execute(backend, work, indices)

        monkeypatch.setattr(self.backend_cls, "execute", counted)
        try:
            result = self.run(8)
        except Exception as exc:
            pytest.fail(
                f"backend {self.backend!r} could not run 8 plain items: "
                f"{type(exc).__name__}: {exc}",
                pytrace=False,
            )
        assert calls == [list(range(8))], (
            f"the core must call execute once with every index, it called it with {calls}"
        )
        assert result.count(Status.OK) == 8, result.counts()

    # -- results ------------------------------------------------------------------

    def test_every_index_runs_exactly_once_and_results_keep_order(self) -> None:
        result = self.run(40)
        assert [o.index for o in result.outcomes] == list(range(40))
        bad = [o for o in result.outcomes if o.status is not Status.OK]
        assert not bad, f"items did not succeed: {bad[:3]}"
        assert result.outputs == [[f"out-{i}", str(i)] for i in range(40)]
        runs = self.runs_per_index()
        assert runs == dict.fromkeys(range(40), 1), (
            f"backend {self.backend!r} must run every index exactly once; "
            f"ran {[i for i in range(40) if runs.get(i) != 1][:10]} a different number of times"
        )

    def test_subsets_keep_the_requested_order(self) -> None:
        result = self.run(30, indices=[17, 3, 25, 0])
        assert [o.index for o in result.outcomes] == [17, 3, 25, 0]
        assert sorted(self.runs_per_index()) == [0, 3, 17, 25]

    def test_an_empty_run_runs_nothing(self) -> None:
        result = self.run(10, indices=[])
        assert result.outcomes == []
        assert self.runs_per_index() == {}

    def test_unknown_options_are_refused(self) -> None:
        with pytest.raises(UsageError, match="unknown option"):
            self.run(2, options={**self.run_options, "no_such_option_xyz": 1})

    # -- failures -----------------------------------------------------------------

    def test_an_item_error_becomes_a_failed_outcome_with_its_traceback(self) -> None:
        result = self.run(10, fail=frozenset({3}))
        failed = result.outcomes[3]
        assert failed.status is Status.FAILED, (
            f"item 3 raised in the sink, so its outcome must be failed, not {failed.status.value}"
        )
        assert failed.error is not None
        assert failed.error.type == "ValueError"
        assert "probe: item 3 fails" in failed.error.traceback, "the worker's traceback is missing"
        others = [o.index for o in result.outcomes if o.index != 3 and o.status is not Status.OK]
        assert not others, f"items next to the failing one did not succeed: {others}"

    def test_an_item_raising_keyboard_interrupt_or_system_exit_fails_only_that_item(
        self,
    ) -> None:
        result = self.run(12, interrupt=frozenset({3}), exit=frozenset({5}))
        assert not result.interrupted, "an item's own KeyboardInterrupt must not stop the run"
        assert [(o.index, o.status, o.error and o.error.type) for o in result.failures] == [
            (3, Status.FAILED, "KeyboardInterrupt"),
            (5, Status.FAILED, "SystemExit"),
        ], f"expected items 3 and 5 to fail with their own exceptions: {result.failures}"
        assert result.count(Status.OK) == 10

    def test_an_exception_that_cannot_be_printed_fails_only_its_item(self) -> None:
        result = self.run(8, unprintable=frozenset({2}))
        failed = result.outcomes[2]
        assert failed.status is Status.FAILED, failed
        assert failed.error is not None
        assert failed.error.type == "curator.testing.probes.Unprintable"
        assert "str() raised RuntimeError" in failed.error.message
        assert result.count(Status.OK) == 7

    def test_an_unpicklable_result_fails_only_its_item_and_the_rest_is_recorded(self) -> None:
        store = self.folder.parent / "unpicklable.sqlite"
        result = self.run(60, unpicklable=frozenset({7}), checkpoint=store)
        failed = result.outcomes[7]
        assert failed.status is Status.FAILED, failed
        assert failed.error is not None
        assert failed.error.type == "UnpicklableResult"
        assert "cannot be pickled" in failed.error.message
        assert result.count(Status.OK) == 59
        recorded = report(store).counts
        assert recorded == {"ok": 59, "failed": 1}, f"the checkpoint holds {recorded}"

    def test_on_error_raise_stops_dispatching_promptly(self) -> None:
        # The third item to start fails, and every one after it, in whatever order the
        # backend takes the indices.
        with pytest.raises(TaskFailedError) as info:
            self.run(300, sleep=0.02, fail_after=2, on_error="raise")
        assert info.value.index not in self.runs_per_index(), "the failed item ran to its end"
        # Started, not completed: every item after the failing one fails too, and a
        # backend that ignored the stop ran all 300 of them without one completion.
        ran = len(started(self.folder))
        limit = self.limits.stop_dispatch_base + self.limits.stop_dispatch_per_job * self.n_jobs
        assert ran <= limit, (
            f"backend {self.backend!r} kept dispatching after the run was asked to stop: "
            f"{ran} of 300 items started (at most {limit} expected)"
        )

    # -- parallelism --------------------------------------------------------------

    def test_jobs_bounds_how_many_items_run_at_once(self) -> None:
        self.run(6 * self.n_jobs, sleep=0.1)
        peak = peak_concurrency(executions(self.folder))
        assert peak <= self.n_jobs, (
            f"backend {self.backend!r} ran {peak} items at once with jobs={self.n_jobs}"
        )

    def test_a_parallel_backend_runs_items_at_the_same_time(self) -> None:
        self.need("parallel")
        result = self.run(4 * self.n_jobs, meet=True)
        lonely = [o.index for o in result.outcomes if o.status is not Status.OK]
        assert not lonely, (
            f"backend {self.backend!r} declares parallel but never ran two items at the same "
            f"time (items {lonely[:5]} waited alone)"
        )

    # -- events -------------------------------------------------------------------

    def test_start_and_finish_events_per_index_in_order_in_the_parent(self) -> None:
        events = _Events()
        self.run(25, reporter=events)
        here = (os.getpid(), threading.get_ident())
        assert events.callers() == {here}, (
            "event hooks must be called in the parent process, in the thread that runs the loop"
        )
        for index in range(25):
            kinds = events.hooks_of(index)
            assert kinds == ["task_start", "task_finish"], (
                f"index {index}: expected one start then one finish event, got {kinds}"
            )

    # -- isolation, timeouts, cancellation ----------------------------------------------

    def test_a_hung_item_times_out(self) -> None:
        self.need("timeouts")
        start = time.monotonic()
        limits = self.limits
        with self.time_limit.waiting_for(
            "the run of a hung item to time out",
            within=limits.timed_out_within,
            limit="timed_out_within",
        ):
            result = self.run(6, hang=frozenset({2}), timeout=limits.item_timeout)
        elapsed = time.monotonic() - start
        assert elapsed < limits.timed_out_within, (
            f"a {limits.item_timeout:g} s timeout ended the run only after {elapsed:.1f} s"
        )
        assert result.outcomes[2].status is Status.TIMED_OUT
        assert [o.index for o in result.outcomes if o.status is not Status.OK] == [2]

    def test_stopping_leaves_no_process_or_thread_behind(self) -> None:
        threads = set(threading.enumerate())
        children = processes.children()
        with pytest.raises(TaskFailedError):
            self.run(100, sleep=0.01, fail=frozenset({10}), on_error="raise")
        time.sleep(0.1)
        self._assert_nothing_left(threads, children)

    def test_a_hard_stop_kills_running_items_and_leaves_nothing_behind(self) -> None:
        self.need("cancel_running")
        threads = set(threading.enumerate())
        children = processes.children()
        start = time.monotonic()
        events = _Events(stop_after=1)
        with (
            self.time_limit.waiting_for(
                "the run to end after a hard stop", within=self.limits.hard_stop, limit="hard_stop"
            ),
            pytest.raises(RunInterrupted) as info,
        ):
            self.run(20, hang_after=1, reporter=events)  # the first to start finishes
        elapsed = time.monotonic() - start
        assert elapsed < self.limits.hard_stop, (
            f"a hard stop must not wait for running items; the run ended after {elapsed:.1f} s"
        )
        assert info.value.result.count(Status.OK) == 1, "the item that finished must stay ok"
        assert not events.unfinished(), f"started, never finished: {events.unfinished()}"
        time.sleep(0.1)
        self._assert_nothing_left(threads, children)

    def test_the_end_of_the_grace_period_stops_running_items(self) -> None:
        store = self.folder.parent / "grace.sqlite"
        events = _Events()
        limits = self.limits
        start = time.monotonic()
        signaller = self._signal_later(signal.SIGINT, _Progress(events, self.folder, 2))
        with (
            signaller,
            self.time_limit.waiting_for(
                "the run to end after its grace period",
                within=limits.grace_end,
                limit="grace_end",
                after=signaller.sent,
            ),
            pytest.raises(RunInterrupted) as info,
        ):
            # The first two items to start finish, whatever their indices; the rest hang.
            self.run(30, hang_after=2, grace=limits.grace, reporter=events, checkpoint=store)
        elapsed = time.monotonic() - start
        assert elapsed < limits.grace_end, (
            f"a {limits.grace:g} s grace period ended the run only after {elapsed:.1f} s"
        )
        outcomes = info.value.result.outcomes
        finished = {o.index for o in outcomes if o.status is Status.OK}
        assert len(finished) == 2, [o for o in outcomes if o.status is not Status.CANCELLED]
        announced = set(events.indices("task_start")) - finished
        wrong = {i: outcomes[i].status.value for i in announced}
        assert set(wrong.values()) <= {"interrupted"}, (
            f"items announced as running at the end of the grace period must end "
            f"interrupted: {wrong}"
        )
        assert not events.unfinished(), f"started, never finished: {events.unfinished()}"
        recorded = report(store).counts
        assert recorded.get("ok") == 2, f"the finished items must be recorded: {recorded}"

    def test_sigterm_stops_at_once_without_a_grace_period(self) -> None:
        events = _Events()
        start = time.monotonic()
        signaller = self._signal_later(signal.SIGTERM, _Progress(events, self.folder, 1))
        with (
            signaller,
            self.time_limit.waiting_for(
                "the run to end after SIGTERM",
                within=self.limits.sigterm,
                limit="sigterm",
                after=signaller.sent,
            ),
            pytest.raises(RunInterrupted) as info,
        ):
            self.run(10, hang_after=1, grace=60.0, reporter=events)
        elapsed = time.monotonic() - start
        assert info.value.result.terminated
        assert elapsed < self.limits.sigterm, (
            f"SIGTERM must not wait out the 60 s grace period ({elapsed:.1f} s)"
        )
        assert info.value.result.count(Status.OK) == 1, "the finished item stays ok"

    def _signal_later(self, signum: int, ready: _Progress) -> _signal_later:
        return _signal_later(signum, ready, self.time_limit, self.limits.signal_after)

    def _assert_nothing_left(self, threads: set[threading.Thread], children: set[int]) -> None:
        deadline = time.monotonic() + self.limits.leftovers
        lasting = tuple(self.lasting_threads)
        while time.monotonic() < deadline:
            new_threads = [
                t
                for t in threading.enumerate()
                if t not in threads and t.is_alive() and not t.name.startswith(lasting)
            ]
            new_children = processes.children() - children - processes.interpreter_helpers()
            if not new_threads and not new_children:
                return
            time.sleep(0.05)
        assert not new_threads, (
            f"backend {self.backend!r} left threads running: {[t.name for t in new_threads]}"
        )
        assert not new_children, (
            f"backend {self.backend!r} left child processes running: {sorted(new_children)}"
        )

    # -- policies through the backend ----------------------------------------------------

    def test_retries_run_through_the_backend(self) -> None:
        events = EventRecorder()
        result = self.run(10, flaky=frozenset({4}), retries=1, reporter=events)
        assert result.ok, [o for o in result.outcomes if not o.ok]
        assert result.outcomes[4].attempt == 2
        assert [(o.index, o.attempt) for o in result.retried] == [(4, 1)]
        starts = [e.attempt for e in events.of("task_start") if e.index == 4]
        finishes = [e.attempt for e in events.of("task_finish") if e.index == 4]
        assert starts == finishes == [1, 2], (
            f"item 4 ran twice: its start events must say attempts [1, 2] like its outcomes; "
            f"starts said {starts}, outcomes {finishes}"
        )

    def test_a_session_runs_run_after_run_and_closing_leaves_nothing_behind(self) -> None:
        threads = set(threading.enumerate())
        children = processes.children()
        with Session(
            backend=self.backend, jobs=self.n_jobs, options=self.run_options, registry=self.registry
        ) as session:
            for count in (7, 12):
                result = session.run(probe(count, self.folder), reporter=None, on_error="continue")
                assert result.ok, [o for o in result.outcomes if not o.ok]
                assert [o.index for o in result.outcomes] == list(range(count)), (
                    "a backend instance must run one execute() after another: every round "
                    "of a run (retries) and every run of a session uses the same instance"
                )
        self._assert_nothing_left(threads, children)

    def test_resume_runs_only_what_is_not_done(self) -> None:
        store = self.folder.parent / "checkpoint.sqlite"
        # Item 6 fails the first time only: the same pipeline, resumed, succeeds.
        self.run(15, flaky=frozenset({6}), checkpoint=store)
        before = self.runs_per_index()
        resumed = self.run(15, flaky=frozenset({6}), checkpoint=store, resume=True)
        after = self.runs_per_index()
        rerun = sorted(i for i in after if after[i] != before.get(i, 0))
        assert rerun == [6], f"resume must run only the failed item 6, it ran {rerun}"
        assert resumed.count(Status.SKIPPED) == 14
        assert resumed.outcomes[6].status is Status.OK

    # -- packaging ------------------------------------------------------------------------

    def test_the_hook_and_backend_modules_import_nothing_heavy(self) -> None:
        # Listing imports the hook module; most command lines import every installed
        # backend's class (for `curator run`'s flags): neither may pull in an engine.
        name = normalize_name(self.backend)
        record = self.registry.backends[name].plugin
        if not record.module:
            pytest.skip("the backend is not provided by an entry point")
        backend_module = self.registry.backend(name).__module__
        for module, what in (
            (record.module, "the plugin's hook module"),
            (backend_module, "the module of the backend's class"),
        ):
            code = (
                "import importlib, json, sys; "
                f"importlib.import_module({module!r}); "
                "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
            heavy = sorted(HEAVY_MODULES & set(eval(out)))
            assert not heavy, (
                f"importing {module} ({what}) imports {heavy}, and every curator command "
                "that lists or runs backends imports it; import them inside the backend's "
                "execute() instead"
            )
