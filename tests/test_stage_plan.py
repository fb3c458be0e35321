"""Issue 26: one stage plan per run, made once, shipped in Work and read by every part."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pipelines import Collect, FailAt

from curator import Work, run
from curator.model import plan as planning
from curator.model.plan import StagePlan
from curator.testing.probes import GroupedNumbers, Numbers, Tally, WorkerHooks
from curator.testing.shard_rows import ShardRows


def test_the_plan_says_what_each_stage_does(tmp_path: Path) -> None:
    shards = ShardRows(str(tmp_path / "rows.txt"), frozenset(), str(tmp_path))
    tally, hooks, sink = Tally(), WorkerHooks(str(tmp_path)), Collect()
    pipeline = GroupedNumbers(6, [[0, 1], [2, 3]]).filter(tally).filter(shards).filter(hooks)
    plan = StagePlan.of(pipeline.write(sink))
    assert plan.stages == (pipeline.source, tally, shards, hooks, sink)
    assert plan.names == (
        "GroupedNumbers (source)", "Tally", "ShardRows", "WorkerHooks", "Collect (sink)"
    )  # fmt: skip
    assert plan.accumulating == (tally,)
    assert plan.sharding == (shards,)
    assert plan.hooks
    assert plan.groups
    assert plan.metric_width == 5 + 4  # stage seconds, then cpu, rss peak and growth, gpu
    bare = StagePlan.of(Numbers(3).write(Collect()))
    assert (bare.accumulating, bare.sharding, bare.hooks, bare.groups) == ((), (), False, False)


def test_a_shipped_work_keeps_the_plan_on_its_own_stages() -> None:
    """Pickled once (as process-pool and dask ship it) or copied (thread-pool), the plan names
    the copy's own stages: an accumulating stage reset per item is the one that runs."""
    tally = Tally()
    work = Work(Numbers(4).filter(tally).write(Collect()), features=())
    for copy in (pickle.loads(pickle.dumps(work)), __import__("copy").deepcopy(work)):
        assert copy.plan.accumulating[0] is copy.pipeline.filters[0]
        assert copy.accumulating == copy.plan.accumulating
        assert copy.plan.stages[-1] is copy.pipeline.sink
        assert copy(2).ok


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_the_stages_are_planned_once_per_run(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three attempts (retries) and every round's Work read the one plan ``run`` made."""
    made: list[Any] = []
    original = StagePlan.of.__func__  # type: ignore[attr-defined]

    def counted(cls: type[StagePlan], pipeline: Any) -> StagePlan:
        made.append(pipeline)
        return original(cls, pipeline)

    monkeypatch.setattr(planning.StagePlan, "of", classmethod(counted))
    pipeline = Numbers(8).filter(Tally()).write(FailAt({3}))
    jobs = 2 if backend == "thread-pool" else None
    result = run(
        pipeline, backend=backend, jobs=jobs, retries=2, on_error="continue", reporter=None
    )
    assert result.count("failed") == 1
    assert len(made) == 1, f"the stages were planned {len(made)} times in one run"
