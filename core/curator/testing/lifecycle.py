"""The kit's checks of per-worker ``setup(worker)`` / ``teardown()`` of stages.

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from curator.model.outcome import Status
from curator.testing.limits import DEFAULT_LIMITS
from curator.testing.mixin import KitMixin
from curator.testing.probes import executions, hook_calls, release
from curator.testing.processes import child_env

HOOK_LIMIT = DEFAULT_LIMITS.hook_limit
"""The setup/teardown limit the checks give, in seconds (:class:`KitLimits`)."""
T = TypeVar("T")

RUN_BOUND = DEFAULT_LIMITS.hook_run_bound
"""How long a check waits for a run whose hook hung before it calls the run hung."""


class LifecycleChecks(KitMixin):
    """Each worker sets its stages up once before its first item and tears them down after."""

    def test_each_worker_sets_up_before_its_first_item_and_tears_down_after_its_last(
        self,
    ) -> None:
        """``setup(worker)`` once per worker before its items, ``teardown()`` once after."""
        self.need("worker_lifecycle")
        result = self.run(12, lifecycle=True, sleep=0.01)
        assert result.ok, [o for o in result.outcomes if not o.ok][:3]
        runs = executions(self.folder)
        setups = _by_place(hook_calls(self.folder, "setup"))
        teardowns = _by_place(hook_calls(self.folder, "teardown"))
        for place in {r.where for r in runs}:
            mine = [r for r in runs if r.where == place]
            assert len(setups[place]) == 1, (
                f"the worker at {place} ran {len(mine)} items after {len(setups[place])} "
                "setup(worker) calls; a backend calls work.setup(info) once per worker, "
                "before its first item"
            )
            assert setups[place][0].at <= min(r.started for r in mine)
            assert len(teardowns[place]) == 1, (
                f"the worker at {place} ran {len(mine)} items; teardown() was called "
                f"{len(teardowns[place])} times instead of once, after its last item "
                "(work.teardown())"
            )
            assert teardowns[place][0].at >= max(r.finished for r in mine)
        for calls in setups.values():
            for call in calls:
                assert call.jobs == result.run.jobs
                assert 0 <= call.slot < call.jobs, f"slot {call.slot} of {call.jobs} workers"
        assert set(teardowns) <= set(setups)  # no teardown without its setup

    def test_a_stage_with_only_a_teardown_is_torn_down_after_each_workers_last_item(
        self,
    ) -> None:
        """A stage that opens what it needs in its first item has ``teardown()`` and no setup."""
        self.need("worker_lifecycle")
        result = self.run(12, lazy_teardown=True, sleep=0.01)
        assert result.ok, [o for o in result.outcomes if not o.ok][:3]
        runs = executions(self.folder)
        opened = _by_place(hook_calls(self.folder, "opened"))
        teardowns = _by_place(hook_calls(self.folder, "teardown"))
        for place in {r.where for r in runs}:
            mine = [r for r in runs if r.where == place]
            assert len(opened[place]) == 1, f"{place} opened {len(opened[place])} times"
            assert len(teardowns[place]) == 1, (
                f"the worker at {place} ran {len(mine)} items of a stage that defines "
                f"teardown() and no setup(worker); teardown() was called "
                f"{len(teardowns[place])} times instead of once, after its last item "
                "(work.setup(info) before the first item, work.teardown() after the last)"
            )
            assert teardowns[place][0].at >= max(r.finished for r in mine)

    def test_a_worker_that_replaces_a_crashed_one_sets_up_again(self) -> None:
        """The replacement's copy is set up before its first item too."""
        self.need("worker_lifecycle")
        self.need("isolates_crashes")
        result = self.run(12, lifecycle=True, crash=frozenset({3}))
        assert [o.index for o in result.outcomes if not o.ok] == [3]
        setups = _by_place(hook_calls(self.folder, "setup"))
        for run in executions(self.folder):
            assert setups[run.where], f"item {run.index} ran at {run.where} with no setup"
            assert setups[run.where][0].at <= run.started


