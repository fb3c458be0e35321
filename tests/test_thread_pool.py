from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pipelines import BARRIER, FailAt, MeetAtBarrier, Numbers, WhoAmI, numbers

from curator import Sink, TaskFailedError, UsageError, run


def test_items_really_run_at_the_same_time() -> None:
    # Each item waits at a two-party barrier: it only passes if another item runs concurrently.
    BARRIER.reset()
    result = run(Numbers(8).write(MeetAtBarrier()), backend="thread-pool", jobs=2, reporter=None)
    assert result.ok, [o.error for o in result.failures]
    workers = {o.worker for o in result.outcomes}
    assert workers == {"thread-0", "thread-1"}


def test_each_thread_gets_its_own_copy_of_the_pipeline() -> None:
    sink = WhoAmI(seconds=0.01)  # slow enough that both threads take items
    result = run(Numbers(40).write(sink), backend="thread-pool", jobs=2, reporter=None)
    copies_by_thread: dict[str, set[str]] = {}
    for output in result.outputs:
        assert output is not None
        copy_id, thread, _ = output
        copies_by_thread.setdefault(thread, set()).add(copy_id)
    assert len(copies_by_thread) == 2, "both threads must have run items"
    # One distinct copy per thread, none of them the caller's object.
    assert all(len(ids) == 1 for ids in copies_by_thread.values())
    all_ids = set().union(*copies_by_thread.values())
    assert len(all_ids) == len(copies_by_thread)
    assert str(id(sink)) not in all_ids


def test_copy_pipeline_false_shares_one_object() -> None:
    sink = WhoAmI()
    result = run(
        Numbers(10).write(sink),
        backend="thread-pool",
        jobs=2,
        options={"copy_pipeline": False},
        reporter=None,
    )
    assert {o[0] for o in result.outputs if o} == {str(id(sink))}


class Uncopyable(Sink[int]):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return []


def test_uncopyable_pipeline_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match=r"could not copy the pipeline.*copy_pipeline=false"):
        run(Numbers(4).write(Uncopyable()), backend="thread-pool", jobs=2)
    shared = run(
        Numbers(4).write(Uncopyable()),
        backend="thread-pool",
        jobs=2,
        options={"copy_pipeline": "false"},
        reporter=None,
    )
    assert shared.ok


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_fewer_or_more_items_than_threads(count: int) -> None:
    result = run(numbers(count), backend="thread-pool", jobs=4, reporter=None)
    assert result.outputs == [[str(2 * i)] for i in range(count)]
    workers = {o.worker for o in result.outcomes}
    assert workers <= {f"thread-{n}" for n in range(min(count, 4))}, workers


def test_no_thread_is_left_behind() -> None:
    before = {t.ident for t in threading.enumerate()}
    run(numbers(50), backend="thread-pool", jobs=3, reporter=None)
    with pytest.raises(TaskFailedError):
        run(Numbers(50).write(FailAt({5})), backend="thread-pool", jobs=3, reporter=None)
    leftovers = [t for t in threading.enumerate() if t.ident not in before]
    assert leftovers == []
