"""Bounded setup(worker)/teardown() on worker processes: a hung hook costs its worker, not the run.

Each run happens in a child process that must end within a bound, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

from pathlib import Path

from pp_support import subprocess_env

from curator import Session, Status
from curator.checkpoint.catalog import read
from curator.testing.lifecycle import run_with_hung_hook, within_bound
from curator.testing.probes import probe

POOL = ("-b", "process-pool", "-j", "2")


def test_a_hung_setup_kills_its_worker_and_fails_only_the_chunk_it_took(tmp_path: Path) -> None:
    done = run_with_hung_hook(
        tmp_path, "setup", *POOL, "--setup-timeout", "2", env=subprocess_env()
    )
    assert done.returncode == 1, done.stderr
    failures = done.summary["failures"]
    assert [f["error_type"] for f in failures] == ["SetupTimeout"], failures
    message = failures[0]["message"]
    assert "WorkerHooks.setup(worker) did not finish within the setup limit of 2 s on worker " \
        "process-" in message  # fmt: skip
    assert "was killed and replaced" in message
    assert done.summary["ok"] == 49
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 49, "failed": 1}


def test_a_hung_teardown_kills_its_worker_with_a_warning_and_keeps_every_outcome(
    tmp_path: Path,
) -> None:
    done = run_with_hung_hook(
        tmp_path, "teardown", *POOL, "--teardown-timeout", "2", env=subprocess_env()
    )
    assert done.returncode == 0, done.stderr
    assert done.summary["ok"] == 50
    assert "warning: WorkerHooks.teardown() did not finish within the teardown limit of 2 s on " \
        "worker process-" in done.stderr  # fmt: skip
    assert "was killed" in done.stderr
    assert read(tmp_path / "cp.sqlite").counts == {"ok": 50}


def test_a_session_goes_on_with_a_fresh_worker_after_a_hung_teardown(tmp_path: Path) -> None:
    folder = tmp_path / "executions"
    folder.mkdir()
    with Session(backend="process-pool", jobs=2) as session:

        def runs() -> list[int]:
            first = session.run(
                probe(8, folder, hang_hook="teardown", sleep=0.01),
                teardown_timeout=1,
                reporter=None,
            )
            second = session.run(probe(8, folder, sleep=0.01), reporter=None)
            return [first.count(Status.OK), second.count(Status.OK)]

        assert within_bound(folder, runs) == [8, 8]
