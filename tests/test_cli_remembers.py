"""`curator run` and `curator status` remember: issue 12, one test (or more) per finding."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_support import as_json, curator, in_process_curator, subprocess_env

from curator import UsageError, run
from curator.checkpoint.recorded import read_checkpoint
from curator.model.selection import cpu_count
from curator.plugin_host.options import describe_options, option
from curator.testing.waiting import wait_until

HINT = re.compile(r"to finish the rest with the same settings: (curator run .*)$", re.M)


def _status(cwd: Path, *args: str) -> Any:
    proc = curator("status", *args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- 1. the resume hint reproduces the run ---------------------------------------


def test_following_the_resume_hint_resumes_with_the_same_backend_jobs_and_indices(
    tmp_path: Path,
) -> None:
    first = curator("run", "pipelines:fails_at_3", "-b", "thread-pool", "-j", "2",
                    "--indices", "0:5", "--keep-going", "--retries", "1", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1, first.stderr
    hint = HINT.search(first.stderr)
    assert hint is not None, first.stderr
    assert hint.group(1) == "curator run pipelines:fails_at_3 --resume"
    words = shlex.split(hint.group(1))
    again = curator(*words[1:], "--json", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert (
        "curator: resuming with the last run's settings: -b thread-pool -j 2 --indices 0:5 "
        "--keep-going --retries 1\n" in again.stderr
    )
    summary = json.loads(again.stdout)
    assert (summary["backend"], summary["jobs"], summary["total"]) == ("thread-pool", 2, 5)
    assert (summary["skipped"], summary["failed"], summary["retried"]) == (4, 1, 1)


def test_flags_given_with_resume_override_the_recorded_ones(tmp_path: Path) -> None:
    curator("run", "pipelines:fails_at_3", "-b", "thread-pool", "-j", "2", "--indices", "0:5",
            "--keep-going", cwd=tmp_path)  # fmt: skip
    again = curator("run", "pipelines:fails_at_3", "--resume", "-j", "1", "--indices", "2:6",
                    "--json", cwd=tmp_path)  # fmt: skip
    assert "resuming with the last run's settings: -b thread-pool --keep-going; " \
        "given now: -j 1 --indices 2:6\n" in again.stderr  # fmt: skip
    summary = json.loads(again.stdout)
    assert (summary["backend"], summary["jobs"], summary["total"]) == ("thread-pool", 1, 4)
    assert summary["skipped"] == 2  # 2 and 4 were done; 3 fails again, 5 is new


def test_a_resume_names_as_given_now_only_the_option_keys_given_now(tmp_path: Path) -> None:
    """-o and --reporter-option merge by key: the recorded keys kept are the last run's."""
    curator("run", "pipelines:fails_at_3", "--reporter", "log", "--reporter-option",
            "log.interval=5", "--indices", "0:5", cwd=tmp_path)  # fmt: skip
    again = curator("run", "pipelines:fails_at_3", "--resume", "--reporter-option",
                    "log.step=0.5", cwd=tmp_path)  # fmt: skip
    assert (
        "resuming with the last run's settings: --indices 0:5 --reporter log "
        "--reporter-option log.interval=5; given now: --reporter-option log.step=0.5\n"
    ) in again.stderr, again.stderr


