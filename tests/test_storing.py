"""The checkpoint stores whatever a worker accepts; a value it cannot store fails its own item.

Every backend is held to it by the kit (:mod:`curator.testing.storing`). Here:
the checkpoint's pickler itself, and the parent's last line of defence, for a
backend that declares it checks values (``checks_results``) but lets one through.
"""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import pytest
from core_support import curator, registry_with, subprocess_env
from pipelines import Collect, OneWay, OneWayAt, OneWayTally, numbers

from curator import Backend, Capabilities, Status, Work, run
from curator.checkpoint.catalog import read as report
from curator.model.pickling import dumps, problem
from curator.testing.probes import Numbers, Tally, local_tuple, probe


class TrustsTheWorkers(Backend):
    """Runs items in the caller's process, yet declares that it checks values itself.

    It hands outcomes over in lists of ten, as a pool does its batches.
    """

    name = "trusts-the-workers"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs_picklable_work=True, checks_results=True
    )

    def execute(self, work: Work, indices: Any) -> Iterator[Any]:
        assert not work.check_results  # the core left the check to the backend
        indices = list(indices)
        for start in range(0, len(indices), 10):
            yield [work(index) for index in indices[start : start + 10]]


class Held(tuple[int, ...]):
    """A partial that holds a lock: it merges like a tuple, but cannot be pickled."""

    lock: Any


class HeldTally(Tally):
    """A tally whose ``merge`` returns a :class:`Held`."""

    def merge(self, states: list[tuple[int, ...]]) -> tuple[int, ...]:
        merged = Held(super().merge(states))
        merged.lock = threading.Lock()
        self.seen = merged
        return merged


def test_the_checkpoint_pickler_refuses_what_only_cloudpickle_takes() -> None:
    assert problem(local_tuple((1,))) is not None
    assert problem(local_tuple((1,)), elsewhere=True) is not None
    assert problem(threading.Lock(), elsewhere=True) is not None
    assert pickle.loads(dumps([(1, "a"), {"b": 2.5}])) == [(1, "a"), {"b": 2.5}]


SHARED = ["a shared path"]
CYCLE: list[Any] = ["a list that holds itself"]
CYCLE.append(CYCLE)


@pytest.mark.parametrize(
    "outputs",
    [
        [["/data/a.h5"], ("b", 2, 2.5, None, b"c", True), [], None],  # flat: no memo
        [{"path": "/data/a.h5"}, ["nested", ["list"]]],  # anything else: the usual pickle
        [SHARED, SHARED],  # two items returned one list: equal lists come back
        [CYCLE],  # a cycle still pickles
    ],
)
def test_many_outputs_pickle_as_the_checkpoint_stores_them(outputs: list[Any]) -> None:
    from curator.model.pickling import dumps_outputs

    loaded = pickle.loads(dumps_outputs(outputs))
    assert repr(loaded) == repr(outputs)


def test_flat_outputs_skip_the_pickle_memo() -> None:
    """Issue 27: lists of paths pickled without the memo, a third of the writer's time."""
    from curator.model.pickling import dumps_outputs

    outputs = [[f"/data/{i}.h5"] for i in range(1000)]
    assert len(dumps_outputs(outputs)) < len(dumps(outputs))  # no memo entries written
    assert pickle.loads(dumps_outputs(outputs)) == outputs


MAIN_COPY = """
import pickle, sys
from curator.model.pickling import problem

class Result:  # stands for a class of the run's __main__ that came to this worker by value
    pass

value = Result()
sys.modules["__main__"].Result = type("Result", (), {})  # this process's __main__ differs
assert problem(value) is not None, "plain pickle cannot find this copy by name"
assert problem(value, elsewhere=True) is None, "the run's process has the class itself"

def make():
    class Local:
        pass
    return Local()

assert problem(make(), elsewhere=True) is not None, "a class defined in a function is nobody's"
assert problem(lambda: 1, elsewhere=True) is not None
print("ok")
"""


def test_a_copy_of_the_runs_main_class_counts_as_the_runs_own() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MAIN_COPY],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_value_that_slips_past_the_workers_check_fails_only_its_own_item(
    tmp_path: Path,
) -> None:
    store = tmp_path / "trusting.sqlite"
    result = run(
        probe(200, tmp_path, unpicklable=frozenset({61})),
        backend="trusts-the-workers",
        registry=registry_with(TrustsTheWorkers),
        checkpoint=store,
        on_error="continue",
        reporter=None,
    )
    assert result.count(Status.OK) == 200  # the run's own result holds the value
    recorded = report(store).counts
    assert recorded == {"ok": 199, "failed": 1}, f"the checkpoint holds {recorded}"
    failures = report(store).failures
    assert [f.index for f in failures] == [61]
    assert failures[0].error is not None
    assert failures[0].error.type == "UnpicklableResult"


