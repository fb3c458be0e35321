"""A checkpoint is one run's at a time, never runs code when read, and fails clearly."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from core_support import curator, subprocess_env
from pipelines import Numbers, numbers

from curator import Filter, Sink, Status, UsageError, WorkerInfo, run
from curator.checkpoint.catalog import read as report
from curator.checkpoint.file import sqlite_problem
from curator.checkpoint.fingerprint import fingerprint
from curator.checkpoint.runlock import release_lock, take_lock
from curator.checkpoint.store import CheckpointStore, read_latest, wait_closed


def _store(path: Path, count: int = 5) -> CheckpointStore:
    pipeline = numbers(count)
    return CheckpointStore(path, fingerprint(pipeline), repr(pipeline), count)


# -- (a) one run at a time ---------------------------------------------------------------


def test_a_second_store_on_the_same_checkpoint_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    first = _store(tmp_path / "c.sqlite")
    with pytest.raises(UsageError, match=rf"in use by another curator run \(pid {os.getpid()}"):
        _store(tmp_path / "c.sqlite")
    first.close()
    _store(tmp_path / "c.sqlite").close()


def test_a_second_run_on_a_busy_checkpoint_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = subprocess_env(CURATOR_TEST_MARKERS=str(markers))
    args = ["run", "pipelines:marked", "--checkpoint", "c.sqlite", "--json"]
    first = subprocess.Popen(
        [sys.executable, "-m", "curator", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(markers.iterdir()):
        assert time.monotonic() < deadline, "the first run never started an item"
        time.sleep(0.02)
    ran_before = len(list(markers.iterdir()))
    second = curator(*args, "--resume", env=env, cwd=tmp_path)
    out, err = first.communicate(timeout=120)
    assert second.returncode == 2, second.stderr
    assert "is in use by another curator run (pid" in second.stderr
    assert first.returncode == 0, err
    assert json.loads(out)["ok"] == 200
    # Every item ran exactly once: the second run started none.
    assert len(list(markers.iterdir())) == 200 >= ran_before


@pytest.mark.parametrize("made", ["an empty file", "the meta table, empty"])
@pytest.mark.parametrize("resume", [True, False])
def test_a_checkpoint_another_run_is_creating_is_in_use_not_broken(
    tmp_path: Path, made: str, resume: bool
) -> None:
    """Issue 'creating' (fault campaign): the half-made file of a run that holds the lock.

    The other run is this test: it holds the run lock and leaves the file as
    a run creating it has it for a moment. A second run read the file before
    taking the lock and exited 2 'not a curator checkpoint'; it must say the
    checkpoint is in use, and leave the file alone.
    """
    path = tmp_path / "c.sqlite"
    lock = take_lock(path)
    try:
        if made == "an empty file":
            path.write_bytes(b"")
        else:
            with closing(sqlite3.connect(path)) as db, db:
                db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        before = path.read_bytes()
        args = ["run", "pipelines:ten", "--checkpoint", str(path)]
        proc = curator(*args, *(["--resume"] if resume else []), cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert f"is in use by another curator run (pid {os.getpid()} on" in proc.stderr
        assert "not a curator checkpoint" not in proc.stderr
        assert path.read_bytes() == before
    finally:
        release_lock(lock)
    # With nobody holding the lock, the same file is what it is: an empty file is a new
    # checkpoint (as documented), a meta table without content is no checkpoint.
    proc = curator("run", "pipelines:ten", "--checkpoint", str(path), "--resume", cwd=tmp_path)
    if made == "an empty file":
        assert proc.returncode == 0, proc.stderr
        assert f"nothing to resume: no checkpoint of this configuration at {path}" in proc.stderr
        assert "resuming: items the checkpoint records" not in proc.stderr
        assert report(path).counts == {"ok": 10}
    else:
        assert proc.returncode == 2, proc.stderr
        assert "not a curator checkpoint" in proc.stderr or "is damaged" in proc.stderr


@pytest.mark.parametrize("planted", ["symlink", "dangling symlink", "hard link", "fifo"])
def test_the_run_lock_is_never_written_through_a_link_or_into_another_file(
    tmp_path: Path, planted: str
) -> None:
    """Found by the second campaign: the lock was opened, truncated and written via a symlink."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "c.sqlite"
    lock = tmp_path / "c.sqlite.lock"
    if planted == "symlink":
        lock.symlink_to(victim)
    elif planted == "dangling symlink":
        lock.symlink_to(tmp_path / "created-through-the-link")
    elif planted == "hard link":
        os.link(victim, lock)
    else:
        os.mkfifo(lock)
    says = "is a symbolic link" if "symlink" in planted else "is not a file of its own"
    with pytest.raises(UsageError, match=f"the checkpoint lock {lock} {says}"):
        _store(path)
    proc = curator("run", "pipelines:ten", "--checkpoint", str(path))
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "created-through-the-link").exists()
    assert not path.exists(), "the run went on without its lock"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("run", "pipelines:ten", "--checkpoint"), "is not a regular file (a named pipe)"),
        (("run", "pipelines:ten", "--resume", "--checkpoint"), "is not a regular file"),
        (("status",), "no checkpoint at {path}: it is not a regular file (a named pipe)"),
    ],
)
def test_a_named_pipe_as_the_checkpoint_is_refused_not_waited_on(
    tmp_path: Path, command: tuple[str, ...], says: str
) -> None:
    """Found by a kill campaign: the run opened the pipe and waited for a writer forever,
    deaf to Ctrl-C; status called it an empty file. (A hang fails on the helper's timeout.)"""
    path = tmp_path / "c.sqlite"
    os.mkfifo(path)
    proc = curator(*command, str(path))
    assert proc.returncode == 2, proc.stderr
    assert says.format(path=path) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "c.sqlite.lock").exists()


