"""A checkpoint written by the release before the third wave stays readable and resumable.

The fixture (``wave2-checkpoint.sqlite``, made as ``wave2_pipeline.py`` says)
is copied per test: reading must not need to write it, and a resume adds to
the copy only.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from core_support import curator, subprocess_env

from curator.checkpoint.recorded import read_checkpoint

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TARGET = "tests/legacy/wave2_pipeline.py:pipeline"
OK = [i for i in range(16) if i not in (3, 10)]


@pytest.fixture
def legacy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    checkpoint = tmp_path / "wave2.sqlite"
    shutil.copyfile(HERE / "wave2-checkpoint.sqlite", checkpoint)
    key = tmp_path / "wave2.key"
    shutil.copyfile(HERE / "wave2-checkpoint.key", key)
    os.chmod(key, 0o600)  # git does not keep a key's mode
    return checkpoint, subprocess_env(CURATOR_KEY_FILE=str(key))


def test_status_reads_the_counts_runs_and_settings(legacy: tuple[Path, dict[str, str]]) -> None:
    checkpoint, env = legacy
    proc = curator("status", str(checkpoint), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["total"] == 20
    assert status["recorded"] == 16
    assert status["counts"] == {"failed": 2, "ok": 14}
    assert sorted(f["index"] for f in status["failures"]) == [3, 10]
    assert "bad on purpose" in json.dumps(status["failures"])


def test_logs_show_an_items_output_and_traceback(legacy: tuple[Path, dict[str, str]]) -> None:
    checkpoint, env = legacy
    proc = curator("logs", "3", str(checkpoint), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "seen 3" in proc.stdout
    assert "about to fail on 3" in proc.stdout
    assert "ValueError: item 3 is bad on purpose" in proc.stdout


def test_the_reading_api_reads_every_column(legacy: tuple[Path, dict[str, str]]) -> None:
    """What ``curator report`` (the plugin curator-report) reads it with."""
    checkpoint, _ = legacy
    recorded = read_checkpoint(checkpoint)
    rows = recorded.latest_rows()
    assert recorded.total == 20
    statuses = {recorded.columns.indices[r]: recorded.status(r).value for r in rows}
    assert statuses == {i: "failed" if i in (3, 10) else "ok" for i in range(16)}
    errors = [recorded.columns.errors[r].message for r in rows if r in recorded.columns.errors]
    assert len(errors) == 2
    assert all("bad on purpose" in message for message in errors)
    printed = [recorded.columns.printed[r].text for r in rows if r in recorded.columns.printed]
    assert any("about to fail on 3" in text for text in printed)
    assert recorded.metric(rows[0], "rss_peak")
    assert [s.stage for s in recorded.stage_summaries(rows)] == list(recorded.stages)


def test_a_resume_runs_only_what_is_not_done_and_keeps_the_recorded_outputs(
    legacy: tuple[Path, dict[str, str]],
) -> None:
    checkpoint, env = legacy
    args = ("run", TARGET, "--checkpoint", str(checkpoint), "--resume", "--indices", "0:20")
    plan = curator(*args, "--dry-run", "--json", env=env, cwd=ROOT)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["to_run"] == 6  # 3, 10 and 16-19
    proc = curator(*args, "--json", env=env, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr  # 3 and 10 fail again, on purpose
    summary = json.loads(proc.stdout)
    assert summary["counts"]["failed"] == 2
    assert summary["counts"]["ok"] == 4
    assert summary["counts"]["skipped"] == 14
    status = json.loads(curator("status", str(checkpoint), "--json", env=env).stdout)
    assert status["counts"] == {"failed": 2, "ok": 18}


def test_a_resume_from_python_merges_the_recorded_stage_state(
    legacy: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, env = legacy
    monkeypatch.setenv("CURATOR_KEY_FILE", env["CURATOR_KEY_FILE"])
    monkeypatch.chdir(ROOT)
    import curator as api
    from curator.cli.target import load_target

    pipeline = load_target(TARGET)
    with pytest.warns(UserWarning, match="was made by an earlier curator"):
        result = api.run(
            pipeline,
            backend="sequential",
            checkpoint=checkpoint,
            resume=True,
            on_error="continue",
            reporter=None,
        )
    assert sorted(o.index for o in result.outcomes if o.status == "skipped") == OK
    assert result.outputs[0] == ["0"]  # a recorded output, read back from the fixture
    assert pipeline.filters[0].seen == tuple(i for i in range(20) if i not in (3, 10))


def test_the_default_checkpoint_an_earlier_curator_made_is_resumed_and_then_told_apart(
    legacy: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Made before the data methods' reads were fingerprinted (the sink reads FAILING).

    ``--resume`` with no ``--checkpoint`` finds it under its earlier name, says
    so, resumes it, and gives it today's fingerprint: a pipeline whose sink
    then reads another FAILING is no longer taken for it.
    """
    from curator.checkpoint.catalog import reading_checkpoint
    from curator.checkpoint.fingerprint import fingerprint, legacy_fingerprint
    from curator.cli.target import load_target

    fixture, env = legacy
    work = tmp_path / "project"
    (work / ".curator").mkdir(parents=True)
    shutil.copyfile(HERE / "wave2_pipeline.py", work / "wave2_pipeline.py")
    pipeline = load_target(str(HERE / "wave2_pipeline.py") + ":pipeline")
    today, earlier = fingerprint(pipeline), legacy_fingerprint(pipeline)
    assert today != earlier, "the sink's FAILING is fingerprinted now"
    checkpoint = work / ".curator" / f"{earlier[:16]}.sqlite"
    fixture.rename(checkpoint)
    target = "wave2_pipeline.py:pipeline"
    proc = curator("run", target, "--resume", "--indices", "0:20", "--json", env=env, cwd=work)
    assert proc.returncode == 1, proc.stderr  # 3 and 10 fail again, on purpose
    assert json.loads(proc.stdout)["counts"]["skipped"] == 14
    assert "was made by an earlier curator" in proc.stderr
    assert sorted(p.name for p in (work / ".curator").glob("*.sqlite")) == [checkpoint.name]
    with reading_checkpoint(checkpoint) as (_, meta):
        assert meta["fingerprint"] == today
    again = curator("run", target, "--resume", "--indices", "0:20", "--json", env=env, cwd=work)
    assert json.loads(again.stdout)["counts"]["skipped"] == 18
    assert "was made by an earlier curator" not in again.stderr
    # Another FAILING: another configuration now, where the earlier fingerprint was blind to it.
    source = (work / "wave2_pipeline.py").read_text()
    (work / "wave2_pipeline.py").write_text(source.replace("{3, 10}", "{3, 11}"))
    shutil.rmtree(work / "__pycache__", ignore_errors=True)  # same size, same second: stale
    other = curator("run", target, "--resume", "--checkpoint", str(checkpoint), env=env, cwd=work)
    assert other.returncode == 2
    assert "belongs to another pipeline" in other.stderr
    # Without --checkpoint it is not taken either: this configuration gets a file of its own.
    fresh = curator("run", target, "--indices", "0:4", "--json", env=env, cwd=work)
    assert fresh.returncode == 1, fresh.stderr  # 3 fails, on purpose
    assert json.loads(fresh.stdout)["counts"] == {"ok": 3, "failed": 1}
    assert len(list((work / ".curator").glob("*.sqlite"))) == 2