class LifecycleLimitChecks(KitMixin):
    """A ``setup``/``teardown`` that hangs is bounded, reported, and costs no finished work."""

    hook_run_bound: ClassVar[float | None] = None
    """Seconds a run whose hook hangs may take before the check calls it hung
    (default :attr:`KitLimits.hook_run_bound <curator.testing.limits.KitLimits.hook_run_bound>`;
    kept for tests written before ``limits``)."""

    def _run_bound(self) -> float:
        return self.hook_run_bound or self.limits.hook_run_bound

    def test_a_setup_that_hangs_fails_the_items_its_worker_took_and_the_run_goes_on(
        self,
    ) -> None:
        """Past ``setup_timeout`` the worker's items fail ``SetupTimeout``; the others run."""
        self.need("lifecycle_timeouts")
        result = within_bound(
            self.folder,
            lambda: self.run(
                20, hang_hook="setup", sleep=0.01, setup_timeout=self.limits.hook_limit
            ),
            self._run_bound(),
        )
        failed = [o for o in result.outcomes if not o.ok]
        assert failed, "a setup hung past its limit, yet every item succeeded"
        for outcome in failed:
            assert outcome.status is Status.FAILED, outcome
            assert outcome.error is not None
            assert outcome.error.type == "SetupTimeout", outcome.error
            assert "WorkerHooks.setup(worker)" in outcome.error.message, (
                f"the error must name the stage whose setup overran: {outcome.error.message}"
            )
            assert f"{self.limits.hook_limit:g} s" in outcome.error.message, outcome.error.message
        if self.n_jobs > 1:
            assert result.count(Status.OK) > 0, (
                "one worker's setup hung; the other workers must run the rest of the items"
            )
        assert result.count(Status.OK) + len(failed) == 20

    def test_a_teardown_that_hangs_is_abandoned_with_a_warning_and_nothing_is_lost(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Past ``teardown_timeout`` the run ends, every outcome recorded, with a warning."""
        self.need("lifecycle_timeouts")
        store = self.folder.parent / "teardown.sqlite"
        with caplog.at_level("WARNING", logger="curator"):
            result = within_bound(
                self.folder,
                lambda: self.run(
                    12,
                    hang_hook="teardown",
                    teardown_timeout=self.limits.hook_limit,
                    checkpoint=store,
                ),
                self._run_bound(),
            )
        assert result.count(Status.OK) == 12, result.counts()
        warnings = [r.getMessage() for r in caplog.records if "teardown" in r.getMessage()]
        assert any(
            "WorkerHooks.teardown()" in w and f"{self.limits.hook_limit:g} s" in w for w in warnings
        ), f"no warning named the stage whose teardown overran and its limit: {warnings}"
        from curator.checkpoint.catalog import read

        assert read(store).counts == {"ok": 12}


def within_bound(folder: Path, run: Callable[[], T], bound: float = RUN_BOUND) -> T:
    """``run()`` in a thread; fail the test if it has not ended after ``bound`` seconds.

    Whatever happens, the hooks :func:`~curator.testing.probes.hold` hangs in
    ``folder`` are released afterwards, so a run that hung ends in the background.
    """
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["result"] = run()
        except BaseException as exc:  # handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=call, name="curator-kit-bounded-run", daemon=True)
    thread.start()
    thread.join(bound)
    release(folder)
    if thread.is_alive():
        pytest.fail(
            f"the run did not end within {bound:g} s of a stage hook hanging: the backend "
            "does not bound setup()/teardown() (Backend.setup_timeout, teardown_timeout)",
            pytrace=False,
        )
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


@dataclass
class HungHookRun:
    """What ``curator run`` did with a pipeline whose hook hung (:func:`run_with_hung_hook`)."""

    returncode: int
    summary: dict[str, Any]
    stderr: str
    folder: Path


def run_with_hung_hook(
    tmp: Path,
    hang: str,
    *flags: str,
    count: int = 50,
    env: dict[str, str] | None = None,
    bound: float = RUN_BOUND,
) -> HungHookRun:
    """Run ``count`` probe items with ``curator run`` in a child process, ``hang`` hook hanging.

    The child must end within ``bound`` seconds, or the test fails (it is
    killed, never left hanging). ``flags`` choose the backend and the limits;
    ``--keep-going --json --reporter none`` and a checkpoint in ``tmp`` are added.
    """
    folder = tmp / "executions"
    folder.mkdir(exist_ok=True)
    (tmp / "jobs.py").write_text(
        "from curator.testing.probes import probe\n"
        f"pipeline = probe({count}, {str(folder)!r}, hang_hook={hang!r}, sleep=0.01)\n"
    )
    command = [
        sys.executable, "-m", "curator", "run", "jobs.py:pipeline", *flags, "--keep-going",
        "--json", "--reporter", "none", "--checkpoint", str(tmp / "cp.sqlite"),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp, env=env or child_env(), timeout=bound
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"`curator run {' '.join(flags)}` did not end within {bound:g} s of a {hang}() "
            f"hanging:\n{exc.stderr!r}",
            pytrace=False,
        )
    finally:
        release(folder)
    assert proc.stdout.strip(), f"no JSON summary (exit {proc.returncode}): {proc.stderr}"
    return HungHookRun(proc.returncode, json.loads(proc.stdout), proc.stderr, folder)


def _by_place(calls: list[Any]) -> defaultdict[str, list[Any]]:
    found: defaultdict[str, list[Any]] = defaultdict(list)
    for call in calls:
        found[call.where].append(call)
    return found
