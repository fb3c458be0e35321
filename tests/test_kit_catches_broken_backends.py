"""The conformance kit can fail: it catches deliberately broken backends with a clear message."""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from core_support import make_distribution

BROKEN = """
import threading, time
from dataclasses import dataclass
from curator import (
    Backend, Capabilities, ErrorInfo, Outcome, Status, TaskStart, WorkerInfo, hookimpl, option,
)

class _Base(Backend):
    capabilities = Capabilities(parallel=True)

class DropsOne(_Base):
    name = "drops-one"
    def execute(self, work, indices):
        for index in list(indices)[:-1]:
            yield work.start(index)
            yield work(index)

class DuplicatesOne(_Base):
    name = "duplicates-one"
    def execute(self, work, indices):
        for index in [*indices, indices[0]]:
            yield work.start(index)
            yield work(index)

class IgnoresJobs(_Base):
    name = "ignores-jobs"
    def execute(self, work, indices):
        done = []
        threads = [threading.Thread(target=lambda i=i: done.append(work(i))) for i in indices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for outcome in done:
            yield work.start(outcome.index)
            yield outcome

class SwallowsErrors(_Base):
    name = "swallows-errors"
    def execute(self, work, indices):
        for index in indices:
            yield work.start(index)
            outcome = work(index)
            if outcome.status is Status.FAILED:
                outcome = Outcome(index, Status.OK, [], None, outcome.worker,
                                  outcome.started, outcome.finished)
            yield outcome

class SplitsGroups(_Base):
    name = "splits-groups"
    capabilities = Capabilities(parallel=True, keeps_groups=True)  # but ignores them
    def execute(self, work, indices):
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(self.jobs) as pool:
            for outcome in pool.map(work, list(indices)):
                yield TaskStart.of(outcome)
                yield outcome

class RebuildsOutcomes(_Base):
    name = "rebuilds-outcomes"
    def execute(self, work, indices):  # runs the pipeline itself: the stages' state is lost
        for index in indices:
            yield work.start(index)
            try:
                yield Outcome(index, Status.OK, work.pipeline[index], worker="main")
            except Exception as exc:
                yield Outcome(index, Status.FAILED, error=ErrorInfo.from_exception(exc))

class LeaksAWorker(_Base):
    name = "leaks-a-worker"
    def execute(self, work, indices):
        threading.Thread(target=time.sleep, args=(60,), daemon=True, name="leaked").start()
        for index in indices:
            if self.stop_requested:
                return
            yield work.start(index)
            yield work(index)

class CannotRun(Backend):
    name = "cannot-run"
    capabilities = Capabilities(parallel=False)
    def execute(self, work, indices):
        raise RuntimeError("this backend never ran an item")
        yield

class NoExecute(Backend):
    name = "no-execute"

@dataclass(frozen=True)
class _TwoWorkers:
    workers: int = option("two", help="how many")

class WrongDefault(_Base):
    name = "wrong-default"
    Options = _TwoWorkers
    def execute(self, work, indices):
        for index in indices:
            yield work(index)

class StartsWithoutAttempt(_Base):
    name = "starts-without-attempt"
    def execute(self, work, indices):
        for index in indices:
            yield TaskStart(index, "main", time.time())  # as an old tutorial did
            yield work(index)

class IgnoresHookLimits(_Base):
    name = "ignores-hook-limits"
    capabilities = Capabilities(parallel=True, worker_lifecycle=True, lifecycle_timeouts=True)
    def execute(self, work, indices):  # calls the hooks, but never bounds them
        work.setup(WorkerInfo(0, self.name, self.jobs))
        for index in indices:
            yield work.start(index)
            yield work(index)
        work.teardown()

class ReportsAtTheEnd(_Base):
    name = "reports-at-the-end"
    def execute(self, work, indices):  # a batch job's results, only once the job ended
        done = []
        runner = threading.Thread(target=lambda: done.extend(work(i) for i in indices))
        runner.start()
        runner.join()
        for outcome in done:
            yield work.start(outcome.index)
            yield outcome

class NeverAnswers(_Base):
    name = "never-answers"
    def execute(self, work, indices):  # waits for a job that never ends
        threading.Event().wait()
        yield

class SwallowsEverything(_Base):
    name = "swallows-everything"
    def execute(self, work, indices):  # even the check's failure: only the process can end
        while True:
            try:
                threading.Event().wait()
            except BaseException:
                pass
        yield

def _run_one(work, index, conn):
    conn.send(work(index, "process-0"))

class ForgetsExitCodes(_Base):
    name = "forgets-exit-codes"
    capabilities = Capabilities(parallel=True, needs_picklable_work=True, isolates_crashes=True)
    exit_code = None  # what its crashed outcomes say
    def execute(self, work, indices):  # each item in a process of its own
        import multiprocessing
        context = multiprocessing.get_context("fork")
        for index in indices:
            started = time.time()
            yield TaskStart(index, "process-0", started)
            here, there = context.Pipe(duplex=False)
            child = context.Process(target=_run_one, args=(work, index, there))
            child.start()
            there.close()
            try:
                outcome = here.recv()
            except EOFError:  # it died
                outcome = Outcome.crashed(
                    index, "its process died", "process-0", started, exit_code=self.exit_code
                )
            child.join()
            yield outcome

class NeverTimesOut(ForgetsExitCodes):
    name = "never-times-out"
    capabilities = Capabilities(  # but waits for a hung item to its end
        parallel=True, needs_picklable_work=True, isolates_crashes=True, timeouts=True
    )

class NeverEnds(NeverAnswers):
    name = "never-ends"
    capabilities = NeverTimesOut.capabilities  # and waits for a job that never ends

class CannotTellExitCodes(ForgetsExitCodes):
    name = "cannot-tell-exit-codes"
    capabilities = Capabilities(
        parallel=True, needs_picklable_work=True, isolates_crashes=True, crash_exit_codes=False
    )

class GuessesExitCodes(CannotTellExitCodes):
    name = "guesses-exit-codes"
    exit_code = 1

class IgnoresStop(_Base):
    name = "ignores-stop"
    stop_requested = False  # never reads request_stop()
    def execute(self, work, indices):
        for index in indices:
            yield work.start(index)
            yield work(index)

class FakesIsolation(_Base):
    name = "fakes-isolation"  # runs items here, yet says a crash costs only its item
    capabilities = Capabilities(parallel=True, needs_picklable_work=True, isolates_crashes=True)
    def execute(self, work, indices):
        for index in indices:
            yield work.start(index)
            yield work(index)

@hookimpl
def curator_register_backends():
    return [
        DropsOne, DuplicatesOne, IgnoresJobs, SwallowsErrors, LeaksAWorker,
        CannotRun, NoExecute, WrongDefault, StartsWithoutAttempt, SplitsGroups,
        RebuildsOutcomes, IgnoresHookLimits, ReportsAtTheEnd, NeverAnswers, NeverTimesOut,
        NeverEnds, SwallowsEverything,
        ForgetsExitCodes, CannotTellExitCodes, GuessesExitCodes, IgnoresStop, FakesIsolation,
    ]
"""


