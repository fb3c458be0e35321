"""The origin's shard-style stateful stages: a shard per ok item, merged when the run ends."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import pytest
from core_support import curator, subprocess_env

from curator import Pipeline, StateMergeError, TaskFailedError, run
from curator.testing.probes import Numbers, Probe, WelfordShards
from curator.testing.shard_rows import rows


def expected(indices: list[int]) -> dict[str, float]:
    values = [WelfordShards.value(i) for i in indices]
    mean = math.fsum(values) / len(values)
    return {
        "count": len(values),
        "mean": mean,
        "variance": math.fsum((v - mean) ** 2 for v in values) / len(values),
    }


def assert_statistics(output: Path, indices: list[int]) -> None:
    got, want = json.loads(output.read_text()), expected(indices)
    assert got["count"] == want["count"]
    assert math.isclose(got["mean"], want["mean"], rel_tol=0, abs_tol=1e-12)
    assert math.isclose(got["variance"], want["variance"], rel_tol=0, abs_tol=1e-12)


def pipeline(folder: Path, count: int, stage: WelfordShards, **probe: Any) -> Pipeline[int]:
    return Pipeline(Numbers(count)).filter(stage).write(Probe(str(folder), **probe))


@pytest.mark.parametrize(("backend", "jobs"), [("sequential", 1), ("thread-pool", 3)])
def test_shards_merge_into_the_output_when_the_run_ends(
    backend: str, jobs: int, tmp_path: Path
) -> None:
    output = tmp_path / "stats.json"
    stage = WelfordShards(str(output))
    result = run(
        pipeline(tmp_path, 200, stage, fail=frozenset({5, 50})),
        backend=backend,
        jobs=jobs,
        on_error="continue",
        reporter=None,
    )
    assert result.count("ok") == 198  # type: ignore[arg-type]
    assert_statistics(output, [i for i in range(200) if i not in (5, 50)])
    # Two items failed: a resume may run them, so the ok items' shards stay for it to merge.
    assert {p.name for p in tmp_path.glob("stats_item_*")} == {
        f"stats_item_{i}.json" for i in range(200) if i not in (5, 50)
    }
    assert stage._output_path == str(output)  # the caller's stage points at the output again


def test_keep_shards_keeps_one_shard_per_ok_item(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    stage = WelfordShards(str(output))
    stage.keep_shards = True  # type: ignore[attr-defined]
    assert run(
        pipeline(tmp_path, 60, stage, sleep=0.002), backend="thread-pool", jobs=3, reporter=None
    ).ok
    shards = {p.name for p in tmp_path.glob("stats_item_*")}
    assert shards == {f"stats_item_{i}.json" for i in range(60)}
    assert not list(tmp_path.glob(".partial-*"))
    assert_statistics(output, list(range(60)))


def test_a_worker_id_template_names_the_shards(tmp_path: Path) -> None:
    stage = WelfordShards(str(tmp_path / "part-{worker_id}.json"))
    stage.keep_shards = True  # type: ignore[attr-defined]
    assert run(pipeline(tmp_path, 10, stage), reporter=None).ok
    shards = {p.name for p in tmp_path.glob("part-item_*")}
    assert shards == {f"part-item_{i}.json" for i in range(10)}
    assert_statistics(tmp_path / "part-{worker_id}.json", list(range(10)))


def test_a_stopped_run_keeps_its_shards_and_resume_merges_every_item(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    checkpoint = tmp_path / "run.sqlite"
    flaky = frozenset({30})
    with pytest.raises(TaskFailedError):
        run(
            pipeline(tmp_path, 80, WelfordShards(str(output)), flaky=flaky),
            reporter=None,
            checkpoint=checkpoint,
        )
    assert len(list(tmp_path.glob("stats_item_*"))) == 30  # kept for the resume
    assert_statistics(output, list(range(30)))  # what finished, merged already
    resumed = run(
        pipeline(tmp_path, 80, WelfordShards(str(output)), flaky=flaky),
        reporter=None,
        checkpoint=checkpoint,
        resume=True,
    )
    assert resumed.ok
    assert_statistics(output, list(range(80)))
    assert list(tmp_path.glob("stats_item_*")) == []


def test_a_run_that_does_not_resume_removes_stale_shards(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    stale = json.dumps([5, 1.0, 0.0, 1.0, 1.0]) + "\n"
    (tmp_path / "stats_item_25.json").write_text(stale)  # an item this run does not run
    (tmp_path / ".partial-0a1b-stats_item_3.json").write_text(stale)
    stage = WelfordShards(str(output))
    assert run(pipeline(tmp_path, 30, stage), reporter=None, indices=range(20)).ok
    assert_statistics(output, list(range(20)))
    assert list(tmp_path.glob("stats_item_*")) == []  # a complete run removes its shards
    assert list(tmp_path.glob(".partial-*")) == []


class BrokenShards(WelfordShards):
    @staticmethod
    def merge(paths: list[str], output: str) -> str:
        raise OSError("disk full")


def test_a_failing_merge_names_the_stage_and_keeps_the_shards(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    with pytest.raises(StateMergeError) as error:
        run(pipeline(tmp_path, 10, BrokenShards(str(output))), reporter=None)
    message = str(error.value)
    assert "BrokenShards could not merge its 10 shard files" in message
    assert "OSError: disk full (the shards are kept)" in message
    assert error.value.result is not None
    assert error.value.result.ok
    assert len(list(tmp_path.glob("stats_item_*.json"))) == 10


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_run_killed_after_a_flush_and_its_resume_merge_each_item_once(
    backend: str, tmp_path: Path
) -> None:
    """Issue 25.2: rows flushed by items whose record died with the run are not merged twice.

    Item 40's flush SIGKILLs the run (a real SIGKILL of the real process) right
    after writing its rows, so item 40, and any item whose record was still
    waiting for the checkpoint's next commit, ran but is not recorded: the
    resume runs them again, and they flush again.
    """
    env = subprocess_env(CURATOR_TEST_SHARDS=str(tmp_path))
    jobs = "1" if backend == "sequential" else "2"
    args = ["run", "pipelines:shard_rows", "-b", backend, "-j", jobs, "--checkpoint", "c.sqlite"]
    killed = curator(*args, env=env, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = curator(*args, "--resume", "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["ok"] + summary["skipped"] == 60
    assert sorted(rows(tmp_path / "rows.txt")) == list(range(60))