def test_a_resume_that_names_the_reporter_again_keeps_its_recorded_options(
    tmp_path: Path,
) -> None:
    curator("run", "pipelines:fails_at_3", "--reporter", "log", "--reporter-option",
            "log.interval=5", "--indices", "0:5", cwd=tmp_path)  # fmt: skip
    again = curator("run", "pipelines:fails_at_3", "--resume", "--reporter", "log",
                    "--dry-run", "--json", cwd=tmp_path)  # fmt: skip
    assert json.loads(again.stdout)["settings"]["reporter_options"] == {"log": {"interval": "5"}}
    other = curator("run", "pipelines:fails_at_3", "--resume", "--reporter", "json",
                    "--reporter-option", "json.file=events.jsonl", "--dry-run", "--json",
                    cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0, other.stderr  # the log reporter's options do not follow
    assert json.loads(other.stdout)["settings"]["reporter_options"] == {
        "json": {"file": "events.jsonl"}
    }


def test_resume_with_another_backend_drops_the_old_backends_options_and_jobs(
    tmp_path: Path,
) -> None:
    first = curator("run", "pipelines:fails_at_3", "-b", "thread-pool", "-j", "2",
                    "-o", "copy_pipeline=false", "--keep-going", "--retries", "1",
                    cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1, first.stderr
    again = curator("run", "pipelines:fails_at_3", "--resume", "-b", "sequential", "--json",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 1, again.stderr  # item 3 fails again: nothing else went wrong
    assert "needs a parallel backend" not in again.stderr
    assert "copy_pipeline" not in again.stderr.replace(
        "not reused with -b sequential: -j 2 -o copy_pipeline=false", ""
    )
    assert (
        "curator: resuming with the last run's settings: --keep-going --retries 1; "
        "given now: -b sequential\n" in again.stderr
    )
    assert (
        "curator: not reused with -b sequential: -j 2 -o copy_pipeline=false (the last "
        "run's thread-pool settings; give them again to keep them)\n" in again.stderr
    )
    summary = json.loads(again.stdout)
    assert (summary["backend"], summary["jobs"]) == ("sequential", 1)
    assert (summary["skipped"], summary["failed"], summary["retried"]) == (9, 1, 1)


def test_resume_with_another_parallel_backend_takes_the_jobs_given_now(tmp_path: Path) -> None:
    curator("run", "pipelines:fails_at_3", "-b", "thread-pool", "-j", "3",
            "-o", "copy_pipeline=false", "--keep-going", cwd=tmp_path)  # fmt: skip
    again = curator("run", "pipelines:fails_at_3", "--resume", "-b", "thread_pool", "-j", "2",
                    "--json", cwd=tmp_path)  # fmt: skip
    # The same backend (another spelling): its options are reused, -j is the one given.
    assert "not reused" not in again.stderr
    assert "-o copy_pipeline=false" in again.stderr
    summary = json.loads(again.stdout)
    assert (summary["backend"], summary["jobs"], summary["skipped"]) == ("thread-pool", 2, 9)


def test_a_stop_at_the_first_failure_suggests_keep_going_for_the_rest(tmp_path: Path) -> None:
    first = curator("run", "pipelines:fails_at_3", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert HINT.search(first.stderr) is not None, first.stderr
    assert (
        "curator: the run stopped at the first failure (item 3), so 6 items never ran; to run "
        "them past failures: curator run pipelines:fails_at_3 --resume --keep-going\n"
    ) in first.stderr
    again = curator("run", "pipelines:fails_at_3", "--resume", "--keep-going", "--json",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 1, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["ok"], summary["skipped"], summary["failed"]) == (6, 3, 1)
    assert "--keep-going" not in again.stderr.partition("to run them past failures")[2]
    kept_going = curator("run", "pipelines:fails_at_3_and_7", "--keep-going", cwd=tmp_path)
    assert "past failures" not in kept_going.stderr  # nothing was left out


def test_a_resume_dry_run_says_its_settings_and_counts_interrupted_items_apart(
    tmp_path: Path,
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = subprocess_env(CURATOR_TEST_MARKERS=str(markers))
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", "run", "pipelines:marked_slow", "-b", "thread-pool",
         "-j", "2", "--grace", "0.2", "--reporter", "none"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    wait_until(lambda: len(list(markers.iterdir())) >= 2, 60, "two items to start")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    shown = curator("run", "pipelines:marked_slow", "--resume", "--dry-run", "--json",
                    cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)
    assert (plan["done"], plan["failed"], plan["interrupted"]) == (0, 0, 2)
    assert plan["pending"] == 38
    assert plan["to_run"] == 40
    assert plan["failed_indices"] == []
    assert (plan["backend"], plan["jobs"]) == ("thread-pool", 2)  # as a run's summary says
    assert plan["settings"]["jobs"] == 2
    assert plan["settings"]["grace"] == 0.2
    other = curator("run", "pipelines:marked_slow", "--resume", "--dry-run", "--json",
                    "-b", "sequential", cwd=tmp_path)  # fmt: skip
    plan = json.loads(other.stdout)
    assert (plan["backend"], plan["jobs"], plan["settings"]["jobs"]) == ("sequential", 1, None)
    text = curator("run", "pipelines:marked_slow", "--resume", "--dry-run", cwd=tmp_path)
    assert re.search(r"^interrupted \(run again\) +2$", text.stdout, re.M), text.stdout
    assert re.search(r"^backend +thread-pool, jobs=2$", text.stdout, re.M), text.stdout
    assert re.search(r"^settings +-b thread-pool -j 2 --grace 0\.2", text.stdout, re.M)


# -- 2. --resume with nothing to resume, and a rerun over finished items ----------


def test_resume_without_a_checkpoint_says_it_starts_fresh(tmp_path: Path) -> None:
    proc = curator("run", "pipelines:ten", "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"^curator: nothing to resume: no checkpoint of this configuration at "
        r"\.curator/[0-9a-f]{16}\.sqlite; starting fresh$",
        proc.stderr,
        re.M,
    ), proc.stderr


def test_resume_names_checkpoints_of_the_same_pipeline_class_and_what_differs(
    tmp_path: Path,
) -> None:
    assert curator("run", "pipelines:ten", cwd=tmp_path).returncode == 0
    proc = curator("run", "pipelines:eleven", "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to resume" in proc.stderr
    assert re.search(
        r"curator:   \.curator/[0-9a-f]{16}\.sqlite holds the same pipeline class with other "
        r"parameters \(10 of 10 done\): items: 11 here, 10 there",
        proc.stderr,
    ), proc.stderr


def test_a_rerun_over_finished_items_says_how_many_and_how_to_skip_them(tmp_path: Path) -> None:
    assert curator("run", "pipelines:ten", cwd=tmp_path).returncode == 0
    proc = curator("run", "pipelines:ten", cwd=tmp_path)
    assert proc.returncode == 0
    assert re.search(
        r"^curator: the checkpoint \.curator/[0-9a-f]{16}\.sqlite holds 10 finished items of "
        r"this pipeline; this run does them again \(to skip them: curator run pipelines:ten "
        r"--resume\)$",
        proc.stderr,
        re.M,
    ), proc.stderr


def test_a_bad_flag_is_reported_before_any_notice(tmp_path: Path) -> None:
    assert curator("run", "pipelines:ten", cwd=tmp_path).returncode == 0
    proc = curator("run", "pipelines:ten", "-b", "thread-pool", "-o", "nope=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("curator: error: unknown option 'nope'"), proc.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ["-b", "thread-pool", "-o", "nope=1"],
        ["-b", "thread-pool", "--timeout", "5"],
        ["-b", "sequential", "-j", "3"],
        ["-b", "thread-pool", "-j", "1", "-o", "copy_pipeline=true"],
        ["--reporter", "log", "--reporter-option", "json.file=x"],
    ],
)
def test_a_dry_run_refuses_what_the_run_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    flags: list[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    main = in_process_curator(monkeypatch)
    assert main(["run", "pipelines:ten", *flags]) == 2
    refused = capsys.readouterr().err
    assert refused.startswith("curator: error: "), refused
    assert main(["run", "pipelines:ten", *flags, "--dry-run"]) == 2
    assert capsys.readouterr().err == refused
    assert main(["run", "pipelines:ten", "-b", "thread-pool", "-j", "2", "--dry-run"]) == 0
    assert "dry run: nothing was run" in capsys.readouterr().out
    assert not (tmp_path / ".curator").exists()  # the refused run opened no checkpoint


def test_a_dry_run_asks_the_backend_to_check_its_options_and_lets_it_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a cluster would refuse (Slurm's partition) is named by --dry-run too."""
    from curator.backends.thread_pool import ThreadPoolBackend

    calls: list[tuple[str, int]] = []

    def check(self: ThreadPoolBackend) -> None:
        calls.append(("check", self.jobs))
        if self.jobs == 3:
            raise UsageError("the system refuses 3 workers")

    monkeypatch.setattr(ThreadPoolBackend, "check", check)
    monkeypatch.setattr(ThreadPoolBackend, "close", lambda self: calls.append(("close", 0)))
    monkeypatch.chdir(tmp_path)
    main = in_process_curator(monkeypatch)
    assert main(["run", "pipelines:ten", "-b", "thread-pool", "-j", "3", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("curator: error: the system refuses 3 workers")
    assert calls == [("check", 3), ("close", 0)]
    assert main(["run", "pipelines:ten", "-b", "thread-pool", "-j", "2", "--dry-run"]) == 0
    assert "dry run: nothing was run" in capsys.readouterr().out
    assert calls[2:] == [("check", 2), ("close", 0)]
    # One job runs in this process, on no backend of its own: nothing to ask.
    assert main(["run", "pipelines:ten", "-b", "thread-pool", "-j", "1", "--dry-run"]) == 0
    assert len(calls) == 4
    assert not (tmp_path / ".curator").exists()
    # A run asks the same before it prepares: refused before the checkpoint records it.
    assert main(["run", "pipelines:ten", "-b", "thread-pool", "-j", "3"]) == 2
    assert "curator: error: the system refuses 3 workers" in capsys.readouterr().err
    assert calls[4:] == [("check", 3), ("close", 0)]
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_dry_run_refuses_a_pipeline_the_backend_cannot_take_and_so_does_the_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """thread-pool cannot copy it: the dry run said it would run, the run started and failed."""
    monkeypatch.chdir(tmp_path)
    main = in_process_curator(monkeypatch)
    flags = ["run", "pipelines:locked", "-b", "thread-pool", "-j", "2", "--reporter", "log"]
    assert main([*flags, "--dry-run"]) == 2
    refused = capsys.readouterr().err
    assert refused.startswith("curator: error: thread-pool could not copy the pipeline for "), (
        refused
    )
    assert main(flags) == 2
    said = capsys.readouterr().err
    assert said == refused  # before the run started: no start line, no summary
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # and no checkpoint records it
    assert main(["run", "pipelines:locked", "-b", "thread-pool", "-j", "2", "-o",
                 "copy_pipeline=false", "--dry-run"]) == 0  # fmt: skip


def _read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder`` mounted read-only over itself (root ignores file modes), or a skip."""
    folder.mkdir()
    if subprocess.run(["mount", "--bind", str(folder), str(folder)],
                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot bind-mount here (not root, or no mount namespace)")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(folder)]
        if subprocess.run(remount, capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from _read_only_folder(tmp_path / "ro")


@pytest.mark.parametrize("where", ["c.sqlite", "sub/c.sqlite"])
def test_a_dry_run_warns_of_a_checkpoint_the_run_could_not_write(
    where: str, read_only: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """It said nothing, and the run then stopped; reading needs no write access, so a warning."""
    monkeypatch.chdir(tmp_path)
    main = in_process_curator(monkeypatch)
    flags = ["run", "pipelines:ten", "--checkpoint", f"ro/{where}", "--reporter", "none"]
    assert main(flags) == 2
    assert "Read-only file system" in capsys.readouterr().err
    why = f"cannot write the checkpoint ro/{where}: the folder ro is not writable"
    assert main([*flags, "--dry-run"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"warning {why}, so the run would stop at once" in shown, shown
    assert main([*flags, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cannot_write"] == why
    assert main(["run", "pipelines:ten", "--checkpoint", "rw/sub/c.sqlite", "--dry-run",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["cannot_write"] is None
    assert not (tmp_path / "rw").exists()  # a dry run creates nothing


# -- 3. status: every checkpoint, TARGET, variants, tracebacks --------------------


def test_status_lists_every_checkpoint_with_what_tells_variants_apart(tmp_path: Path) -> None:
    curator("run", "pipelines:ten", cwd=tmp_path)
    curator("run", "pipelines:eleven", "--indices", "0:4", cwd=tmp_path)
    curator("run", "pipelines:fails_at_3", "--keep-going", cwd=tmp_path)
    rows = {row["variant"]: row for row in _status(tmp_path)}
    ten, eleven = "items=10, Numbers.count=10", "items=11, Numbers.count=11"
    assert set(rows) == {ten, eleven, "Numbers.count=10, FailAt.bad=[3], FailAt.seconds=0.0"}
    assert (rows[eleven]["done"], rows[eleven]["total"]) == (4, 11)
    assert rows[ten]["pipeline"] == rows[eleven]["pipeline"]
    assert all(row["state"] == "finished" for row in rows.values())
    failing = rows["Numbers.count=10, FailAt.bad=[3], FailAt.seconds=0.0"]
    assert (failing["done"], failing["failed"]) == (9, 1)
    human = curator("status", cwd=tmp_path)
    assert human.returncode == 0
    assert eleven in human.stdout
    assert "4/11" in human.stdout


def test_status_lists_parameters_by_stage_class_and_leaves_out_code(tmp_path: Path) -> None:
    curator("run", "pipelines:parametrized", cwd=tmp_path)
    data = _status(tmp_path, "pipelines:parametrized")
    assert data["parameters"] == {
        "items": "5",
        "Numbers.count": "5",
        "shifted.OFFSET": "1",  # module-level data the filter reads: a parameter
        "Scale.factor": "2",
        "Scale #2.factor": "3",
        "FailAt.bad": "[9]",
        "FailAt.seconds": "0.0",
        "FailAt.seen": "[]",
    }  # no json module, no empty defaults, no stage named by its position
    shown = curator("status", "pipelines:parametrized", cwd=tmp_path).stdout
    assert re.search(r"^  Scale #2\.factor +3$", shown, re.M), shown
    assert "json" not in shown
    assert "filter" not in shown


def test_status_takes_the_target_and_shows_full_tracebacks(tmp_path: Path) -> None:
    curator("run", "pipelines:fails_at_3", "--keep-going", cwd=tmp_path)
    data = _status(tmp_path, "pipelines:fails_at_3")
    assert data["counts"] == {"failed": 1, "ok": 9}
    assert data["settings"]["target"] == "pipelines:fails_at_3"
    assert data["settings"]["on_error"] == "continue"
    human = curator("status", "pipelines:fails_at_3", cwd=tmp_path).stdout
    assert "curator run pipelines:fails_at_3 --keep-going" in human
    assert "--failed (or --index N)" in human
    [failed] = _status(tmp_path, "pipelines:fails_at_3", "--failed")
    assert failed["index"] == 3
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert failed["traceback"].rstrip().endswith("ValueError: bad item 3")
    item = curator("status", "pipelines:fails_at_3", "--index", "3", cwd=tmp_path).stdout
    assert "Traceback (most recent call last)" in item
    assert 'raise ValueError(f"bad item {index}")' in item
    assert _status(tmp_path, "pipelines:fails_at_3", "--index", "4")["status"] == "ok"


def test_status_of_a_target_never_run_names_its_look_alikes(tmp_path: Path) -> None:
    curator("run", "pipelines:ten", cwd=tmp_path)
    proc = curator("status", "pipelines:eleven", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no checkpoint of pipelines:eleven at .curator/" in proc.stderr
    assert "items: 11 here, 10 there" in proc.stderr


def test_status_says_when_a_run_died_without_closing_its_checkpoint(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", "run", "pipelines:marked_slow", "-b", "thread-pool",
         "-j", "2"],
        cwd=tmp_path, env=subprocess_env(CURATOR_TEST_MARKERS=str(markers)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from curator.testing.waiting import wait_until

        wait_until(lambda: len(list(markers.iterdir())) >= 2, 30, "two items running")
        [row] = _status(tmp_path)
        assert row["state"] == "running"
    finally:
        proc.kill()
        proc.wait()
    [row] = _status(tmp_path)
    assert row["state"] == "died"


# -- 4. a parallel backend named without jobs is parallel ----------------------------


def test_a_parallel_backend_without_jobs_uses_every_cpu_it_may() -> None:
    result = run(pytest.importorskip("pipelines").who_runs, backend="thread-pool", reporter=None)
    assert result.run.jobs == cpu_count()
    assert all(output[1].startswith("curator-thread-") for output in result.outputs)  # type: ignore[index]
    in_process = run(pytest.importorskip("pipelines").who_runs, backend="thread-pool", jobs=1,
                     reporter=None)  # fmt: skip
    assert {output[1] for output in in_process.outputs} == {"MainThread"}  # type: ignore[index]


def test_the_cli_without_jobs_on_a_parallel_backend_uses_every_cpu(tmp_path: Path) -> None:
    proc = curator("run", "pipelines:ten", "-b", "thread-pool", "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)["jobs"] == cpu_count()
    sequential = curator("run", "pipelines:ten", "--json", "--no-checkpoint", cwd=tmp_path)
    assert json.loads(sequential.stdout)["jobs"] == 1


# -- 6. a closed pipe ends quietly ----------------------------------------------------


def _events_piped(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``curator ARGS`` with its stdout and stderr piped to the test."""
    return subprocess.Popen(
        [sys.executable, "-m", "curator", *args],
        cwd=cwd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_closed_pipe_ends_quietly_with_128_plus_sigpipe(tmp_path: Path, checkpoint: bool) -> None:
    args = ["run", "pipelines:many", "--reporter", "json"]
    proc = _events_piped(tmp_path, *args, *([] if checkpoint else ["--no-checkpoint"]))
    assert proc.stdout is not None
    assert proc.stderr is not None
    for _ in range(50 if checkpoint else 1):  # with a checkpoint: some items finished
        proc.stdout.readline()
    proc.stdout.close()  # what `| head` does once it has its lines
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err, err
    assert "internal error" not in err
    if checkpoint:  # it ended early on an error: status says so, not "finished"
        (listed,) = _status(tmp_path)
        assert listed["state"] == "stopped", listed
        assert listed["done"] < listed["total"]
        assert listed["last_run"]["stopped"] is True


def test_a_pipe_closed_after_the_first_event_stops_the_run_at_once(tmp_path: Path) -> None:
    """The events waited in the stream's buffer: the first reached the reader only at the
    run's end, and every item ran for a reader long gone (found by a review)."""
    proc = _events_piped(tmp_path, "run", "pipelines:busy", "--reporter", "json")
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert json.loads(proc.stdout.readline())["event"] == "run_start"
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141, err
    (listed,) = _status(tmp_path)
    assert listed["state"] == "stopped", listed
    assert listed["done"] < 12 / 2, listed  # items of 0.25 s: at most a few ran meanwhile


# -- 7. known plugins that are not there ----------------------------------------------


def test_a_known_plugin_backend_that_is_not_installed_gets_an_install_hint() -> None:
    from curator.model.errors import UnknownNameError
    from curator.testing.registries import isolated_registry

    with pytest.raises(UnknownNameError, match=r"pip install curator-backend-dask"):
        isolated_registry().backend("dask")


def test_no_plugins_is_named_and_accepted_after_the_subcommand(tmp_path: Path) -> None:
    proc = curator("backends", "show", "dask", "--no-plugins", cwd=tmp_path)
    assert proc.returncode == 2
    assert "backend 'dask' comes from the plugin curator-backend-dask, and plugins are off" \
        in proc.stderr  # fmt: skip
    proc = curator("run", "pipelines:ten", "-b", "process-poo", "--no-plugins", cwd=tmp_path)
    assert "(plugins are off: --no-plugins or CURATOR_NO_PLUGINS=1); did you mean " \
        "'process-pool'?" in proc.stderr  # fmt: skip


# -- 8. output shape ------------------------------------------------------------------


def test_tables_honour_columns_wrap_at_words_and_carry_no_trailing_blanks() -> None:
    listing = as_json(curator("backends", "list", "--json"))
    words = {w for row in listing for w in row["description"].split()}
    for columns in ("50", "80", "120"):
        out = curator("backends", "list", env=subprocess_env(COLUMNS=columns)).stdout
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= int(columns), out
        assert all(line == line.rstrip() for line in lines), out
        shown = {w for line in lines for w in line.split()}
        assert words <= shown, words - shown  # no word folded in two
    piped = curator("backends", "list", env={**subprocess_env(), "COLUMNS": ""}).stdout
    assert all(line == line.rstrip() for line in piped.splitlines())
    assert any(len(line) > 100 for line in piped.splitlines())  # not folded to 80


def test_option_defaults_in_json_are_json_values() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Options:
        start_method: str | None = option(None, help="")
        initargs: tuple[Any, ...] = option((), help="")
        mode: str = option("fork", help="")

    assert [info.value for info in describe_options(Options)] == [None, [], "fork"]
    assert [info.default for info in describe_options(Options)] == ["None", "()", "'fork'"]


# -- 9. wording -----------------------------------------------------------------------


def test_an_option_of_the_wrong_type_is_named_once() -> None:
    proc = curator("run", "pipelines:ten", "-b", "thread-pool", "-o", "copy_pipeline=maybe")
    assert proc.returncode == 2
    message = proc.stderr
    assert "must be bool, got 'maybe' (use true or false)" in message, message
    from curator.plugin_host.options import build_options

    @__import__("dataclasses").dataclass(frozen=True)
    class Options:
        chunksize: int | None = option(None, help="")

    with pytest.raises(UsageError) as caught:
        build_options(Options, {"chunksize": "abc"}, owner="backend 'x'")
    assert str(caught.value) == (
        "option 'chunksize' of backend 'x' must be int | None, got 'abc' (not an integer)"
    )


def test_negative_indices_have_one_phrasing(tmp_path: Path) -> None:
    messages = [
        curator("run", "pipelines:ten", spec, cwd=tmp_path).stderr
        for spec in ("--indices=-1", "--indices=-1:3", "--indices=2,-4")
    ]
    for message, part in zip(messages, ["'-1'", "'-1:3'", "'-4'"], strict=True):
        assert f"{part} is negative; indices count from 0 (there is no counting from the end)" \
            in message, message  # fmt: skip


def test_skipped_items_do_not_count_toward_items_per_second_and_status_agrees(
    tmp_path: Path,
) -> None:
    first = json.loads(curator("run", "pipelines:ten", "--json", cwd=tmp_path).stdout)
    assert first["items_per_second"] > 0
    data = _status(tmp_path, "pipelines:ten")
    assert data["last_run"]["items_per_second"] == first["items_per_second"]
    resumed = curator("run", "pipelines:ten", "--resume", "--json", cwd=tmp_path)
    summary = json.loads(resumed.stdout)
    assert (summary["skipped"], summary["items_per_second"]) == (10, 0.0)
    assert "0 ok, 10 skipped in" in resumed.stderr
    assert "(0.0 items/s" in resumed.stderr


def test_the_log_reporter_writes_statuses_as_words() -> None:
    import io

    from curator.model.outcome import ErrorInfo, Outcome, Status
    from curator.observing.reporters.log import LogOptions, LogReporter

    stream = io.StringIO()
    reporter = LogReporter(LogOptions(stream=stream))
    outcome = Outcome(0, Status.TIMED_OUT, None, ErrorInfo("Timeout", "ran past 5 s"),
                      "process-0", 0.0, 5.0, 1)  # fmt: skip
    reporter._failed(outcome)
    assert "item 0 timed out on process-0: Timeout: ran past 5 s" in stream.getvalue()


# -- 10. what was missing ---------------------------------------------------------------


def test_reporters_show_and_auto_in_the_listing() -> None:
    data = as_json(curator("reporters", "show", "json", "--json"))
    assert [o["name"] for o in data["options"]] == ["file", "stream"]
    assert data["options"][0]["default"] is None
    rows = {row["name"]: row for row in as_json(curator("reporters", "list", "--json"))}
    assert rows["auto"]["detail"] in ("here and now: log", "here and now: rich")
    human = curator("reporters", "show", "log").stdout
    assert "--reporter-option log.NAME=VALUE" in human
    assert curator("reporters", "show", "auto").returncode == 0
    assert "unknown reporter 'jsn'; did you mean 'json'?" in curator("reporters", "show",
                                                                    "jsn").stderr  # fmt: skip


def test_a_bare_curator_prints_the_help_and_a_tour() -> None:
    proc = curator()
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: curator")
    assert "a tour: curator backends list" in proc.stdout
    assert proc.stderr == ""


def test_no_wal_or_shm_files_remain_after_runs_and_status(tmp_path: Path) -> None:
    curator("run", "pipelines:fails_at_3", "--keep-going", cwd=tmp_path)
    _status(tmp_path)
    _status(tmp_path, "pipelines:fails_at_3", "--failed")
    curator("run", "pipelines:fails_at_3", "--resume", "--dry-run", cwd=tmp_path)
    names = sorted(p.name for p in (tmp_path / ".curator").iterdir())
    assert [n.rsplit(".", 1)[-1] for n in names] == ["sqlite", "lock"], names


def test_a_python_run_is_resumed_from_the_cli_with_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines

    monkeypatch.chdir(tmp_path)
    run(pipelines.ten, backend="thread-pool", jobs=2, indices=[0, 1, 2, 7],
        options={"copy_pipeline": False}, checkpoint=True, reporter=None)  # fmt: skip
    proc = curator("run", "pipelines:ten", "--resume", "--json", cwd=tmp_path)
    assert (
        "resuming with the last run's settings: -b thread-pool -j 2 --indices 0:3,7 "
        "-o copy_pipeline=false --reporter none\n" in proc.stderr
    ), proc.stderr
    assert json.loads(proc.stdout)["skipped"] == 4


def test_what_cannot_be_recorded_is_named() -> None:
    from curator.checkpoint.settings import MAX_RECORDED_SPEC, plain_options, record_indices

    assert plain_options({"n": 1, "names": ("a", "b"), "hook": print}) == (
        {"n": 1, "names": ["a", "b"]},
        ("-o hook",),
    )
    scattered = list(range(0, 4 * MAX_RECORDED_SPEC, 2))
    assert record_indices(scattered, 4 * MAX_RECORDED_SPEC) == (None, ("--indices",))
    assert record_indices([5, 6, 7, 9], 10) == ("5:8,9", ())


def test_recorded_settings_of_the_wrong_shape_are_dropped_not_trusted() -> None:
    from curator.checkpoint.settings import RunSettings

    read = RunSettings.from_json(
        {"backend": 3, "jobs": "2", "retries": True, "on_error": "explode", "timeout": 5,
         "reporter": ["log"], "options": {"a": "1"}, "unknown": 1}
    )  # fmt: skip
    assert read == RunSettings(timeout=5, reporter=("log",), options={"a": "1"})
    assert RunSettings.from_json("not a mapping") is None
    settings = RunSettings(target="t:p", backend="dask", jobs=-1, retries=2, timeout=1.5)
    assert RunSettings.from_json(settings.to_json()) == settings
    assert settings.flags() == ["-b", "dask", "-j", "-1", "--retries", "2", "--timeout", "1.5"]


def test_an_empty_file_is_a_new_checkpoint_and_readers_say_so(tmp_path: Path) -> None:
    """Found by a review: the docs said so, but `curator run` refused it as no checkpoint."""
    path = tmp_path / "made-by-mktemp.sqlite"
    path.touch()
    read = curator("status", str(path), cwd=tmp_path)
    assert read.returncode == 2, read.stderr
    said = f"no checkpoint at {path} (the file is empty: a run there starts a new"
    assert said in read.stderr
    with pytest.raises(UsageError) as refused:  # the public reading API (curator report's)
        read_checkpoint(path)
    assert said in str(refused.value)
    made = curator("run", "pipelines:ten", "--checkpoint", str(path), "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["ok"] == 10
    shown = as_json(curator("status", str(path), "--json", cwd=tmp_path))
    assert shown["counts"] == {"ok": 10}, shown


def test_a_resume_at_a_new_path_names_the_checkpoint_of_this_configuration(
    tmp_path: Path,
) -> None:
    first = curator("run", "pipelines:ten", "--checkpoint", "a.sqlite", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    other = curator("run", "pipelines:ten", "--checkpoint", "b.sqlite", "--resume", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert "nothing to resume: no checkpoint of this configuration at b.sqlite" in other.stderr
    assert "a.sqlite holds this configuration (10 of 10 done): to resume it, give " in (
        other.stderr
    )
    assert "with other parameters" not in other.stderr
    assert "resuming: items the checkpoint records" not in other.stderr
