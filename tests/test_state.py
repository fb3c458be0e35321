"""Stage state that merges back (curator.model.state): exactly once, checkpointed, errors named."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from core_support import curator, registry_with

from curator import Backend, Capabilities, Event, Outcome, Pipeline, Sink, Status, Work, run
from curator.checkpoint.fingerprint import fingerprint
from curator.examples.snapshots import DatasetStatistics, SnapshotSource
from curator.model.errors import BackendContractError, StateMergeError, TaskFailedError, UsageError
from curator.testing.probes import Numbers, Tally, probe


class Collect(Sink[Any]):
    """Writes nothing; returns the index (what the statistics tests need)."""

    def __call__(self, items: Iterator[Any], index: int) -> list[str]:
        for _ in items:
            pass
        return [str(index)]


def statistics_of(backend: str, jobs: int, **kwargs: Any) -> dict[str, Any]:
    stats = DatasetStatistics()
    pipeline = SnapshotSource(24, size=12).filter(stats).write(Collect())
    result = run(pipeline, backend=backend, jobs=jobs, reporter=None, **kwargs)
    assert result.ok
    return stats.summary()


@pytest.mark.parametrize("backend", ["thread-pool"])
def test_merged_welford_statistics_equal_a_sequential_run(backend: str) -> None:
    expected = statistics_of("sequential", 1)
    got = statistics_of(backend, 2)
    assert set(got) == set(expected) == {"field"}
    for name in expected:
        assert got[name]["count"] == expected[name]["count"] == 24 * 12 * 12
        for key in ("mean", "std", "min", "max"):
            assert math.isclose(got[name][key], expected[name][key], rel_tol=0, abs_tol=1e-12)


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_failed_items_count_nothing_and_retried_ones_count_once(
    backend: str, tmp_path: Path
) -> None:
    tally = Tally()
    result = run(
        probe(30, tmp_path, tally=tally, fail=frozenset({4, 9}), flaky=frozenset({2, 20})),
        backend=backend,
        jobs=1 if backend == "sequential" else 3,
        retries=2,
        on_error="continue",
        reporter=None,
        checkpoint=False,
    )
    assert sorted(o.index for o in result.outcomes if o.ok) == list(tally.seen)
    assert tally.seen == tuple(i for i in range(30) if i not in (4, 9))


def test_a_run_starts_from_an_empty_state_and_replaces_what_the_stage_held(
    tmp_path: Path,
) -> None:
    tally = Tally()
    tally.seen = (99, 100)
    run(probe(3, tmp_path, tally=tally), reporter=None, checkpoint=False)
    assert tally.seen == (0, 1, 2)


def test_resume_after_a_stopped_run_merges_to_the_uninterrupted_state(tmp_path: Path) -> None:
    """Item 12 fails once with on_error=raise: the run stops; resume completes it."""
    checkpoint = tmp_path / "run.sqlite"
    first = Tally()
    pipeline = probe(40, tmp_path, tally=first, flaky=frozenset({12}))
    with pytest.raises(TaskFailedError) as stopped:
        run(pipeline, reporter=None, checkpoint=checkpoint)
    done_first = sorted(o.index for o in stopped.value.result.outcomes if o.ok)
    assert 12 not in done_first
    assert len(done_first) < 40
    assert first.seen == tuple(done_first)

    second = Tally()
    resumed = run(
        probe(40, tmp_path, tally=second, flaky=frozenset({12})),
        reporter=None,
        checkpoint=checkpoint,
        resume=True,
    )
    assert resumed.ok
    skipped = [o.index for o in resumed.outcomes if o.status.value == "skipped"]
    assert skipped == done_first
    assert second.seen == tuple(range(40))

    third = Tally()  # a resume with nothing left to do still holds every item's state
    again = probe(40, tmp_path, tally=third, flaky=frozenset({12}))
    run(again, reporter=None, checkpoint=checkpoint, resume=True)
    assert third.seen == tuple(range(40))


def test_the_checkpoint_stores_partials_in_the_transaction_of_their_outcomes(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    run(probe(50, tmp_path, tally=Tally()), reporter=None, checkpoint=checkpoint)
    with closing(sqlite3.connect(checkpoint)) as db, db:
        journal_rows = {row[0] for row in db.execute("SELECT id FROM journal")}
        state_rows = {row[0] for row in db.execute("SELECT journal FROM states")}
    assert state_rows == journal_rows  # every batch of ok outcomes came with its partials


def test_ok_items_recorded_without_their_partials_run_again_on_resume(tmp_path: Path) -> None:
    """A batch whose partials are missing (lost, or written by an older curator) reruns."""
    checkpoint = tmp_path / "run.sqlite"
    run(probe(20, tmp_path, tally=Tally()), reporter=None, checkpoint=checkpoint)
    with closing(sqlite3.connect(checkpoint)) as db, db:
        db.execute("DELETE FROM states")
    tally = Tally()
    resumed = run(
        probe(20, tmp_path, tally=tally), reporter=None, checkpoint=checkpoint, resume=True
    )
    assert [o.status.value for o in resumed.outcomes] == ["ok"] * 20
    assert tally.seen == tuple(range(20))


def test_running_does_not_change_the_pipeline_fingerprint(tmp_path: Path) -> None:
    tally = Tally()
    pipeline = probe(10, tmp_path, tally=tally)
    before = fingerprint(pipeline)
    run(pipeline, reporter=None, checkpoint=tmp_path / "c.sqlite")
    assert tally.seen == tuple(range(10))
    assert fingerprint(pipeline) == before
    again = run(pipeline, reporter=None, checkpoint=tmp_path / "c.sqlite", resume=True)
    assert again.ok
    assert tally.seen == tuple(range(10))


class BrokenMerge(Tally):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def merge(self, states: list[tuple[int, ...]]) -> Any:
        if self.how == "raises":
            raise ZeroDivisionError("no partials for you")
        if self.how == "nothing":
            super().merge(states)
            return None
        return super().merge(states)

    def finish(self) -> None:
        if self.how == "finish":
            raise OSError("disk full")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("raises", "BrokenMerge could not merge its partial states: merge() raised "
         "ZeroDivisionError: no partials for you"),
        ("nothing", "BrokenMerge's merge() returned nothing"),
        ("finish", "BrokenMerge's finish() raised OSError: disk full"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_broken_merge_is_a_run_error_naming_the_stage_with_outputs_and_checkpoint_intact(
    how: str, message: str, backend: str, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "c.sqlite"
    stage = BrokenMerge(how)
    pipeline = probe(300, tmp_path, tally=stage)
    jobs = 1 if backend == "sequential" else 2
    with pytest.raises(StateMergeError) as error:
        run(pipeline, backend=backend, jobs=jobs, reporter=None, checkpoint=checkpoint)
    assert message in str(error.value)
    assert "the checkpoint is intact" in str(error.value)
    if how == "finish":  # the merge went through: the stage holds every item
        assert "the stage holds the run's merged state, but its finish() did not complete" in (
            str(error.value)
        )
        assert stage.seen == tuple(range(300))
    else:
        assert "the stage does not hold the run's merged state" in str(error.value)
    result = error.value.result
    assert result.ok
    assert len(result.outputs) == 300
    with pytest.raises(StateMergeError) as again:  # the checkpoint has every item
        run(
            probe(300, tmp_path, tally=BrokenMerge(how)),
            reporter=None,
            checkpoint=checkpoint,
            resume=True,
        )
    resumed = again.value.result
    assert [o.status.value for o in resumed.outcomes] == ["skipped"] * 300
    assert resumed.outputs[299] == ["out-299", "299"]


def test_the_thread_pool_refuses_to_share_an_accumulating_stage(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"Tally accumulates state.*copy_pipeline=true"):
        run(
            probe(4, tmp_path, tally=Tally()),
            backend="thread-pool",
            jobs=2,
            options={"copy_pipeline": False},
            reporter=None,
        )


class Bypass(Backend):
    """Breaks the contract: runs the pipeline itself instead of through the work."""

    name = "bypass"
    capabilities = Capabilities()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield Outcome(index, Status.OK, work.pipeline[index], worker="main")


class Twice(Backend):
    """Breaks the contract: reports index 0 twice (the same outcome object again)."""

    name = "twice"
    capabilities = Capabilities()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            outcome = work(index)
            yield outcome
            if index == 0:
                yield outcome


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (Bypass, "ok outcome without its stages' state"),
        # The first report unwraps the value of its stages' state: the second must not be
        # taken for an outcome that came without it.
        (Twice, "reported index 0 twice"),
    ],
)
def test_a_stateful_runs_backend_contract_errors_name_what_broke(
    tmp_path: Path, backend: type[Backend], message: str
) -> None:
    with pytest.raises(BackendContractError, match=message):
        run(
            probe(3, tmp_path, tally=Tally()),
            backend=backend.name,
            registry=registry_with(backend),
            reporter=None,
        )


def test_work_sends_the_value_with_each_stage_partial(tmp_path: Path) -> None:
    outcome = Work(probe(2, tmp_path, tally=Tally()))(1)
    assert outcome.ok
    assert type(outcome.value).__name__ == "Contributed"
    assert outcome.value.value == ["out-1", "1"]
    assert outcome.value.states == ((1,),)


def test_a_pipeline_without_accumulating_stages_has_no_wrapped_values(tmp_path: Path) -> None:
    work = Work(Pipeline(Numbers(1)).write(Collect()))
    assert work(0).value == ["0"]


_BROKEN_TARGET = """
from curator.testing.probes import Tally, probe

