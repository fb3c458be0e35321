"""Keep-together groups: ``partition_indices`` checked, combined, planned and honoured."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from core_support import registry_with

from curator import Backend, Capabilities, Event, Sink, Source, Status, UsageError, Work, run
from curator.backends.dispatch import Grouped, Todo
from curator.running.groups import KeepTogether, keep_together
from curator.testing.grouping import interleaved_groups
from curator.testing.probes import executions, probe


class Files(Source[int]):
    """Items ``0..count-1`` stored ``per_file`` to a file: a file's items run together."""

    def __init__(self, count: int, per_file: int | None, broken: object = None) -> None:
        self.count = count
        self.per_file = per_file
        self.broken = broken

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index

    def partition_indices(self, indices: list[int]) -> Any:
        if self.broken is not None:
            if isinstance(self.broken, Exception):
                raise self.broken
            return self.broken
        if self.per_file is None:
            return None
        files: dict[int, list[int]] = {}
        for index in indices:
            files.setdefault(index // self.per_file, []).append(index)
        return list(files.values())


class Chunks(Sink[int]):
    """A store written in chunks of ``size`` indices: one writer per chunk."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return [str(i) for i in items]

    def partition_indices(self, indices: list[int]) -> list[list[int]]:
        chunks: dict[int, list[int]] = {}
        for index in indices:
            chunks.setdefault(index // self.size, []).append(index)
        return list(chunks.values())


def _sink(items: Iterator[int], index: int) -> list[str]:
    return [str(i) for i in items]


def test_source_groups_alone_are_the_groups() -> None:
    together = keep_together(Files(10, 4).write(_sink), range(10))
    assert together is not None
    assert together.groups == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_agreeing_source_and_sink_groups_combine() -> None:
    # The sink's chunks are the source's files, and the sink also groups indices
    # the source leaves free: both sets of groups hold.
    source = Files(12, None)
    source.broken = [[0, 1, 2], [3, 4, 5]]
    together = keep_together(source.write(Chunks(3)), range(12))
    assert together is not None
    assert together.groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_no_partition_indices_means_no_groups() -> None:
    assert keep_together(Files(5, None).write(_sink), range(5)) is None


def test_a_conflict_names_both_groups_before_anything_runs(tmp_path: Path) -> None:
    pipeline = Files(10, 5).write(Chunks(3))  # files [0..4], [5..9]; chunks [0..2], [3..5]...
    with pytest.raises(UsageError) as caught:
        run(pipeline, backend="thread-pool", jobs=2, reporter=None, checkpoint=tmp_path / "c")
    message = str(caught.value)
    assert "the source keeps [0, 1, 2, 3, 4] together" in message
    assert "[0, 1, 2] and [3, 4, 5]" in message
    assert not (tmp_path / "c").exists()  # refused before the checkpoint was made


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (ValueError("no index file"), "partition_indices() raised ValueError: no index file"),
        ("by file", "must return a list of lists of indices or None, not 'by file'"),
        ([[0, 1], [1, 2]], "put index 1 in two groups: [0, 1] and [1, 2]"),
        ([[0, 99]], "put index 99 in group [0, 99], but that index is not part of this run"),
    ],
)
def test_bad_groups_are_a_usage_error_naming_the_stage(returned: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(Files(5, None, broken=returned).write(_sink), reporter=None)
    assert message in str(caught.value)
    assert "the source Files's" in str(caught.value)


def test_a_round_plan_follows_the_request_and_keeps_each_group_whole() -> None:
    together = KeepTogether([[5, 3, 1], [8, 9]])
    assert together.plan(range(10)).units == [[0], [5, 3, 1], [2], [4], [6], [7], [8, 9]]
    # A retry round of some members: they stay one unit, in the group's order.
    assert together.plan([9, 1, 2, 5]).units == [[9], [5, 1], [2]]


def test_todo_hands_out_whole_units_and_requeues_a_group_remainder_whole() -> None:
    plan = Grouped([[0], [5, 3, 1], [2], [4], [6, 7, 8, 9]])
    todo = Todo(plan)
    assert todo.take(3) == [0]  # the group of three does not fit beside it
    assert todo.take(3) == [5, 3, 1]
    assert todo.take(1) == [2]
    assert len(todo) == 5
    assert todo.take(2) == [4]
    assert todo.take(2) == [6, 7, 8, 9]  # larger than asked: a group is never split
    todo.requeue([8, 9, 4])  # a dead worker's unfinished items
    assert todo.take(2) == [8, 9]
    assert todo.take(2) == [4]
    assert not todo


def test_todo_of_plain_indices_takes_counts() -> None:
    todo = Todo(range(10))
    assert todo.take(4) == [0, 1, 2, 3]
    todo.requeue([2, 3])
    assert len(todo) == 8
    assert todo.take(3) == [2, 3, 4]


@pytest.mark.parametrize(("backend", "jobs"), [("sequential", 1), ("thread-pool", 3)])
def test_groups_run_whole_in_order_on_the_built_in_backends(
    backend: str, jobs: int, tmp_path: Path
) -> None:
    groups = interleaved_groups(30, 5)
    result = run(
        probe(30, tmp_path, groups=groups, sleep=0.002), backend=backend, jobs=jobs, reporter=None
    )
    assert result.ok
    by_index = {e.index: e for e in executions(tmp_path)}
    for group in groups:
        assert len({by_index[i].where for i in group}) == 1
        starts = [by_index[i].started for i in group]
        assert starts == sorted(starts)


class Plain(Backend):
    """A parallel backend that does not keep groups together."""

    name = "plain"
    capabilities = Capabilities(parallel=True)
    given: ClassVar[list[Sequence[int]]] = []

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        type(self).given.append(indices)
        for index in indices:
            yield work(index)


def test_a_backend_that_cannot_keep_groups_is_refused() -> None:
    registry = registry_with(Plain)
    with pytest.raises(UsageError) as caught:
        run(Files(8, 4).write(_sink), backend="plain", jobs=2, registry=registry, reporter=None)
    assert "cannot keep a group on one worker" in str(caught.value)
    assert "thread-pool" in str(caught.value)  # the backends that can are named
    # jobs=1 runs in this process, one item after another: groups hold.
    result = run(Files(8, 4).write(_sink), backend="plain", jobs=1, registry=registry)
    assert result.count(Status.OK) == 8
    # Ungrouped pipelines are untouched: the backend gets the plain indices.
    Plain.given = []
    run(Files(8, None).write(_sink), backend="plain", jobs=2, registry=registry, reporter=None)
    assert not isinstance(Plain.given[0], Grouped)