def _kit_on(pytester: pytest.Pytester, backend: str, setting: str) -> None:
    """The kit's checks against one of the broken backends, with one class attribute set."""
    pytester.makepyfile(broken_backends=BROKEN)
    pytester.makepyfile(
        test_broken=textwrap.dedent(
            f"""
            import broken_backends
            from curator.testing import BackendConformance
            from curator.testing.limits import KitLimits

            class TestBroken(BackendConformance):
                backend = {backend!r}
                plugins = [("broken", broken_backends)]
                load_entrypoints = False
                {setting}
            """
        )
    )


@pytest.mark.parametrize(
    ("backend", "test", "message"),
    [
        ("drops-one", "test_every_index", "finished without an outcome for 1 indices"),
        ("duplicates-one", "test_every_index", "reported index 0 twice"),
        ("ignores-jobs", "test_jobs_bounds", "ran * items at once with jobs=2"),
        ("swallows-errors", "test_an_item_error", "its outcome must be failed, not ok"),
        ("leaks-a-worker", "test_stopping_leaves", "left threads running: *leaked*"),
        ("splits-groups", "test_keep_together", "group * was split: its items ran on 2 workers*"),
        (
            "rebuilds-outcomes",
            "test_stage_state_merges",
            "*yielded an ok outcome without its stages' state*",
        ),
        (
            "cannot-run",
            "test_the_backend_itself",
            "could not run 8 plain items: RuntimeError: this backend never ran an item",
        ),
        ("no-execute", "test_every_index", "*'no-execute' (NoExecute): it does not implement*"),
        (
            "ignores-hook-limits",
            "test_a_setup_that_hangs",
            "*the run did not end within 5 s of a stage hook hanging*",
        ),
        (
            "wrong-default",
            "test_every_index",
            "*option 'workers' is declared int but its default 'two' is not*",
        ),
        (
            "forgets-exit-codes",
            "test_a_worker_crash",
            "*exited with code 7, but its outcome says None (a backend that cannot tell "
            "declares crash_exit_codes=False)*",
        ),
        (
            "ignores-stop",
            "test_on_error_raise_stops",
            "*kept dispatching after the run was asked to stop: 300 of 300 items started*",
        ),
        (
            "fakes-isolation",
            "test_a_worker_crash",
            "*item 5 was to crash its worker process, but it runs in the test's own process*",
        ),
        (
            "guesses-exit-codes",
            "test_a_worker_crash",
            "*exited with code 7, but its outcome says 1: a backend that cannot tell gives "
            "None, never a wrong code*",
        ),
    ],
)
def test_the_kit_catches_a_broken_backend(
    pytester: pytest.Pytester, backend: str, test: str, message: str
) -> None:
    _kit_on(pytester, backend, "hook_run_bound = 5.0")
    result = pytester.runpytest_subprocess("-p", "curator.testing.pytest_plugin", "-k", test)
    outcomes = result.parseoutcomes()
    # A class that cannot register fails the check's setup (an error), others the check.
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, outcomes
    assert outcomes.get("passed", 0) == 0, outcomes
    result.stdout.fnmatch_lines([f"*{message}*"])


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (
            "ignores-stpo",
            "*backend 'ignores-stpo' is not registered: no plugin provides it; did you mean "
            "'ignores-stop'?; broken plugins: plugin 'broken' (builtin): *",
        ),
        ("sequential-x", "*backend 'sequential-x' is not registered: no plugin provides it;*"),
    ],
)
def test_a_backend_the_kit_cannot_find_is_named_with_what_is_close(
    pytester: pytest.Pytester, backend: str, message: str
) -> None:
    _kit_on(pytester, backend, "")
    result = pytester.runpytest_subprocess("-p", "curator.testing.pytest_plugin", "-k", "every")
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("backend", "test", "message"),
    [
        (
            "reports-at-the-end",
            "test_sigterm",
            "*waited 3 s for 1 outcome(s) to reach the parent and another item to start before "
            "sending SIGTERM; the parent had 0 outcome(s)*",
        ),
        (
            "never-answers",
            "test_every_index_runs",
            "*test_every_index_runs_exactly_once_and_results_keep_order did not finish within "
            "its 4 s: it was waiting for the check to end*",
        ),
    ],
)
def test_a_check_the_backend_never_answers_fails_in_its_time_limit(
    pytester: pytest.Pytester, backend: str, test: str, message: str
) -> None:
    """The kit never hangs: a backend that sends nothing fails the check, naming the wait."""
    _kit_on(pytester, backend, "limits = KitLimits(check=4, signal_after=3)")
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", "-k", test, timeout=120
    )
    assert time.monotonic() - start < 60
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 1, outcomes
    result.stdout.fnmatch_lines([message])
    assert "every thread's stack" in result.stdout.str()  # captured with the check's stderr