class Broken(Tally):
    def merge(self, states):
        raise ZeroDivisionError("no partials for you")

pipeline = probe(6, {folder!r}, tally=Broken())
"""


def test_the_cli_reports_a_broken_merge_naming_the_stage_and_exits_1(tmp_path: Path) -> None:
    target = tmp_path / "target.py"
    target.write_text(_BROKEN_TARGET.format(folder=str(tmp_path)))
    proc = curator(
        "run", f"{target}:pipeline", "--backend", "thread-pool", "--jobs", "2", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    assert "Broken could not merge its partial states" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "6 ok" in proc.stderr


class InPlace(Tally):
    """Merges by extending the first partial in place, as array code often does."""

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        for item in items:
            self.seen.append(item)  # type: ignore[attr-defined]
            yield item

    def reset(self) -> None:
        self.seen = []  # type: ignore[assignment]

    def merge(self, states: list[Any]) -> Any:
        merged = states[0]
        for state in states[1:]:
            merged.extend(state)
        merged.sort()
        self.seen = merged
        return merged


def test_a_merge_that_updates_partials_in_place_does_not_change_the_checkpoint(
    tmp_path: Path,
) -> None:
    """Enough items that the run folds its partials while the checkpoint still queues them."""
    checkpoint = tmp_path / "c.sqlite"
    first = InPlace()
    first.reset()
    fast = Pipeline(Numbers(700)).filter(first).write(Collect())  # folds within one commit
    run(fast, reporter=None, checkpoint=checkpoint)
    assert first.seen == list(range(700))
    again = InPlace()
    again.reset()
    resumed = Pipeline(Numbers(700)).filter(again).write(Collect())
    run(resumed, reporter=None, checkpoint=checkpoint, resume=True)
    assert again.seen == list(range(700))


class Unpicklable(Tally):
    def state(self) -> Any:
        return threading.Lock()

    def merge(self, states: list[Any]) -> Any:
        return ()


def test_a_partial_that_cannot_be_pickled_fails_its_item_saying_so(tmp_path: Path) -> None:
    result = run(
        probe(3, tmp_path, tally=Unpicklable()),
        reporter=None,
        checkpoint=tmp_path / "c.sqlite",
        on_error="continue",
    )
    errors = [o.error for o in result.outcomes]
    assert all(e is not None and e.type == "UnpicklableState" for e in errors)
    assert "a stage's state() returned something that cannot be pickled" in errors[0].message  # type: ignore[union-attr]
