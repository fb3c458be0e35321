"""Bounded setup(worker)/teardown() on the built-in backends: a hung hook never hangs the run.

Each run happens in a child process that must end within a bound, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from core_support import registry_with, subprocess_env

from curator import Backend, Capabilities, Event, UsageError, Work, run
from curator.checkpoint.catalog import read
from curator.checkpoint.settings import RunSettings
from curator.running.policy import Policy
from curator.testing.lifecycle import run_with_hung_hook
from curator.testing.probes import Numbers, WorkerHooks

THREADS = ("thread-pool", "-j", "2")


def test_a_hung_setup_on_one_thread_fails_only_the_item_it_took(tmp_path: Path) -> None:
    done = run_with_hung_hook(tmp_path, "setup", "-b", *THREADS, "--setup-timeout", "1")
    assert done.returncode == 1, done.stderr
    failures = done.summary["failures"]
    assert [f["error_type"] for f in failures] == ["SetupTimeout"], failures
    assert (
        "WorkerHooks.setup(worker) did not finish within the setup limit of 1 s"
        in (failures[0]["message"])
    )
    assert done.summary["ok"] == 49
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 49, "failed": 1}


def test_a_hung_teardown_on_one_thread_is_abandoned_with_a_warning(tmp_path: Path) -> None:
    done = run_with_hung_hook(tmp_path, "teardown", "-b", *THREADS, "--teardown-timeout", "1")
    assert done.returncode == 0, done.stderr
    assert done.summary["ok"] == 50
    assert "warning: WorkerHooks.teardown() did not finish within the teardown limit of 1 s on " \
        "worker thread-" in done.stderr  # fmt: skip
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 50}


@pytest.mark.parametrize("backend", [("sequential",), ("thread-pool", "-j", "1")])
def test_in_process_a_hung_setup_is_interrupted_and_every_item_fails(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    done = run_with_hung_hook(tmp_path, "setup", "-b", *backend, "--setup-timeout", "1", count=5)
    assert done.returncode == 1, done.stderr
    assert {f["error_type"] for f in done.summary["failures"]} == {"SetupTimeout"}
    assert done.summary["failed"] == 5
    assert "WorkerHooks.setup(worker) has run for 1 s on worker main, past its limit" in done.stderr


def test_in_process_a_hung_teardown_is_interrupted_and_the_results_stay(tmp_path: Path) -> None:
    done = run_with_hung_hook(tmp_path, "teardown", "--teardown-timeout", "1", count=5)
    assert done.returncode == 0, done.stderr
    assert done.summary["ok"] == 5
    assert "WorkerHooks.teardown() did not finish within the teardown limit of 1 s on worker " \
        "main; it was interrupted" in done.stderr  # fmt: skip
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 5}


def test_a_shared_pipelines_hung_setup_fails_every_item(tmp_path: Path) -> None:
    done = run_with_hung_hook(
        tmp_path, "setup", "-b", *THREADS, "-o", "copy_pipeline=false", "--setup-timeout", "1",
        count=6,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.summary["failed"] == 6


BLOCKED = """
import time
import curator
from curator.testing.probes import Numbers

class Model(curator.Filter):
    def setup(self, worker):
        time.sleep(3600)  # one blocking call, not a loop

    def __call__(self, items):
        yield from items

def write(items, index):
    return list(items)

result = curator.run(
    Numbers(3).filter(Model()).write(write), setup_timeout=0.5, on_error="continue", reporter=None
)
print(sorted({o.error.type for o in result.outcomes}))
"""


def python(code: str, folder: Path) -> str:
    """What ``code`` prints, run in a child process that must end within 120 s."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=folder,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_in_the_main_thread_a_setup_blocked_in_one_call_is_interrupted(tmp_path: Path) -> None:
    assert python(BLOCKED, tmp_path).strip() == "['SetupTimeout']"


EVERY_THREAD = """
import time
import curator
from curator.testing.probes import Numbers

class Model(curator.Filter):
    def setup(self, worker):
        time.sleep(30)  # on every thread

    def __call__(self, items):
        yield from items

def write(items, index):
    return list(items)

result = curator.run(
    Numbers(10).filter(Model()).write(write), backend="thread-pool", jobs=2, setup_timeout=0.5,
    on_error="continue", reporter=None,
)
left = "no thread was left to run it: every thread's setup overran its limit"
print(result.count(curator.Status.FAILED), sum(left in o.error.message for o in result.outcomes))
"""


def test_when_every_thread_is_abandoned_the_items_left_fail_too(tmp_path: Path) -> None:
    # One item per thread, then the rest for want of a thread.
    assert python(EVERY_THREAD, tmp_path).split() == ["10", "8"]


def test_the_limits_follow_the_item_timeout_unless_given() -> None:
    assert Policy().setup_limit is None
    assert Policy().teardown_limit is None
    assert Policy(timeout=1).setup_limit == 60.0  # at least a minute
    assert Policy(timeout=30).teardown_limit == 300.0  # ten item timeouts
    assert Policy(timeout=30, setup_timeout=5).setup_limit == 5.0
    assert Policy(timeout=30, teardown_timeout=0).teardown_limit is None  # 0: no limit
    with pytest.raises(UsageError, match="setup_timeout must be a finite number >= 0"):
        Policy(setup_timeout=-1)
    with pytest.raises(UsageError, match="teardown_timeout must be a finite number"):
        Policy(teardown_timeout=float("nan"))


def test_the_limits_are_remembered_for_resume() -> None:
    settings = RunSettings(setup_timeout=5.0, teardown_timeout=0.5)
    again = RunSettings.from_json(settings.to_json())
    assert again == settings
    assert again.flags() == ["--setup-timeout", "5", "--teardown-timeout", "0.5"]


class Unbounded(Backend):
    """A parallel backend that calls the hooks but cannot bound them."""

    name = "unbounded"
    capabilities = Capabilities(parallel=True, worker_lifecycle=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index)


def test_a_backend_that_cannot_bound_the_hooks_refuses_the_limits(tmp_path: Path) -> None:
    registry = registry_with(Unbounded)
    pipeline = Numbers(2).filter(WorkerHooks(str(tmp_path))).write(lambda items, i: list(items))
    with pytest.raises(UsageError) as caught:
        run(pipeline, backend="unbounded", jobs=2, registry=registry, setup_timeout=5)
    assert "cannot bound the stages' setup(worker)/teardown()" in str(caught.value)
    assert "thread-pool" in str(caught.value)
    assert run(pipeline, backend="unbounded", jobs=2, registry=registry, reporter=None).ok
