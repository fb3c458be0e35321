"""The origin's shard-style stateful stages: per-worker shards merged when the run ends."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from curator import Pipeline, StateMergeError, TaskFailedError, run
from curator.testing.probes import Numbers, Probe, WelfordShards


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
    # Two items failed: a resume may run them, so the shards stay for it to append to.
    assert list(tmp_path.glob("stats_worker_*"))
    assert stage._output_path == str(output)  # the caller's stage points at the output again


def test_keep_shards_keeps_one_shard_per_worker_slot(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    stage = WelfordShards(str(output))
    stage.keep_shards = True  # type: ignore[attr-defined]
    assert run(
        pipeline(tmp_path, 60, stage, sleep=0.002), backend="thread-pool", jobs=3, reporter=None
    ).ok
    shards = sorted(p.name for p in tmp_path.glob("stats_worker_*"))
    assert shards
    assert set(shards) <= {f"stats_worker_{slot}.json" for slot in range(3)}
    assert_statistics(output, list(range(60)))


def test_a_worker_id_template_names_the_shards(tmp_path: Path) -> None:
    stage = WelfordShards(str(tmp_path / "part-{worker_id}.json"))
    stage.keep_shards = True  # type: ignore[attr-defined]
    assert run(pipeline(tmp_path, 10, stage), reporter=None).ok
    assert (tmp_path / "part-0.json").exists()
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
    assert list(tmp_path.glob("stats_worker_*"))  # kept for the resume
    assert_statistics(output, list(range(30)))  # what finished, merged already
    resumed = run(
        pipeline(tmp_path, 80, WelfordShards(str(output)), flaky=flaky),
        reporter=None,
        checkpoint=checkpoint,
        resume=True,
    )
    assert resumed.ok
    assert_statistics(output, list(range(80)))
    assert list(tmp_path.glob("stats_worker_*")) == []


def test_a_run_that_does_not_resume_removes_stale_shards(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    (tmp_path / "stats_worker_7.json").write_text(json.dumps([5, 1.0, 0.0, 1.0, 1.0]) + "\n")
    assert run(pipeline(tmp_path, 20, WelfordShards(str(output))), reporter=None).ok
    assert_statistics(output, list(range(20)))
    assert list(tmp_path.glob("stats_worker_*")) == []  # a complete run removes its shards


class BrokenShards(WelfordShards):
    @staticmethod
    def merge(paths: list[str], output: str) -> str:
        raise OSError("disk full")


def test_a_failing_merge_names_the_stage_and_keeps_the_shards(tmp_path: Path) -> None:
    output = tmp_path / "stats.json"
    with pytest.raises(StateMergeError) as error:
        run(pipeline(tmp_path, 10, BrokenShards(str(output))), reporter=None)
    message = str(error.value)
    assert "BrokenShards could not merge its 1 shard files" in message
    assert "OSError: disk full (the shards are kept)" in message
    assert error.value.result is not None
    assert error.value.result.ok
    assert (tmp_path / "stats_worker_0.json").exists()