def test_a_run_that_does_not_resume_says_it_gives_an_earlier_checkpoint_todays_fingerprint(
    legacy: tuple[Path, dict[str, str]],
) -> None:
    """A later --resume reuses its results: the notice comes now, when the file changes."""
    checkpoint, env = legacy
    args = ("run", TARGET, "--checkpoint", str(checkpoint), "--indices", "0:2", "--json")
    proc = curator(*args, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "was made by an earlier curator" in proc.stderr
    assert "UserWarning" not in proc.stderr  # said once, as a notice, not as Python's warning
    again = curator(*args, env=env, cwd=ROOT)
    assert "was made by an earlier curator" not in again.stderr


def test_a_damaged_checkpoint_under_the_earlier_name_is_named_not_passed_over(
    tmp_path: Path,
) -> None:
    """It cannot say whose it is: the run opens it and says what is wrong, as before."""
    from curator.checkpoint.fingerprint import legacy_fingerprint
    from curator.cli.target import load_target

    work = tmp_path / "project"
    (work / ".curator").mkdir(parents=True)
    shutil.copyfile(HERE / "wave2_pipeline.py", work / "wave2_pipeline.py")
    earlier = legacy_fingerprint(load_target(str(HERE / "wave2_pipeline.py") + ":pipeline"))
    damaged = work / ".curator" / f"{earlier[:16]}.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    proc = curator("run", "wave2_pipeline.py:pipeline", "--resume", env=subprocess_env(), cwd=work)
    assert proc.returncode == 2, proc.stderr
    assert damaged.name in proc.stderr
    assert len(list((work / ".curator").glob("*.sqlite"))) == 1