def test_partials_of_a_batch_with_an_unstorable_value_are_not_stored(tmp_path: Path) -> None:
    """Such a batch's ok items run again on resume, so each counts exactly once."""
    store = tmp_path / "trusting-state.sqlite"
    registry = registry_with(TrustsTheWorkers)

    def tallied(tally: Tally, resume: bool = False) -> Any:
        return run(
            probe(200, tmp_path, tally=tally, unpicklable=frozenset({61})),
            backend="trusts-the-workers",
            registry=registry,
            checkpoint=store,
            resume=resume,
            on_error="continue",
            reporter=None,
        )

    first = Tally()
    tallied(first)
    assert first.seen == tuple(range(200))
    with closing(sqlite3.connect(store)) as db:
        stored = db.execute("SELECT COUNT(*) FROM states").fetchone()[0]
        batches = db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    assert stored < batches, "the batch holding item 61 must be written without partials"
    again = Tally()
    resumed = tallied(again, resume=True)
    assert again.seen == tuple(range(200))
    assert resumed.outcomes[61].status is Status.OK


@pytest.mark.parametrize("away", [False, True])
def test_the_work_names_a_value_the_checkpoint_cannot_store(away: bool) -> None:
    error = Work.value_error(local_tuple((3,)), away)
    assert error is not None
    assert error.type == "UnpicklableResult"
    assert "LocalTuple" in error.message


def test_partials_a_merge_made_unpicklable_are_not_stored(tmp_path: Path) -> None:
    """The run's merged state is right; the checkpoint keeps the outcomes, and a resume reruns."""
    store = tmp_path / "held.sqlite"

    def tallied(tally: Tally, resume: bool = False) -> Any:
        return run(
            probe(60, tmp_path, tally=tally),
            backend="trusts-the-workers",
            registry=registry_with(TrustsTheWorkers),
            checkpoint=store,
            resume=resume,
            reporter=None,
        )

    first = HeldTally()
    assert tallied(first).ok
    assert tuple(first.seen) == tuple(range(60))
    assert report(store).counts == {"ok": 60}
    again = HeldTally()
    assert tallied(again, resume=True).count(Status.OK) == 60  # nothing to skip: no partials
    assert tuple(again.seen) == tuple(range(60))


