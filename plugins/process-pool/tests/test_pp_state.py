"""Stage state merged back from worker processes: exact statistics, timeouts, a killed parent."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pp_support import subprocess_env

from curator import Pipeline, Sink, Status, run
from curator.examples.snapshots import DatasetStatistics, SnapshotSource
from curator.testing.grouping import interleaved_groups
from curator.testing.probes import Numbers, Probe, Tally, WelfordShards, probe


class Drain(Sink[Any]):
    """Consumes each item and returns its index."""

    def __call__(self, items: Iterator[Any], index: int) -> list[str]:
        for _ in items:
            pass
        return [str(index)]


def _statistics(backend: str, jobs: int, **kwargs: Any) -> dict[str, Any]:
    stats = DatasetStatistics()
    pipeline = SnapshotSource(30, size=10).filter(stats).write(Drain())
    assert run(pipeline, backend=backend, jobs=jobs, reporter=None, **kwargs).ok
    return stats.summary()


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_merged_welford_statistics_equal_a_sequential_run_to_1e_12(jobs: int) -> None:
    expected = _statistics("sequential", 1)["field"]
    got = _statistics("process-pool", jobs)["field"]
    assert got["count"] == expected["count"] == 30 * 10 * 10
    for key in ("mean", "std", "min", "max"):
        assert math.isclose(got[key], expected[key], rel_tol=0, abs_tol=1e-12), key


def test_state_merges_with_keep_together_groups(tmp_path: Path) -> None:
    tally = Tally()
    groups = interleaved_groups(30, 5)
    result = run(
        probe(30, tmp_path, groups=groups, tally=tally, fail=frozenset({7})),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter=None,
    )
    assert result.count(Status.OK) == 29
    assert tally.seen == tuple(i for i in range(30) if i != 7)


def test_a_timed_out_item_counts_nothing(tmp_path: Path) -> None:
    tally = Tally()
    result = run(
        probe(12, tmp_path, tally=tally, hang=frozenset({4})),
        backend="process-pool",
        jobs=2,
        timeout=1.0,
        on_error="continue",
        reporter=None,
    )
    assert result.outcomes[4].status is Status.TIMED_OUT
    assert tally.seen == tuple(i for i in range(12) if i != 4)


_RUN = """
import sys
import threading
from curator import run
from curator.testing.probes import Numbers, Probe, Tally, WelfordShards, probe
run(probe(120, sys.argv[1], tally=Tally(), sleep=0.02, waits=WAITS), backend="process-pool",
    jobs=2, reporter=None, checkpoint=sys.argv[2])
"""
WAITS = dict.fromkeys(range(60, 120), ("go",))
"""Items from 60 on wait for the file ``go``: the killed run cannot finish before its kill.
The 60 before take 0.6 s at least, several of the writer's commits (0.1 s apart) of state."""


def _stored_state_rows(checkpoint: Path) -> int:
    """Rows of the checkpoint's states table; 0 until the run has created it."""
    if not checkpoint.exists():
        return 0
    try:
        with closing(sqlite3.connect(checkpoint)) as db, db:
            return int(db.execute("SELECT count(*) FROM states").fetchone()[0])
    except sqlite3.OperationalError:  # the file exists before its schema does
        return 0


def test_resume_after_the_parent_was_killed_merges_to_the_uninterrupted_state(
    tmp_path: Path,
) -> None:
    """SIGKILL of the run's process mid-run; the resumed run's stage holds every item once."""
    checkpoint = tmp_path / "run.sqlite"
    folder = tmp_path / "records"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"WAITS = {WAITS!r}\n{_RUN}", str(folder), str(checkpoint)],
        env=subprocess_env(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if _stored_state_rows(checkpoint) >= 3:
                break
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    (folder / "go").touch()
    tally = Tally()
    resumed = run(
        probe(120, str(folder), tally=tally, sleep=0.02, waits=WAITS),
        backend="process-pool",
        jobs=2,
        reporter=None,
        checkpoint=checkpoint,
        resume=True,
    )
    skipped = resumed.count(Status.SKIPPED)
    assert 0 < skipped <= 60
    assert resumed.count(Status.OK) == 120 - skipped
    assert tally.seen == tuple(range(120))


@pytest.mark.parametrize("jobs", [2, 3])
def test_shard_style_statistics_merge_from_worker_processes_to_1e_12(
    jobs: int, tmp_path: Path
) -> None:
    """The origin's flush()/merge(paths, output) style: one shard per item, merged at the end."""
    output = tmp_path / "stats.json"
    stage = WelfordShards(str(output))
    stage.keep_shards = True  # type: ignore[attr-defined]
    pipeline = Pipeline(Numbers(150)).filter(stage).write(Probe(str(tmp_path), sleep=0.001))
    assert run(pipeline, backend="process-pool", jobs=jobs, reporter=None).ok
    shards = {p.name for p in tmp_path.glob("stats_item_*")}
    assert shards == {f"stats_item_{i}.json" for i in range(150)}
    values = [WelfordShards.value(i) for i in range(150)]
    mean = math.fsum(values) / 150
    variance = math.fsum((v - mean) ** 2 for v in values) / 150
    got = json.loads(output.read_text())
    assert got["count"] == 150
    assert math.isclose(got["mean"], mean, rel_tol=0, abs_tol=1e-12)
    assert math.isclose(got["variance"], variance, rel_tol=0, abs_tol=1e-12)


class _LockState(Tally):
    def state(self) -> Any:
        return threading.Lock()

    def merge(self, states: list[Any]) -> Any:
        return ()


def test_a_partial_that_cannot_be_pickled_fails_its_item_naming_the_state(tmp_path: Path) -> None:
    result = run(
        probe(4, tmp_path, tally=_LockState()),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter=None,
    )
    assert [o.status for o in result.outcomes] == [Status.FAILED] * 4
    assert {o.error.type for o in result.outcomes if o.error} == {"UnpicklableState"}
