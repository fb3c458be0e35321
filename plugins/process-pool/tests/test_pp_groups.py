"""Keep-together groups on worker processes: crashes, worker recycling, every start method."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from curator import Status, run
from curator.testing.grouping import interleaved_groups
from curator.testing.probes import executions, probe


def _assert_in_order_one_at_a_time(group: list[int], folder: Path) -> None:
    """No two executions of ``group`` overlap, and each worker ran its part in group order.

    Members that finished on a worker that then died run again (their records
    died with it), so a member may have two executions.
    """
    runs = sorted((e for e in executions(folder) if e.index in group), key=lambda e: e.started)
    for before, after in itertools.pairwise(runs):
        assert before.finished <= after.started, (group, before, after)
    for place in {e.where for e in runs}:
        order = [group.index(e.index) for e in runs if e.where == place]
        assert order == sorted(order), (group, place, order)


@pytest.mark.parametrize("start_method", ["forkserver", "spawn", "fork"])
def test_a_crash_inside_a_group_blames_its_item_and_the_rest_follows_in_order(
    start_method: str, tmp_path: Path
) -> None:
    groups = interleaved_groups(24, 4)  # [0, 4, 8, ...], [21, 17, 13, ...], ...
    culprit = groups[1][2]
    result = run(
        probe(24, tmp_path, groups=groups, crash=frozenset({culprit}), sleep=0.005),
        backend="process-pool",
        jobs=2,
        options={"start_method": start_method},
        on_error="continue",
        reporter=None,
    )
    statuses = {o.index: o.status for o in result.outcomes}
    assert [i for i, s in statuses.items() if s is not Status.OK] == [culprit]
    assert statuses[culprit] is Status.CRASHED
    for group in groups:
        _assert_in_order_one_at_a_time(group, tmp_path)
    assert culprit not in {e.index for e in executions(tmp_path)}


def test_recycled_workers_never_split_a_group(tmp_path: Path) -> None:
    groups = interleaved_groups(30, 3)  # groups of 10, workers recycled every 4 items
    result = run(
        probe(30, tmp_path, groups=groups),
        backend="process-pool",
        jobs=2,
        options={"max_tasks_per_child": 4},
        reporter=None,
    )
    assert result.ok
    by_index = {e.index: e for e in executions(tmp_path)}
    for group in groups:
        assert len({by_index[i].where for i in group}) == 1, group
