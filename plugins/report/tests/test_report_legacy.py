"""``curator report`` reads checkpoints written by earlier releases, and refuses other schemas.

The fixtures are the core's (``tests/legacy``): real files written by earlier
commits. Moved here with the report from the core's legacy tests.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from report_support import curator, subprocess_env

LEGACY = Path(__file__).resolve().parents[3] / "tests" / "legacy"


def _copied(tmp_path: Path, name: str, key: str) -> tuple[Path, dict[str, str]]:
    checkpoint = tmp_path / "c.sqlite"
    shutil.copyfile(LEGACY / name, checkpoint)
    keyfile = tmp_path / "c.key"
    shutil.copyfile(LEGACY / key, keyfile)
    os.chmod(keyfile, 0o600)  # git does not keep a key's mode
    return checkpoint, subprocess_env(CURATOR_KEY_FILE=str(keyfile))


def test_report_reads_the_wave2_release_checkpoint_as_json_and_html(tmp_path: Path) -> None:
    checkpoint, env = _copied(tmp_path, "wave2-checkpoint.sqlite", "wave2-checkpoint.key")
    before = checkpoint.read_bytes()
    proc = curator("report", str(checkpoint), "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"] == {"failed": 2, "ok": 14}
    assert "bad on purpose" in proc.stdout
    page = tmp_path / "report.html"
    proc = curator("report", str(checkpoint), "--html", str(page), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "item 3 is bad on purpose" in page.read_text()
    assert checkpoint.read_bytes() == before  # reading never writes


def test_report_reads_the_first_release_of_schema_2(tmp_path: Path) -> None:
    checkpoint, env = _copied(tmp_path, "schema2-first-checkpoint.sqlite", "schema-checkpoint.key")
    proc = curator("report", str(checkpoint), "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"] == {"failed": 1, "ok": 5}


@pytest.mark.parametrize(
    ("fixture", "says"),
    [
        ("schema1-checkpoint.sqlite", "(checkpoint schema 1); this curator reads schema 2."),
        ("schema2-interim-checkpoint.sqlite", "was written by a development version of curator"),
    ],
)
def test_report_refuses_another_schema_untouched(tmp_path: Path, fixture: str, says: str) -> None:
    checkpoint, env = _copied(tmp_path, fixture, "schema-checkpoint.key")
    before = checkpoint.read_bytes()
    proc = curator("report", str(checkpoint), "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr
    assert checkpoint.read_bytes() == before