@pytest.mark.parametrize(
    ("backend", "messages"),
    [
        (  # lets its items go once the kit does: the check's own assertion fails
            "never-times-out",
            [
                "*a 1 s timeout ended the run only after * s*",
                "*test_a_hung_item_times_out: the run of a hung item to time out took longer "
                "than 3 s (KitLimits.timed_out_within); letting go of the items the probe holds*",
            ],
        ),
        (  # does not end even then: failed 2 s (released_within) later
            "never-ends",
            [
                "*test_a_hung_item_times_out: the run of a hung item to time out took longer "
                "than 3 s (KitLimits.timed_out_within), and it had not ended 2 s after the "
                "probe let go of its items*",
            ],
        ),
    ],
)
def test_a_timed_check_fails_at_its_documented_limit_not_at_the_check_budget(
    pytester: pytest.Pytester, backend: str, messages: list[str]
) -> None:
    """A run that overruns a check's own limit is let go of when the limit passes, and
    fails on it: not after the 60 s budget (or after the run, which may never end)."""
    _kit_on(
        pytester, backend, "limits = KitLimits(check=60, timed_out_within=3, released_within=2)"
    )
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", "-k", "test_a_hung_item_times_out", timeout=120
    )
    assert time.monotonic() - start < 40
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 1, outcomes
    result.stdout.fnmatch_lines(messages)


