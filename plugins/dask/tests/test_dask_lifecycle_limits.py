"""Bounded setup(worker)/teardown() on Dask workers: a hung hook never hangs the run.

Each run happens in a child process that must end within a bound, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

from pathlib import Path

from conftest import HERE

from curator.checkpoint.catalog import read
from curator.testing.lifecycle import run_with_hung_hook
from curator.testing.processes import child_env

DASK = ("-b", "dask", "-j", "2")


def test_a_hung_setup_fails_the_chunk_it_held_and_the_run_goes_on(tmp_path: Path) -> None:
    done = run_with_hung_hook(tmp_path, "setup", *DASK, "--setup-timeout", "2", env=child_env(HERE))
    assert done.returncode == 1, done.stderr
    failures = done.summary["failures"]
    assert failures, done.summary
    assert {f["error_type"] for f in failures} == {"SetupTimeout"}, failures
    assert (
        "WorkerHooks.setup(worker) did not finish within the setup limit of 2 s"
        in (failures[0]["message"])
    )
    assert done.summary["ok"] + len(failures) == 50
    assert done.summary["ok"] >= 25  # the other worker, and this one once set up afresh
    assert read(tmp_path / "cp.sqlite").counts == {
        "ok": done.summary["ok"],
        "failed": len(failures),
    }


def test_a_hung_teardown_is_abandoned_with_a_warning_and_keeps_every_outcome(
    tmp_path: Path,
) -> None:
    done = run_with_hung_hook(
        tmp_path, "teardown", *DASK, "--teardown-timeout", "2", env=child_env(HERE)
    )
    assert done.returncode == 0, done.stderr
    assert done.summary["ok"] == 50
    assert "warning: WorkerHooks.teardown() did not finish within the teardown limit of 2 s on " \
        "worker dask tcp://" in done.stderr  # fmt: skip
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 50}
