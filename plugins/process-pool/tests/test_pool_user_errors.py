"""Mistakes in process-pool options and scripts: exit 2 and a message that says what to fix."""

from __future__ import annotations

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


def test_a_memory_limit_with_one_job_is_refused_not_dropped(tmp_path: Path) -> None:
    # -j 1 runs items in the curator process itself: no worker to watch, no limit to apply.
    proc = _curator(
        "run", "pp_pipelines:slow_marked", "-b", "process-pool", "-j", "1",
        "--memory-limit", "1GiB", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "option(s) memory_limit would not apply; give it 2 or more jobs" in proc.stderr
    assert sorted(tmp_path.rglob("*")) == [], "the refused run left files behind"