@pytest.mark.parametrize("capture", [["-s"], []])
def test_a_check_that_will_not_give_up_ends_the_test_process(
    pytester: pytest.Pytester, capture: list[str]
) -> None:
    """The last resort: a session that cannot fail a check ends, with every stack shown,
    under pytest's capture too (it would hold them to the end of a check that never ends)."""
    _kit_on(pytester, "swallows-everything", "limits = KitLimits(check=2, released_within=2)")
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", *capture, "-k", "test_every_index_runs",
        timeout=120,
    )  # fmt: skip
    assert result.ret == 70
    result.stderr.fnmatch_lines(
        [
            "*test_every_index_runs_exactly_once_and_results_keep_order did not finish within "
            "its 2 s*every thread's stack*",
            "*did not give up within 2 s of failing; ending the test process (exit code 70)*",
        ]
    )


def test_start_records_without_an_attempt_are_corrected_by_the_core(
    pytester: pytest.Pytester,
) -> None:
    # The core stamps each record with the round's attempt, so the kit's attempt check
    # passes for a backend that builds TaskStart(index, worker, started) on retries.
    pytester.makepyfile(broken_backends=BROKEN)
    pytester.makepyfile(
        test_attempts="""
        import broken_backends
        from curator.testing import BackendConformance

        class TestAttempts(BackendConformance):
            backend = "starts-without-attempt"
            plugins = [("broken", broken_backends)]
            load_entrypoints = False
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", "-k", "test_retries"
    )
    result.assert_outcomes(passed=1)


def test_a_correct_backend_passes_the_same_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ok="""
        from curator.testing import BackendConformance

        class TestThreads(BackendConformance):
            backend = "thread-pool"
            load_entrypoints = False
        """
    )
    result = pytester.runpytest_subprocess("-p", "curator.testing.pytest_plugin")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes["passed"] >= 10


def test_a_backend_that_cannot_tell_exit_codes_passes_the_crash_check_by_saying_so(
    pytester: pytest.Pytester,
) -> None:
    # A batch system may report only that a job ended: declared, a crash without a code is fine.
    _kit_on(pytester, "cannot-tell-exit-codes", "")
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", "-k", "test_a_worker_crash"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 0, outcomes


HEAVY_HOOKS = """
from curator import ClassRef, hookimpl


@hookimpl
def curator_register_backends():
    return [ClassRef("heavy", "heavy_backend:Heavy")]
"""

HEAVY_BACKEND = """
import dask  # at import: every curator command that lists or runs backends would pay it

from curator import Backend, Capabilities


class Heavy(Backend):
    name = "heavy"
    capabilities = Capabilities()

    def execute(self, work, indices):
        for index in indices:
            yield work(index)
"""


def test_a_backend_module_that_imports_an_engine_is_caught(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the hook module: `curator run` imports every installed backend's class."""
    site = pytester.path / "site"
    (site / "dask").mkdir(parents=True)
    (site / "dask" / "__init__.py").write_text("")  # stands for the engine
    (site / "heavy_hooks.py").write_text(HEAVY_HOOKS)
    (site / "heavy_backend.py").write_text(HEAVY_BACKEND)
    make_distribution(site, "curator-fixture-heavy", "1.0", {"heavy": "heavy_hooks"})
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        test_heavy=textwrap.dedent(
            """
            from curator.testing import BackendConformance

            class TestHeavy(BackendConformance):
                backend = "heavy"
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "curator.testing.pytest_plugin", "-k", "nothing_heavy", timeout=120
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*importing heavy_backend (the module of the backend's class) imports ?'dask'?, and*"]
    )