# -- (b) reading never runs code -----------------------------------------------------------


class _Touch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def _crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A real checkpoint of pipelines:ten whose outputs were replaced by a malicious pickle."""
    path = tmp_path / "c.sqlite"
    run(numbers(10), checkpoint=path, reporter=None)
    marker = tmp_path / "code-ran"
    evil = pickle.dumps([_Touch(marker)] * 10)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE journal SET outputs = ?, mac = ?", (evil, b"forged" * 5))
    return path, marker


def test_status_and_dry_run_never_unpickle_and_resume_refuses_forged_outputs(
    tmp_path: Path,
) -> None:
    path, marker = _crafted(tmp_path)
    status = curator("status", str(path), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"] == {"ok": 10}
    # The dry run refuses what the resume refuses (it checks a signature, unpickles nothing).
    dry = curator(
        "run", "pipelines:ten", "--resume", "--dry-run", "--checkpoint", str(path), "--json"
    )
    assert dry.returncode == 2, dry.stderr
    assert "were not written by your curator" in dry.stderr
    assert dry.stdout == ""
    assert not marker.exists(), "the dry run ran code from the checkpoint"
    resumed = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path))
    assert resumed.returncode == 2
    assert "were not written by your curator" in resumed.stderr
    assert not marker.exists(), "reading the checkpoint ran code from it"


def test_outputs_signed_with_another_key_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    other_key = subprocess_env(CURATOR_KEY_FILE=str(tmp_path / "someone-else.key"))
    assert curator("run", "pipelines:ten", "--checkpoint", str(path), env=other_key).returncode == 0
    for dry_run in (["--dry-run"], ["--dry-run", "--indices", "3:5"]):
        dry = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path), *dry_run)
        assert dry.returncode == 2, dry.stderr
        assert "were not written by your curator" in dry.stderr, dry.stderr
    own = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path), "--dry-run",
                  env=other_key)  # fmt: skip
    assert own.returncode == 0, own.stderr
    resumed = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path))
    assert resumed.returncode == 2
    assert "signature does not match your key" in resumed.stderr
    mine = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path), env=other_key)
    assert mine.returncode == 0, mine.stderr


def test_a_dry_run_refuses_a_checkpoint_that_two_keys_signed_as_the_resume_does(
    tmp_path: Path,
) -> None:
    # Items 0-4 signed with the default key, 5-9 with another: a resume with either key
    # verifies every batch it holds, so both refuse, and so do their dry runs.
    path = tmp_path / "c.sqlite"
    other = subprocess_env(CURATOR_KEY_FILE=str(tmp_path / "someone-else.key"))
    base = ("run", "pipelines:ten", "--checkpoint", str(path))
    assert curator(*base, "--indices", "0:5").returncode == 0
    assert curator(*base, "--indices", "5:10", env=other).returncode == 0
    for env in (None, other):
        dry = curator(*base, "--resume", "--dry-run", "--indices", "0:5", env=env)
        assert dry.returncode == 2, dry.stderr
        assert "the outputs recorded in" in dry.stderr
        resumed = curator(*base, "--resume", "--indices", "0:5", env=env)
        assert resumed.returncode == 2, resumed.stderr
        assert "the outputs recorded in" in resumed.stderr


def test_a_dry_run_refuses_stage_states_the_resume_refuses(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    base = ("run", "pipelines:tallied", "--checkpoint", str(path))
    assert curator(*base).returncode == 0
    wait_closed(path)
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("UPDATE states SET mac = ?", (b"forged" * 5,)).rowcount > 0
    for more in (["--dry-run"], []):
        proc = curator(*base, "--resume", *more)
        assert proc.returncode == 2, (more, proc.stderr)
        assert "the stage states recorded in" in proc.stderr, (more, proc.stderr)


# -- (c) the file alone holds everything ------------------------------------------------------


def test_after_a_run_the_sqlite_file_alone_holds_every_outcome(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    args = ["run", "pipelines:slow", "-b", "thread-pool", "-j", "4", "--checkpoint", str(path)]
    assert curator(*args).returncode == 0
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "outcomes were left in the WAL"
    copy = tmp_path / "copy" / "c.sqlite"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert report(copy).counts == {"ok": 200}


def test_in_python_wait_closed_makes_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    run(numbers(300), backend="thread-pool", jobs=2, checkpoint=path, reporter=None)
    wait_closed(path)
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "outcomes were left in the WAL"


# -- (d) deleted while running -------------------------------------------------------------------


class DeletesTheCheckpoint(Sink[int]):
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == 5:
            time.sleep(0.3)  # let a commit happen first
            os.unlink(self.path)
        return [str(index)]


class ReplacesTheCheckpoint(DeletesTheCheckpoint):
    """Puts another SQLite database (a backup, say) in the checkpoint's place at item 5."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        value = super().__call__(items, index)
        if index == 5:
            theirs = Path(self.path).with_name("theirs.db")
            with closing(sqlite3.connect(theirs)) as db, db:
                db.execute("CREATE TABLE mine (x)")
                db.executemany("INSERT INTO mine VALUES (?)", [(i,) for i in range(100)])
            os.replace(theirs, self.path)
        return value


