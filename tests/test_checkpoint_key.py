"""The checkpoint key: only a whole, private key of one's own ever signs or verifies."""

from __future__ import annotations

import hmac
import multiprocessing
import os
import pickle
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from core_support import curator, subprocess_env
from pipelines import numbers

from curator import UsageError, run
from curator.checkpoint.keyfile import KEY_BYTES, KEY_ENV, user_key


def _key_file(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


def _refuses_to_run(key: Path, says: str) -> None:
    """A CLI run with ``key`` exits 2 with ``says``, before any checkpoint is written."""
    checkpoint = key.parent / "c.sqlite"
    proc = curator(
        "run", "pipelines:ten", "--checkpoint", str(checkpoint),
        env=subprocess_env(CURATOR_KEY_FILE=str(key)),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not checkpoint.exists()
    assert not checkpoint.with_name("c.sqlite.lock").exists()


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's key lives (nothing there yet); in-process runs use it."""
    path = tmp_path / "keys" / "checkpoint.key"
    monkeypatch.setenv(KEY_ENV, str(path))
    return path


# -- 25.7: an empty or short key is no key ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"", "is empty"), (b"k" * 16, f"holds 16 bytes; a key needs at least {KEY_BYTES}")],
    ids=["empty", "short"],
)
def test_an_empty_or_short_key_file_is_refused(key: Path, content: bytes, says: str) -> None:
    key.parent.mkdir()
    _key_file(key, content)
    with pytest.raises(UsageError, match=f"the checkpoint key {key} {says}") as refused:
        user_key()
    assert "Delete it" in str(refused.value)
    _refuses_to_run(key, says)
    assert key.read_bytes() == content, "the key file was changed"


class _Touch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def test_a_checkpoint_forged_with_an_empty_key_never_runs_code_on_resume(
    tmp_path: Path, key: Path
) -> None:
    path = tmp_path / "c.sqlite"
    run(numbers(10), checkpoint=path, reporter=None)
    marker = tmp_path / "code-ran"
    evil = pickle.dumps([_Touch(marker)] * 10)
    forged = hmac.new(b"", evil, "sha256").digest()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE journal SET outputs = ?, mac = ?", (evil, forged))
    _key_file(key, b"")  # the victim's key file is empty (the run above made it)
    resumed = curator(
        "run", "pipelines:ten", "--resume", "--checkpoint", str(path),
        env=subprocess_env(CURATOR_KEY_FILE=str(key)),
    )  # fmt: skip
    assert not marker.exists(), "a checkpoint signed with an empty key ran code on --resume"
    assert resumed.returncode == 2, resumed.stderr
    assert "is empty" in resumed.stderr
    assert "Traceback" not in resumed.stderr


# -- 25.10: a key others can read, or another user's key, is refused ------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_others_can_access_is_refused_with_the_fix(key: Path, mode: int) -> None:
    key.parent.mkdir()
    _key_file(key, os.urandom(KEY_BYTES), mode)
    with pytest.raises(UsageError, match=f"mode 0{mode:o}") as refused:
        user_key()
    assert f"chmod 600 {key}" in str(refused.value)
    _refuses_to_run(key, f"chmod 600 {key}")


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_of_ones_own_is_used(key: Path, mode: int) -> None:
    key.parent.mkdir()
    secret = os.urandom(KEY_BYTES)
    _key_file(key, secret, mode)
    assert user_key() == secret


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_key_is_refused_even_when_readable(key: Path) -> None:
    key.parent.mkdir()
    _key_file(key, os.urandom(KEY_BYTES))
    other = os.geteuid() + 4242
    os.chown(key, other, -1)
    with pytest.raises(UsageError, match=f"belongs to another user \\(uid {other}\\)") as refused:
        user_key()
    assert KEY_ENV in str(refused.value)
    _refuses_to_run(key, f"belongs to another user (uid {other})")


def test_a_new_key_is_whole_and_private(key: Path) -> None:
    made = user_key()
    assert len(made) == KEY_BYTES
    assert key.read_bytes() == made
    assert key.stat().st_mode & 0o777 == 0o600
    assert user_key() == made
    assert [p.name for p in key.parent.iterdir()] == [key.name], "a temporary file was left"


# -- 25.8: two curators making the key at once get the same, whole key ----------------------

_PROCESSES = 6
_ROUNDS = 60


def _race(folder: str, barrier: multiprocessing.synchronize.Barrier, results: object) -> None:
    for round_ in range(_ROUNDS):
        os.environ[KEY_ENV] = os.path.join(folder, f"{round_}.key")
        barrier.wait()
        try:
            made = user_key()
        except UsageError as exc:
            made = str(exc).encode()
        results.put((round_, made))  # type: ignore[attr-defined]


def test_processes_making_the_key_at_once_all_sign_with_the_same_whole_key(
    tmp_path: Path,
) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(_PROCESSES)
    results = context.Queue()
    racers = [
        context.Process(target=_race, args=(str(tmp_path), barrier, results))
        for _ in range(_PROCESSES)
    ]
    for racer in racers:
        racer.start()
    got: dict[int, list[bytes]] = {}
    for _ in range(_PROCESSES * _ROUNDS):
        round_, made = results.get(timeout=120)
        got.setdefault(round_, []).append(made)
    for racer in racers:
        racer.join(30)
        assert racer.exitcode == 0
    bad = {
        round_: keys
        for round_, keys in got.items()
        if {len(k) for k in keys} != {KEY_BYTES}
        or len(set(keys)) != 1
        or (tmp_path / f"{round_}.key").read_bytes() != keys[0]
    }
    assert not bad, f"{len(bad)} of {_ROUNDS} rounds signed with another or a partial key: {bad}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{r}.key" for r in got)


def test_a_key_that_is_a_directory_is_refused_as_no_regular_file(key: Path) -> None:
    key.mkdir(parents=True, mode=0o700)
    with pytest.raises(UsageError, match="is not a regular file"):
        user_key()
    _refuses_to_run(key, "is not a regular file")


def test_a_key_that_is_a_dangling_symlink_names_the_missing_target(key: Path) -> None:
    key.parent.mkdir(mode=0o700)
    key.symlink_to(key.parent / "gone")
    with pytest.raises(UsageError, match=r"symbolic link to .*gone.* which does not exist"):
        user_key()
