"""Mistakes in process-pool options and scripts: exit 2 and a message that says what to fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pp_support import subprocess_env

CASES = {
    "initializer attribute missing": (
        ["-o", "initializer=os:nonexistent"],
        "os has no attribute 'nonexistent'",
    ),
    "initializer module missing": (
        ["-o", "initializer=nosuchmod:f"],
        "cannot import 'nosuchmod'",
    ),
    "initargs not a literal": (["-o", "initargs=(1,"], "is not a Python literal"),
    "initializer kills the worker": (
        ["-o", "initializer=os:abort"],
        "workers keep dying before running any item (was killed by SIGABRT)",
    ),
    "memory limit below an idle worker's": (
        ["--memory-limit", "4MiB"],
        "memory_limit 4.0 MiB is below what a worker holds before running any item: process-",
    ),
}


def _curator(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(),
        timeout=120,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_bad_process_pool_options_exit_2(case: str, tmp_path: Path) -> None:
    extra, message = CASES[case]
    proc = _curator(
        "run", "pp_pipelines:slow_marked", "-b", "process-pool", "-j", "2", *extra, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    # Found by the second campaign: a run that failed before any item ended left its
    # new checkpoint behind.
    assert sorted(tmp_path.rglob("*")) == [], "the failed run left files behind"


def test_a_dry_run_refuses_a_pipeline_that_cannot_be_pickled_as_the_run_does(
    tmp_path: Path,
) -> None:
    """The dry run said it would run (exit 0); the run then refused the pipeline."""
    command = ["run", "pp_pipelines:locked", "-b", "process-pool", "-j", "2", "--reporter", "log"]
    dry = _curator(*command, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2, dry.stdout
    assert "needs a picklable pipeline" in dry.stderr
    assert sorted(tmp_path.rglob("*")) == [], "the dry run left files behind"
    ran = _curator(*command, cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr == dry.stderr  # the same error, before the run started


def test_a_memory_limit_with_one_job_is_refused_not_dropped(tmp_path: Path) -> None:
    # -j 1 runs items in the curator process itself: no worker to watch, no limit to apply.
    proc = _curator(
        "run", "pp_pipelines:slow_marked", "-b", "process-pool", "-j", "1",
        "--memory-limit", "1GiB", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "option(s) memory_limit would not apply; give it 2 or more jobs" in proc.stderr
    assert sorted(tmp_path.rglob("*")) == [], "the refused run left files behind"


def test_a_remembered_timeout_on_a_backend_without_timeouts_says_how_to_drop_it(
    tmp_path: Path,
) -> None:
    target = "pp_pipelines:fails_at_3"
    first = _curator(
        "run", target, "-b", "thread-pool", "-j", "2", "--timeout", "5", "--reporter", "none",
        cwd=tmp_path,
    )  # fmt: skip
    # thread-pool cannot stop items: --timeout is refused when given ...
    assert first.returncode == 2, first.stderr
    made = _curator(
        "run", target, "-b", "process-pool", "-j", "2", "--timeout", "5", "--reporter", "none",
        cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 1, made.stderr  # item 3 fails; the checkpoint remembers 5 s
    # ... and, remembered by --resume on another backend, named with the way out.
    other = _curator("run", target, "--resume", "-b", "thread-pool", cwd=tmp_path)
    assert other.returncode == 2, other.stderr
    assert "the checkpoint's run used --timeout 5, and backend 'thread-pool' cannot stop" in (
        other.stderr
    )
    assert "give --timeout 0 to resume without an item timeout" in other.stderr
    resumed = _curator(
        "run", target, "--resume", "-b", "thread-pool", "-j", "2", "--timeout", "0",
        "--keep-going", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 1, resumed.stderr  # item 3 still fails; the rest ran
    summary = json.loads(resumed.stdout)
    assert (summary["ok"] + summary["skipped"], summary["failed"]) == (9, 1), summary
    assert summary["skipped"] >= 1, summary  # what the process-pool run finished


def test_an_unpicklable_feature_of_a_plugin_is_named_before_any_worker_starts(
    tmp_path: Path,
) -> None:
    """A plugin's per-item feature ships with the work: one that cannot is the plugin's bug."""
    import threading

    from curator import ItemFeature, PluginError, Registry, hookimpl, run
    from curator.plugin_host.plugins import PluginSettings
    from curator.testing.probes import probe
    from curator_backend_process_pool import hooks

    class Locked(ItemFeature):
        name = "locked"

        def __init__(self) -> None:
            self.lock = threading.Lock()

    class Provides:
        @hookimpl
        def curator_register_item_features(self) -> list[type[ItemFeature]]:
            return [Locked]

    registry = Registry.load(
        PluginSettings(strict=True), entrypoints=False,
        plugins=[("process-pool", hooks), ("locked", Provides())],
    )  # fmt: skip
    with pytest.raises(PluginError) as refused:
        run(probe(3, tmp_path), backend="process-pool", jobs=2, registry=registry, reporter=None)
    assert "the feature 'locked'" in str(refused.value)
    assert "cannot be pickled (TypeError: cannot pickle '_thread.lock' object)" in str(
        refused.value
    )


def test_a_result_the_run_cannot_load_is_a_usage_error_naming_it() -> None:
    """It ended the run as an internal error (exit 3, a traceback)."""
    from pp_pipelines import ReturnsUnloadable

    from curator import Pipeline, UsageError, run
    from curator.testing.probes import Numbers

    with pytest.raises(UsageError, match="cannot load what process-pool worker") as caught:
        run(Pipeline(Numbers(40)).write(ReturnsUnloadable(7)), backend="process-pool",
            jobs=2, reporter=None, on_error="continue")  # fmt: skip
    assert "RuntimeError: this result loads in a worker only" in str(caught.value)
