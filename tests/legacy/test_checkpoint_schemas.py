"""Checkpoints of other schemas: older and newer ones refused untouched, schema 2 migrated.

The fixtures are real files written by earlier commits (see
``schema_pipeline.py``); the newer one is today's checkpoint as a future
curator would change it (a higher schema number, a column and a table more).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from core_support import curator, subprocess_env

from curator import UsageError
from curator.checkpoint.meta import SCHEMA_VERSION
from curator.checkpoint.recorded import read_checkpoint

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TARGET = "tests/legacy/schema_pipeline.py:pipeline"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "schema.key"
    shutil.copyfile(HERE / "schema-checkpoint.key", key)
    os.chmod(key, 0o600)  # git does not keep a key's mode
    return subprocess_env(CURATOR_KEY_FILE=str(key))


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints"
    folder.mkdir(exist_ok=True)
    checkpoint = folder / "c.sqlite"
    shutil.copyfile(HERE / name, checkpoint)
    return checkpoint


def _newer(tmp_path: Path, env: dict[str, str]) -> Path:
    """Today's checkpoint of the fixtures' pipeline, as a curator of the next schema leaves it."""
    folder = tmp_path / "checkpoints"
    folder.mkdir(exist_ok=True)
    checkpoint = folder / "c.sqlite"
    made = curator("run", TARGET, "--indices", "0:6", "--keep-going", "--reporter", "none",
                   "--checkpoint", str(checkpoint), env=env, cwd=ROOT)  # fmt: skip
    assert made.returncode == 1, made.stderr
    with closing(sqlite3.connect(checkpoint)) as db, db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
        db.execute("UPDATE meta SET value = '9.0' WHERE key = 'curator'")
        db.execute("ALTER TABLE journal ADD COLUMN lineage BLOB")
        db.execute("CREATE TABLE artifacts (journal INTEGER, path TEXT)")
    return checkpoint


REFUSED = {
    "schema1-checkpoint.sqlite": "(checkpoint schema 1); this curator reads schema 2. Schema 1 "
    "stored pickled records",
    "schema2-interim-checkpoint.sqlite": "was written by a development version of curator",
    "newer": "was written by a newer curator (9.0, checkpoint schema 3); this curator",
}


@pytest.mark.parametrize("fixture", list(REFUSED))
def test_a_checkpoint_of_another_schema_is_refused_by_every_command_and_left_untouched(
    tmp_path: Path, env: dict[str, str], fixture: str
) -> None:
    checkpoint = _newer(tmp_path, env) if fixture == "newer" else _copy(fixture, tmp_path)
    before = checkpoint.read_bytes()
    path = str(checkpoint)
    for args in (
        ["status", path],
        ["status", path, "--json"],
        ["status", path, "--index", "3"],
        ["logs", "3", path],
        ["run", TARGET, "--resume", "--dry-run", "--checkpoint", path],
        ["run", TARGET, "--resume", "--checkpoint", path],
        ["run", TARGET, "--checkpoint", path],
    ):
        proc = curator(*args, env=env, cwd=ROOT)
        assert proc.returncode == 2, (args, proc.stderr)
        assert REFUSED[fixture] in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    with pytest.raises(UsageError) as refused:  # the public reading API (curator report's)
        read_checkpoint(checkpoint)
    assert REFUSED[fixture] in str(refused.value)
    listing = curator("status", str(checkpoint.parent), "--json", env=env, cwd=ROOT)
    assert listing.returncode == 0, listing.stderr
    [row] = json.loads(listing.stdout)
    assert row["state"] == "unreadable"
    assert REFUSED[fixture] in row["problem"]
    assert checkpoint.read_bytes() == before


def test_the_first_release_of_schema_2_is_read_then_migrated_by_a_resume(
    tmp_path: Path, env: dict[str, str]
) -> None:
    checkpoint = _copy("schema2-first-checkpoint.sqlite", tmp_path)
    path = str(checkpoint)
    status = curator("status", path, "--json", env=env, cwd=ROOT)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"] == {"failed": 1, "ok": 5}
    logs = curator("logs", "3", path, env=env, cwd=ROOT)
    assert logs.returncode == 0, logs.stderr
    assert "ValueError: item 3 is bad on purpose" in logs.stdout
    recorded = read_checkpoint(checkpoint)  # the public reading API (curator report's)
    assert sorted(recorded.status(row).value for row in recorded.latest_rows()) == [
        "failed", *["ok"] * 5
    ]  # fmt: skip
    plan = curator("run", TARGET, "--resume", "--dry-run", "--json", "--checkpoint", path,
                   env=env, cwd=ROOT)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["to_run"] == 3  # 3 (failed), 6 and 7
    resumed = curator("run", TARGET, "--resume", "--keep-going", "--json", "--checkpoint", path,
                      env=env, cwd=ROOT)  # fmt: skip
    assert resumed.returncode == 1, resumed.stderr  # item 3 fails again, on purpose
    assert json.loads(resumed.stdout)["counts"] == {"failed": 1, "ok": 2, "skipped": 5}
    with closing(sqlite3.connect(checkpoint)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        runs = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        journal = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
        schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    assert "states" in tables
    assert {"seconds", "ran", "settings"} <= runs
    assert "metrics" in journal
    assert schema == ("2",)
    after = json.loads(curator("status", path, "--json", env=env, cwd=ROOT).stdout)
    assert after["counts"] == {"failed": 1, "ok": 7}
    assert after["runs"] == 2
