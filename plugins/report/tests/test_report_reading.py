"""``curator report`` opens a checkpoint as every reader does: any name, a folder it cannot
write, a run still writing it; a damaged or empty one is a clear error (moved with the
report from the core's reader tests)."""

from __future__ import annotations

import array
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from report_support import curator, shown_while_running, subprocess_env

from curator.testing.processes import wait_until_written, without_write_access

# Characters an SQLite URI gives a meaning to, and a few a shell or a URL would trip over.
AWKWARD_NAMES = ["a#b.sqlite", "a?b.sqlite", "a%41b.sqlite", "a b&mode=rwc;c'd.sqlite"]


def _made(tmp_path: Path, name: str) -> None:
    made = curator("run", "report_pipelines:fails_at_3", "--keep-going", "--reporter", "none",
                   "--checkpoint", name, cwd=tmp_path)  # fmt: skip
    assert made.returncode == 1, made.stderr


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_report_opens_a_checkpoint_whose_name_sqlite_uris_give_a_meaning(
    tmp_path: Path, name: str
) -> None:
    _made(tmp_path, name)
    shown = curator("report", name, "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["counts"] == {"failed": 1, "ok": 9}
    # No file of its own (the cut-off name, a -wal or -shm left behind).
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, f"{name}.lock"]


def test_report_reads_a_checkpoint_in_a_folder_it_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    _made(tmp_path, str(folder / "c.sqlite"))
    before = sorted(folder.iterdir())
    with without_write_access(folder, subprocess_env()) as reader:
        for args in (["report", "c.sqlite", "--json"], ["report", "c.sqlite"]):
            proc = reader(*args)
            assert proc.returncode == 0, (args, proc.stderr)
        assert json.loads(reader("report", "c.sqlite", "--json").stdout)["recorded"] == 10
    assert sorted(folder.iterdir()) == before


def test_report_reads_a_run_being_written_in_a_folder_it_cannot_write(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "curator", "run", "report_pipelines:busy", "--reporter",
               "none", "--checkpoint", "c.sqlite"]  # fmt: skip
    running = subprocess.Popen(
        command, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_written(tmp_path / "c.sqlite", running)
        with without_write_access(tmp_path, subprocess_env()) as reader:
            data = shown_while_running(lambda: reader("report", "c.sqlite", "--json"))
        assert data["state"] == "running"
        assert 0 < data["recorded"] < data["total"] == 12
    finally:
        _, err = running.communicate(timeout=60)
    assert running.returncode == 0, err


def test_a_damaged_or_empty_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    _made(tmp_path, "c.sqlite")
    with closing(sqlite3.connect(tmp_path / "c.sqlite")) as db, db:
        rowid, data = db.execute("SELECT id, indices FROM journal ORDER BY id").fetchone()
        indices = array.array("q", data)
        indices[0] = 999  # the pipeline has 10 items
        db.execute("UPDATE journal SET indices = ? WHERE id = ?", (indices.tobytes(), rowid))
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for args, says in [
        (["report", "c.sqlite"], "records item 999, but the pipeline has 10 items"),
        (["report", "c.sqlite", "--html", "r.html"], "records item 999"),
        (["report", str(empty)], f"no checkpoint at {empty} (the file is empty: a run there"),
    ]:
        shown = curator(*args, cwd=tmp_path)
        assert shown.returncode == 2, (args, shown.stderr)
        assert says in shown.stderr, shown.stderr
        assert "Traceback" not in shown.stderr
    assert not (tmp_path / "r.html").exists()