@pytest.mark.parametrize(("backend", "jobs"), [("sequential", 1), ("thread-pool", 2)])
def test_recorded_outputs_that_do_not_unpickle_run_again(
    backend: str, jobs: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by a review: such a value broke every later resume with a traceback."""
    store = tmp_path / "one-way.sqlite"
    first = run(
        Numbers(30).write(OneWayAt(7)), backend=backend, jobs=jobs, checkpoint=store, reporter=None
    )
    assert first.ok
    with caplog.at_level(logging.WARNING, logger="curator"):
        again = run(
            Numbers(30).write(OneWayAt(7)), backend=backend, jobs=jobs, checkpoint=store,
            resume=True, reporter=None,
        )  # fmt: skip
    assert again.ok
    statuses = [outcome.status for outcome in again.outcomes]
    assert statuses[7] is Status.OK, "item 7's record does not load: it must run again"
    assert statuses.count(Status.OK) + statuses.count(Status.SKIPPED) == 30
    assert isinstance(again.outcomes[7].value, OneWay)
    assert [again.outcomes[i].value for i in range(30) if i != 7] == [
        i for i in range(30) if i != 7
    ]
    assert "do not load here (RuntimeError: item 7 cannot come back), so they run again" in (
        caplog.text
    )
    assert report(store).counts == {"ok": 30}


@pytest.mark.parametrize(("backend", "jobs"), [("sequential", 1), ("thread-pool", 2)])
def test_recorded_partials_that_do_not_unpickle_run_their_items_again(
    backend: str, jobs: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each item still counts exactly once in the merged state; nothing is lost."""
    store = tmp_path / "one-way-state.sqlite"

    def tallied(tally: Tally, resume: bool = False) -> Any:
        return run(
            Numbers(30).filter(tally).write(Collect()), backend=backend, jobs=jobs,
            checkpoint=store, resume=resume, reporter=None,
        )  # fmt: skip

    first = OneWayTally(7)
    assert tallied(first).ok
    assert tuple(first.seen) == tuple(range(30))
    again = OneWayTally(7)
    with caplog.at_level(logging.WARNING, logger="curator"):
        resumed = tallied(again, resume=True)
    assert resumed.ok
    assert tuple(again.seen) == tuple(range(30)), "an item counted twice, or not at all"
    assert resumed.outcomes[7].status is Status.OK
    assert "do not load here (RuntimeError: item " in caplog.text
    assert "so they run again: " in caplog.text


def test_a_resume_says_which_recorded_items_do_not_load_and_exits_0(tmp_path: Path) -> None:
    first = curator("run", "pipelines:one_way_result", "--reporter", "none", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = curator(
        "run", "pipelines:one_way_result", "--resume", "--json", "--reporter", "none",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert "curator: warning: the recorded results of " in again.stderr
    assert "(RuntimeError: item 7 cannot come back), so they run again: " in again.stderr
    summary = json.loads(again.stdout)
    assert summary["ok"] + summary["skipped"] == 30


def test_the_writer_commits_early_when_many_items_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 26: outcomes waiting for a commit stay few however fast items end: the writer
    commits once COMMIT_ITEMS wait, without waiting out COMMIT_SECONDS (the parent's peak
    memory with the checkpoint grew with the machine's speed before)."""
    import time

    from curator.checkpoint import store as storing
    from curator.checkpoint.fingerprint import fingerprint
    from curator.model.outcome import Outcome

    monkeypatch.setattr(storing, "COMMIT_SECONDS", 3600.0)
    pipeline = numbers(storing.COMMIT_ITEMS + 10)
    path = tmp_path / "c.sqlite"
    store = storing.CheckpointStore(path, fingerprint(pipeline), repr(pipeline), len(pipeline))
    store.start_run("sequential", 1, len(pipeline))
    few = 10
    for index in range(few):
        store.record(Outcome(index, Status.OK, index, None, "main", 1.0, 2.0))
    time.sleep(0.5)  # many looks of the writer: ten items are not worth a commit yet

    def batches() -> int:
        with closing(sqlite3.connect(path)) as db:
            return int(db.execute("SELECT count(*) FROM journal").fetchone()[0])

    assert batches() == 0
    for index in range(few, len(pipeline)):
        store.record(Outcome(index, Status.OK, index, None, "main", 1.0, 2.0))
    deadline = time.monotonic() + 60
    while batches() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batches() >= 1, "the writer waited for COMMIT_SECONDS with many items waiting"
    store.finish_run({"ok": len(pipeline)}, False)
    store.close()
    storing.wait_closed(path)
    latest = storing.read_latest(path)
    assert sorted(latest) == list(range(len(pipeline)))
    assert {stored.status for stored in latest.values()} == {Status.OK}


def test_a_new_checkpoint_takes_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """Issue 27: a journal batch is a few large blobs; in 64 KiB pages a commit writes a
    sixteenth of the pages it writes in SQLite's default 4 KiB, and the WAL is folded in
    every 4 MiB whatever the page size (a file made with other pages keeps them)."""
    from curator.checkpoint.schema import PAGE_BYTES, WAL_BYTES, open_checkpoint

    pipeline = numbers(30)
    made = tmp_path / "new.sqlite"
    result = run(pipeline, backend="sequential", reporter=None, checkpoint=str(made))
    assert result.ok
    old = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(old)) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("VACUUM")  # an empty file takes the page size now
    with closing(sqlite3.connect(made)) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
    for path, pages in ((made, PAGE_BYTES), (old, 4096)):
        db = open_checkpoint(path, meta["fingerprint"], meta["pipeline"], len(pipeline), "{}")
        try:
            assert db.execute("PRAGMA page_size").fetchone()[0] == pages
            assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_BYTES // pages
        finally:
            db.close()


def test_outcomes_waiting_for_their_partials_do_not_make_the_writer_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of issue 26: with accumulating stages, failures (no partials follow them) wait in
    the buffer; a commit by size happens once per COMMIT_ITEMS new items, not on every look
    (each look scanned the whole buffer: 4.7x the writer's CPU, 30% of the run loop's speed)."""
    import time

    from curator.checkpoint import store as storing
    from curator.checkpoint.fingerprint import fingerprint
    from curator.model.outcome import Outcome

    monkeypatch.setattr(storing, "COMMIT_SECONDS", 3600.0)
    attempts: list[int] = []
    commit = storing.CheckpointStore.commit

    def counted(self: Any, final: bool = False) -> int:
        attempts.append(len(self._buffer))
        return commit(self, final)

    monkeypatch.setattr(storing.CheckpointStore, "commit", counted)
    pipeline = numbers(3 * storing.COMMIT_ITEMS)
    path = tmp_path / "c.sqlite"
    store = storing.CheckpointStore(path, fingerprint(pipeline), repr(pipeline), len(pipeline))
    store.keeps_state = True
    store.start_run("sequential", 1, len(pipeline))
    for index in range(len(pipeline)):
        store.record(Outcome.interrupted(index, time.time(), "main", 1))
    deadline = time.monotonic() + 60
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert attempts, "the writer never tried to commit many waiting outcomes"
    time.sleep(10 * storing.LOOK_SECONDS)  # a commit by size for those that came meanwhile
    tried = len(attempts)  # at most one per 4,096 items recorded (the writer may have
    assert tried <= len(pipeline) // storing.COMMIT_ITEMS  # looked while they came)
    time.sleep(50 * storing.LOOK_SECONDS)  # fifty more looks at the same waiting outcomes
    assert len(attempts) == tried, f"{len(attempts) - tried} commits tried with nothing new"
    store.finish_run({"interrupted": len(pipeline)}, True)
    store.close()
    storing.wait_closed(path)
    assert len(storing.read_latest(path)) == len(pipeline)  # the final commit wrote them all
