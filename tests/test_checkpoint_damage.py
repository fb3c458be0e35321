"""A damaged checkpoint is a clear error (exit 2) or a row marked damaged, never a traceback.

A real small checkpoint (two runs, failures, captured output, metrics, stage
state) is damaged one field at a time: every column of every table, with
values of the wrong type, out of range, undecodable or forged. The reading
commands must then exit 0, 1 or 2 without an internal error, a folder's
listing must still list the intact checkpoint beside it, and no damage may
ever run code (a forged pickle in any column leaves its marker untouched).
"""

from __future__ import annotations

import array
import math
import os
import pickle
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from core_support import in_process_curator

from curator import UsageError, run
from curator.checkpoint.recorded import read_checkpoint
from curator.checkpoint.store import wait_closed
from curator.cli.target import load_target

ROOT = Path(__file__).parent.parent
TARGET = "tests/legacy/wave2_pipeline.py:pipeline"
"""Squares -> Seen (stage state, prints) -> Square (items 3 and 10 fail)."""


class _Touch:
    """A pickle that, loaded, creates a file: proof that reading ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mknod, (self.path,))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An intact checkpoint of the wave-2 pipeline, and the key that signed it."""
    folder = tmp_path_factory.mktemp("intact")
    key = folder / "key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    checkpoint = folder / "intact.sqlite"
    saved, os.environ["CURATOR_KEY_FILE"] = os.environ.get("CURATOR_KEY_FILE"), str(key)
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        pipeline = load_target(TARGET)
        run(pipeline, backend="thread-pool", jobs=2, indices=range(12), checkpoint=checkpoint,
            on_error="continue", reporter=None)  # fmt: skip
        run(load_target(TARGET), indices=range(12, 16), checkpoint=checkpoint,
            on_error="continue", reporter=None)  # fmt: skip
        wait_closed(checkpoint)
    finally:
        os.chdir(cwd)
        if saved is None:
            del os.environ["CURATOR_KEY_FILE"]
        else:
            os.environ["CURATOR_KEY_FILE"] = saved
    return checkpoint, key


_NAN = array.array("d", [math.nan]).tobytes()
_INF = array.array("d", [math.inf]).tobytes()
_HUGE = array.array("q", [1 << 62]).tobytes()
_NEGATIVE = array.array("q", [-1]).tobytes()

GENERIC = {
    "null": None,
    "text": "garbage",
    "negative": -1,
    "huge": 1 << 62,
    "odd blob": b"\x01\x02\x03",
    "invalid utf-8": "invalid utf-8",
}
"""Damage any field may suffer."""

SPECIFIC: dict[str, dict[str, Any]] = {
    "times": {"nan": _NAN * 16, "inf": _INF * 16, "huge text": "1e999", "float": 1e308},
    "numbers": {"huge": _HUGE * 16, "negative": _NEGATIVE * 16, "empty": b""},
    "json": {
        "not json": "{not json",
        "null": "null",
        "list": "[1, 2]",
        "nan": "NaN",
        "names not strings": '{"names": [1, 2], "errors": {}, "output": {}}',
        "names not a list": '{"names": "main", "errors": {}, "output": {}}',
        "error of the wrong shape": '{"names": ["a", "b"], "errors": {"0": 5}, "output": {}}',
        "error of the wrong types": '{"names": ["a"], "errors": {"0": {"type": 1, '
        '"message": [], "traceback": 5}}}',
        "error position not a number": '{"names": ["a"], "errors": {"x": {}}, "output": {}}',
        "error position out of range": '{"names": ["a"], "errors": {"99": {"type": "E", '
        '"message": "m"}}}',
        "output of the wrong shape": '{"names": ["a"], "errors": {}, "output": {"0": "x"}}',
        "settings of the wrong shape": '{"backend": 5, "jobs": "x", "indices": [1]}',
        "stages not strings": "[1, 2, 3]",
    },
}
"""Damage that fits a kind of field."""
_KIND = {
    "started": "times", "finished": "times", "metrics": "times", "seconds": "times",
    "indices": "numbers", "attempts": "numbers", "workers": "numbers", "codes": "numbers",
    "measured": "numbers", "sampled": "times",
    "info": "json", "settings": "json", "parameters": "json", "stages": "json",
}  # fmt: skip
FIELDS = (
    [("meta", "value", key) for key in
     ("schema", "fingerprint", "pipeline", "total", "created", "curator", "parameters", "stages")]
    + [("meta", "key", "total"), ("meta", "key", "schema")]
    + [("runs", c, None) for c in (
        "id", "started", "finished", "backend", "jobs", "requested", "ok", "failed", "skipped",
        "cancelled", "interrupted", "seconds", "ran", "settings")]
    + [("journal", c, None) for c in (
        "id", "run", "indices", "codes", "started", "finished", "attempts", "workers", "info",
        "outputs", "mac", "metrics", "measured", "sampled")]
    + [("states", c, None) for c in ("journal", "partials", "mac")]
    + [("sqlite_master", "name", "states"), ("sqlite_master", "name", "journal")]
)  # fmt: skip
"""``(table, column, row)``: every field of every table (meta's rows by key)."""


