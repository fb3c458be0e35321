"""Every reader opens a checkpoint the same way: whatever its name, wherever it lies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from core_support import curator, subprocess_env, without_write_access

from curator.checkpoint.recorded import read_checkpoint
from curator.testing.processes import shown_while_running, wait_until_written

# Characters an SQLite URI gives a meaning to (`#` ends the path, `?` starts the
# parameters, `%41` is "A"), and a few a shell or a URL would trip over.
AWKWARD_NAMES = ["a#b.sqlite", "a?b.sqlite", "a%41b.sqlite", "a b&mode=rwc;c'd.sqlite"]


def _readers(name: str) -> list[tuple[list[str], int]]:
    """Each command reading the checkpoint ``name`` of pipelines:fails_at_3, with its exit code."""
    resume = ["run", "pipelines:fails_at_3", "--resume", "--json", "--checkpoint", name]
    return [
        (["status", name, "--json"], 0),
        (["status", ".", "--json"], 0),
        (["status", name, "--index", "3", "--json"], 0),
        (["logs", "3", name, "--json"], 0),
        ([*resume, "--dry-run"], 0),
        (resume, 1),
    ]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_every_reader_opens_a_checkpoint_whose_name_sqlite_uris_give_a_meaning(
    tmp_path: Path, name: str
) -> None:
    made = curator("run", "pipelines:fails_at_3", "--keep-going", "--reporter", "none",
                   "--checkpoint", name, cwd=tmp_path)  # fmt: skip
    assert made.returncode == 1, made.stderr
    for args, code in _readers(name):
        proc = curator(*args, cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        data = json.loads(proc.stdout)
        if args[0] == "status" and args[1] == ".":
            assert [Path(row["checkpoint"]).name for row in data] == [name]
        elif args[0] == "run" and "--dry-run" in args:
            assert (data["done"], data["failed"]) == (9, 1)
        elif args[0] == "run":
            assert (data["skipped"], data["failed"]) == (9, 1)
        elif args[0] == "logs" or "--index" in args:
            assert data["status"] == "failed"
        else:
            assert data["counts"] == {"failed": 1, "ok": 9}
    # The public reading API (what `curator report` reads with) opens it too.
    recorded = read_checkpoint(tmp_path / name)
    assert sorted(recorded.status(row).value for row in recorded.latest_rows()) == [
        "failed", *["ok"] * 9
    ]  # fmt: skip
    # No reader made a file of its own (the cut-off name, a -wal or -shm left behind).
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, f"{name}.lock"]


# -- a folder the reader cannot write -------------------------------------------------------------


def test_a_checkpoint_in_a_folder_the_reader_cannot_write_can_be_inspected(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    made = curator("run", "pipelines:fails_at_3", "--keep-going", "--reporter", "none",
                   "--checkpoint", str(folder / "c.sqlite"), cwd=tmp_path)  # fmt: skip
    assert made.returncode == 1, made.stderr
    before = sorted(folder.iterdir())
    with without_write_access(folder) as reader:
        for args in (
            ["status", "c.sqlite", "--json"],
            ["status", ".", "--json"],
            ["logs", "3", "c.sqlite", "--json"],
            ["run", "pipelines:fails_at_3", "--resume", "--dry-run", "--json",
             "--checkpoint", "c.sqlite"],
        ):  # fmt: skip
            proc = reader(*args)
            assert proc.returncode == 0, (args, proc.stderr)
            data = json.loads(proc.stdout)
            assert data, args
    assert sorted(folder.iterdir()) == before


def test_a_run_being_written_is_read_live_by_a_reader_who_cannot_write_its_folder(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "curator", "run", "pipelines:busy", "--reporter", "none",
               "--checkpoint", "c.sqlite"]  # fmt: skip
    running = subprocess.Popen(
        command, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_written(tmp_path / "c.sqlite", running)
        with without_write_access(tmp_path) as reader:
            data = shown_while_running(lambda: reader("status", "c.sqlite", "--json"))
        assert data["state"] == "running"
        assert 0 < data["recorded"] < data["total"] == 12
    finally:
        _, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