@pytest.mark.parametrize("fate", ["deleted", "replaced", "replaced twice"])
def test_a_checkpoint_deleted_or_replaced_during_the_run_is_an_error_that_loses_nothing(
    tmp_path: Path, fate: str
) -> None:
    """Found by a break-it tour: the run's whole recording was lost with the file."""
    path = tmp_path / "c.sqlite"
    recovered = tmp_path / "c.recovered.sqlite"
    if fate == "replaced twice":  # a name taken by an earlier recovery is not reused
        recovered.write_text("an earlier recovery")
    sink = DeletesTheCheckpoint if fate == "deleted" else ReplacesTheCheckpoint
    happened = "deleted" if fate == "deleted" else "replaced"
    with pytest.raises(UsageError, match=f"the checkpoint {path} was {happened}") as error:
        run(Numbers(2000).write(sink(str(path))), checkpoint=path, reporter=None)
    message = str(error.value)
    assert "while the run was writing it; what it held, this run's outcomes included" in message
    # The recording is whole again: where it was, or beside another file that took its place.
    written = {
        "deleted": path,
        "replaced": recovered,
        "replaced twice": tmp_path / "c.recovered-2.sqlite",
    }[fate]
    assert f"is written to {written} again" in message
    assert sorted(read_latest(written)) == list(range(2000))
    assert {o.status for o in read_latest(written).values()} == {Status.OK.value}
    if fate != "deleted":
        # The file in its place is untouched: the run's -wal is not left beside it, where
        # SQLite would read it as that file's journal and write the run's pages over it.
        assert not Path(f"{path}-wal").exists()
        with closing(sqlite3.connect(path)) as theirs:
            assert theirs.execute("SELECT count(*) FROM mine").fetchone() == (100,)
            assert theirs.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    if fate == "replaced twice":
        assert recovered.read_text() == "an earlier recovery"
    # And a resume from it finds every item done.
    pipeline = Numbers(2000).write(sink(str(path)))
    again = run(pipeline, checkpoint=written, resume=True, reporter=None)
    assert again.count(Status.SKIPPED) == 2000


class DeletesItInSetup(Filter[int]):
    def __init__(self, path: str) -> None:
        self.path = path

    def setup(self, worker: WorkerInfo) -> None:
        os.unlink(self.path)
        raise ConnectionError("database is down")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        yield from items


def test_a_new_checkpoint_deleted_before_any_outcome_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with pytest.raises(UsageError, match="it held nothing yet: nothing is recorded"):
        run(Numbers(5).filter(DeletesItInSetup(str(path))).write(_Paths()), checkpoint=path,
            reporter=None)  # fmt: skip
    wait_closed()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


class _DatabaseDown(Filter[int]):
    def setup(self, worker: WorkerInfo) -> None:
        raise ConnectionError("database is down")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        yield from items


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_run_that_fails_before_any_outcome_leaves_no_new_checkpoint(
    tmp_path: Path, backend: str
) -> None:
    """Found by the second campaign: such a run left a new, empty checkpoint behind."""
    broken = Numbers(5).filter(_DatabaseDown()).write(_Paths())
    jobs = 2 if backend == "thread-pool" else 1
    new = tmp_path / "new" / "c.sqlite"
    with pytest.raises(UsageError, match="database is down"):
        run(broken, backend=backend, jobs=jobs, checkpoint=new, reporter=None)
    assert not new.parent.exists(), "the failed run left its new checkpoint (or folder)"
    # A checkpoint that was there before stays.
    kept = tmp_path / "kept.sqlite"
    CheckpointStore(kept, fingerprint(broken), repr(broken), len(broken)).close()
    wait_closed(kept)
    with pytest.raises(UsageError, match="database is down"):
        run(broken, backend=backend, jobs=jobs, checkpoint=kept, reporter=None)
    assert report(kept).runs, "the checkpoint that was there before was removed"