def _damage(checkpoint: Path, table: str, column: str, row: Any, value: Any) -> bool:
    """Write ``value`` into one field; False if SQLite refuses it (a NOT NULL column)."""
    with closing(sqlite3.connect(checkpoint)) as db:
        if table == "sqlite_master":
            db.execute("PRAGMA writable_schema = ON")
            where, args = "name = ?", (row,)
        elif table == "meta":
            where, args = "key = ?", (row,)
        else:
            where, args = f"rowid = (SELECT min(rowid) FROM {table})", ()
        try:
            with db:
                if value == "invalid utf-8":
                    update = f"UPDATE {table} SET {column} = CAST(X'80ff' AS TEXT) WHERE {where}"
                    db.execute(update, args)
                else:
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value, *args))
        except sqlite3.IntegrityError:
            return False
    return True


def _kinds(table: str, column: str, row: Any) -> dict[str, Any]:
    name = row if table == "meta" and column == "value" else column
    return {**GENERIC, **SPECIFIC.get(_KIND.get(name, ""), {})}


def _commands(checkpoint: Path, out: Path) -> list[list[str]]:
    folder = str(checkpoint.parent)
    return [
        ["status", str(checkpoint)],
        ["status", str(checkpoint), "--json"],
        ["status", str(checkpoint), "--failed"],
        ["status", str(checkpoint), "--index", "3", "--json"],
        ["status", folder],
        ["status", folder, "--json"],
        ["logs", "3", str(checkpoint)],
        ["logs", "12", str(checkpoint), "--json"],
        ["run", TARGET, "--resume", "--dry-run", "--json", "--checkpoint", str(checkpoint)],
        ["run", TARGET, "--resume", "--json", "--reporter", "none", "--checkpoint",
         str(checkpoint)],
    ]  # fmt: skip


def _field_id(table: str, column: str, row: Any) -> str:
    if table == "meta" and column == "value":
        return f"meta.{row}"
    return f"{table}.{column}" + (f"-of-{row}" if row else "")


@pytest.mark.parametrize(("table", "column", "row"), FIELDS, ids=[_field_id(*f) for f in FIELDS])
def test_a_damaged_field_is_a_clear_error_never_a_traceback(
    made: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    column: str,
    row: Any,
) -> None:
    intact, key = made
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    damaged = folder / "damaged.sqlite"
    shutil.copyfile(intact, folder / "intact.sqlite")
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("CURATOR_KEY_FILE", str(key))
    monkeypatch.chdir(ROOT)
    main = in_process_curator(monkeypatch)
    problems = []
    evil = pickle.dumps(_Touch(str(marker)))
    for kind, value in {**_kinds(table, column, row), "forged pickle": evil}.items():
        shutil.copyfile(intact, damaged)
        if not _damage(damaged, table, column, row, value):
            continue  # SQLite refuses this value there
        for args in _commands(damaged, tmp_path):
            code = main(args)
            # In this process a run's checkpoint is closed (its WAL folded in) by a thread
            # that outlives main(); the next copy over the file must not race it.
            wait_closed()
            out, err = capsys.readouterr()
            listing = args[:2] == ["status", str(folder)]
            if (
                code not in (0, 1, 2)
                or "Traceback" in err
                or "internal error" in err
                or (code == 2 and damaged.name not in err)
                or (listing and not ("intact.sqlite" in out and "damaged.sqlite" in out))
            ):
                problems.append(f"{kind}: curator {' '.join(args)}: exit {code}\n{err}{out}")
        # The public reading API (what `curator report` reads with): a clear error or a read.
        try:
            read_checkpoint(damaged)
        except UsageError as exc:
            if damaged.name not in str(exc):
                problems.append(f"{kind}: read_checkpoint: {exc}")
        except Exception as exc:
            problems.append(f"{kind}: read_checkpoint raised {type(exc).__name__}: {exc}")
        assert not marker.exists(), f"{kind}: reading a damaged checkpoint ran code from it"
    assert not problems, "\n".join(problems)


def test_an_item_beyond_the_pipeline_is_damage_for_every_reader(
    made: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intact, _ = made
    damaged = tmp_path / "c.sqlite"
    shutil.copyfile(intact, damaged)
    with closing(sqlite3.connect(damaged)) as db, db:
        rows = db.execute("SELECT id, indices FROM journal ORDER BY id").fetchall()
        rowid, data = next((rowid, data) for rowid, data in rows if len(data) > 8)
        indices = array.array("q", data)
        shown = str(indices[1])  # stays in the damaged batch: logs decodes it
        indices[0] = 999  # the pipeline has 20 items
        db.execute("UPDATE journal SET indices = ? WHERE id = ?", (indices.tobytes(), rowid))
    main = in_process_curator(monkeypatch)
    for args in (["status", str(damaged)], ["logs", shown, str(damaged)]):
        assert main(args) == 2, args
        assert "records item 999, but the pipeline has 20 items" in capsys.readouterr().err
    with pytest.raises(UsageError, match="records item 999, but the pipeline has 20 items"):
        read_checkpoint(damaged)