# -- (e) files that are not checkpoints ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# my notes\nnot a database\n", "is not a curator checkpoint (not an SQLite database)"),
        (b"SQLite format 3\x00" + b"\x00" * 50, "is not a usable curator checkpoint"),
    ],
    ids=["garbage", "truncated"],
)
def test_a_file_that_is_not_a_checkpoint_is_a_clear_error_everywhere_and_stays_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(content)
    for args in (
        ["run", "pipelines:ten", "--checkpoint", str(path)],
        ["run", "pipelines:ten", "--checkpoint", str(path), "--resume"],
        ["run", "pipelines:ten", "--checkpoint", str(path), "--resume", "--dry-run"],
        ["status", str(path)],
    ):
        proc = curator(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        # A run can be pointed elsewhere; status has no such flag to suggest.
        assert ("with --checkpoint" in proc.stderr) == (args[0] == "run"), (args, proc.stderr)
    assert path.read_bytes() == content


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    run(numbers(2000), backend="thread-pool", jobs=2, checkpoint=path, reporter=None)
    wait_closed(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    proc = curator("status", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr


class _Paths(Sink[int]):
    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return [f"{index}-{item}" for item in items]


@pytest.mark.parametrize("attempt", [0, 1 << 40])
def test_an_attempt_number_out_of_range_is_damage_not_a_crash(tmp_path: Path, attempt: int) -> None:
    """Found by the fault campaign: a flipped byte in the attempts column broke resume."""
    path = tmp_path / "c.sqlite"
    pipeline = Numbers(20).write(_Paths())
    run(pipeline, checkpoint=path, reporter=None, indices=range(10))
    wait_closed(path)
    with closing(sqlite3.connect(path)) as db, db:
        (rowid, attempts) = db.execute("SELECT id, attempts FROM journal").fetchone()
        corrupted = attempt.to_bytes(8, "little", signed=True) + attempts[8:]
        db.execute("UPDATE journal SET attempts = ? WHERE id = ?", (corrupted, rowid))
    with pytest.raises(UsageError, match="is damaged"):
        run(pipeline, checkpoint=path, reporter=None, resume=True)


def test_another_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE users (name TEXT)")
    before = path.read_bytes()
    with pytest.raises(UsageError, match="an SQLite database but not a curator checkpoint"):
        run(numbers(3), checkpoint=path, reporter=None)
    assert path.read_bytes() == before


def test_a_read_only_checkpoint_is_named_read_only() -> None:
    message = sqlite_problem(
        Path("c.sqlite"), sqlite3.OperationalError("attempt to write a readonly database")
    )
    assert message.startswith("cannot write the checkpoint c.sqlite: it is read-only")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_checkpoint_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    run(numbers(10), checkpoint=path, reporter=None)
    path.chmod(0o444)
    proc = curator("run", "pipelines:ten", "--resume", "--checkpoint", str(path))
    assert proc.returncode == 2
    assert "read-only" in proc.stderr


# -- (f) the dry run checks the pipeline too ------------------------------------------------------


@pytest.mark.parametrize("resume", [["--resume"], []])
def test_a_dry_run_refuses_another_pipelines_checkpoint(tmp_path: Path, resume: list[str]) -> None:
    path = tmp_path / "c.sqlite"
    run(numbers(5), checkpoint=path, reporter=None)
    proc = curator("run", "pipelines:ten", *resume, "--dry-run", "--checkpoint", str(path))
    assert proc.returncode == 2
    assert "belongs to another pipeline" in proc.stderr


def test_a_dry_run_refuses_a_checkpoint_another_run_holds_and_takes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    assert curator("run", "pipelines:ten", "--checkpoint", str(path)).returncode == 0
    held = take_lock(path)
    try:
        proc = curator("run", "pipelines:ten", "--dry-run", "--checkpoint", str(path))
        assert proc.returncode == 2, proc.stderr
        assert "is in use by another curator run (pid " in proc.stderr
    finally:
        release_lock(held)
    lock = path.with_name(path.name + ".lock").read_text()
    proc = curator("run", "pipelines:ten", "--dry-run", "--checkpoint", str(path))
    assert proc.returncode == 0, proc.stderr
    assert path.with_name(path.name + ".lock").read_text() == lock  # looked, took nothing
