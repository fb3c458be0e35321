from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from core_support import curator, registry_with, subprocess_env
from pipelines import FailAt, Flaky, Numbers, numbers

from curator import (
    Backend,
    Capabilities,
    Status,
    TaskFailedError,
    UsageError,
    Work,
    run,
)
from curator.checkpoint.catalog import read as report
from curator.checkpoint.fingerprint import fingerprint
from curator.model.outcome import Event
from curator.running.policy import Policy
from curator.testing.events import EventRecorder
from curator.testing.processes import read_until
from curator.testing.waiting import wait_until

BACKENDS = [("sequential", 1), ("thread-pool", 2)]


# -- failure budget and retries -------------------------------------------------------


@pytest.mark.parametrize(("backend", "jobs"), BACKENDS)
def test_max_failures_stops_at_the_nth_failure(backend: str, jobs: int) -> None:
    sink = FailAt({2, 5, 9, 20, 30}, seconds=0.01)
    with pytest.raises(TaskFailedError) as info:
        run(Numbers(60).write(sink), backend=backend, jobs=jobs, max_failures=3, reporter=None)
    result = info.value.result
    assert info.value.index == 9
    assert len(result.failures) == 3
    assert result.count(Status.CANCELLED) > 10


@pytest.mark.parametrize(("backend", "jobs"), BACKENDS)
def test_retries_until_success_and_every_attempt_is_reported(
    backend: str, jobs: int, tmp_path: Path
) -> None:
    log = EventRecorder()
    pipeline = Numbers(10).write(Flaky(str(tmp_path), {2, 7}, fail_times=2))
    result = run(pipeline, backend=backend, jobs=jobs, retries=2, reporter=log)
    assert result.ok
    assert result.outcomes[2].attempt == 3
    assert result.outcomes[3].attempt == 1
    assert sorted((o.index, o.attempt) for o in result.retried) == [(2, 1), (2, 2), (7, 1), (7, 2)]
    assert all(o.status is Status.FAILED for o in result.retried)
    finishes = Counter(log.indices("task_finish"))
    assert finishes[2] == finishes[7] == 3
    assert finishes[0] == 1
    assert result.summary()["retried"] == 4


def test_retries_exhausted_then_raise(tmp_path: Path) -> None:
    pipeline = Numbers(5).write(Flaky(str(tmp_path), {1}, fail_times=10))
    with pytest.raises(TaskFailedError) as info:
        run(pipeline, retries=2, reporter=None)
    assert info.value.outcome.attempt == 3
    assert "flaky item 1, try 3" in str(info.value)
    # The other items all ran in the first round: a retried failure stops the run only
    # once its retries are used up.
    assert [o.status for o in info.value.result.outcomes] == [Status.OK, Status.FAILED] + [
        Status.OK
    ] * 3


def test_retry_delay_and_backoff(tmp_path: Path) -> None:
    policy = Policy(retries=3, retry_delay=0.1, retry_backoff=3.0)
    assert [policy.delay_before(a) for a in (2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9])
    pipeline = Numbers(2).write(Flaky(str(tmp_path), {0}, fail_times=2))
    start = time.monotonic()
    result = run(pipeline, retries=2, retry_delay=0.1, retry_backoff=2.0, reporter=None)
    assert result.ok
    assert time.monotonic() - start >= 0.3  # 0.1 s, then 0.2 s


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries must be an integer >= 0"),
        ({"retries": 1.5}, "retries must be an integer >= 0"),
        ({"max_failures": 0}, "max_failures must be an integer >= 1"),
        ({"retry_backoff": 0.5}, "retry_backoff must be a finite number >= 1"),
        ({"retry_delay": -1}, "retry_delay must be a finite number >= 0"),
        ({"retry_delay": float("inf")}, "retry_delay must be a finite number >= 0"),
        ({"grace": float("nan")}, "grace must be a finite number >= 0"),
        ({"timeout": float("nan")}, "timeout must be a finite number >= 0"),
        ({"timeout": 0}, "timeout must be > 0 seconds"),
        ({"on_error": "ignore"}, "on_error must be 'raise' or 'continue'"),
    ],
)
def test_bad_policies_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(numbers(2), **kwargs)


@pytest.mark.parametrize(("backend", "jobs"), [*BACKENDS, ("thread-pool", 1)])
def test_a_timeout_the_backend_cannot_enforce_is_refused(backend: str, jobs: int) -> None:
    with pytest.raises(UsageError, match="cannot stop a running item, so timeout= cannot be"):
        run(numbers(2), backend=backend, jobs=jobs, timeout=1.0)


# -- checkpoint and resume --------------------------------------------------------------


class Recording(Backend):
    """Runs in-process and remembers which indices it was given."""

    name = "recording"
    capabilities = Capabilities(parallel=True)
    given: ClassVar[list[int]] = []

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        type(self).given += list(indices)
        for index in indices:
            yield work(index)


def test_resume_never_ships_done_items_and_keeps_their_outputs(tmp_path: Path) -> None:
    store = tmp_path / "cp.sqlite"
    registry = registry_with(Recording)
    Recording.given = []
    first = run(
        Numbers(50).write(FailAt({4, 40})),
        backend="recording",
        jobs=2,
        on_error="continue",
        checkpoint=store,
        registry=registry,
        reporter=None,
    )
    assert len(first.failures) == 2
    Recording.given = []
    second = run(
        Numbers(50).write(FailAt({40})),  # item 4 is fixed now; this pipeline differs...
        backend="recording",
        jobs=2,
        on_error="continue",
        checkpoint=tmp_path / "other.sqlite",
        registry=registry,
        reporter=None,
    )
    assert second.count(Status.SKIPPED) == 0  # ...so it has its own, empty checkpoint
    Recording.given = []
    resumed = run(
        Numbers(50).write(FailAt({4, 40})),
        backend="recording",
        jobs=2,
        on_error="continue",
        checkpoint=store,
        resume=True,
        registry=registry,
        reporter=None,
    )
    assert sorted(Recording.given) == [4, 40]  # only the failed ones were dispatched
    assert resumed.count(Status.SKIPPED) == 48
    assert resumed.outputs[7] == ["7"]  # outputs of skipped items come from the checkpoint
    assert resumed.outcomes[7].status is Status.SKIPPED


def test_a_checkpoint_of_another_pipeline_is_an_error(tmp_path: Path) -> None:
    store = tmp_path / "cp.sqlite"
    run(numbers(5), checkpoint=store, reporter=None)
    with pytest.raises(UsageError, match="belongs to another pipeline"):
        run(numbers(6), checkpoint=store, resume=True, reporter=None)


def test_default_checkpoint_is_per_pipeline_under_dot_curator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = run(numbers(5), checkpoint=True, reporter=None).checkpoint
    b = run(numbers(6), checkpoint=True, reporter=None).checkpoint
    assert a is not None
    assert b is not None
    assert a.parent == b.parent == Path(".curator")
    assert a != b
    assert a.name == fingerprint(numbers(5))[:16] + ".sqlite"
    # resume alone means the default checkpoint
    assert run(numbers(5), resume=True, reporter=None).count(Status.SKIPPED) == 5


def test_the_fingerprint_is_stable_across_processes_and_sensitive_to_configuration() -> None:
    code = "from pipelines import numbers; from curator.checkpoint.fingerprint import fingerprint; "
    code += "print(fingerprint(numbers(7)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert out.stdout.strip() == fingerprint(numbers(7))
    assert fingerprint(numbers(7)) != fingerprint(numbers(8))
    assert fingerprint(Numbers(7).write(FailAt({1}))) != fingerprint(Numbers(7).write(FailAt({2})))


def test_every_outcome_is_in_the_checkpoint_with_attempts(tmp_path: Path) -> None:
    store = tmp_path / "cp.sqlite"
    pipeline = Numbers(20).write(Flaky(str(tmp_path), {3}, fail_times=1))
    run(pipeline, backend="thread-pool", jobs=2, retries=1, checkpoint=store, reporter=None)
    data = report(store).to_json()
    assert data["counts"] == {"ok": 20}
    assert data["recorded"] == 20
    assert data["runs"] == 1
    assert data["last_run"]["ok"] == 20


# -- CLI: status, dry run ------------------------------------------------------------


def only_checkpoint(workdir: Path) -> Any:
    """``curator status --json`` of the one checkpoint ``curator status`` lists in ``workdir``."""
    listed = json.loads(curator("status", "--json", cwd=workdir).stdout)
    assert len(listed) == 1, listed
    return json.loads(curator("status", listed[0]["checkpoint"], "--json", cwd=workdir).stdout)


def test_status_and_dry_run_from_the_cli(tmp_path: Path) -> None:
    failed = curator("run", "pipelines:fails_at_3_and_7", "--keep-going", cwd=tmp_path)
    assert failed.returncode == 1
    assert "--resume" in failed.stderr
    status = only_checkpoint(tmp_path)
    assert status["counts"] == {"ok": 8, "failed": 2}
    assert [f["index"] for f in status["failures"]] == [3, 7]
    assert status["failures"][0]["message"] == "bad item 3"
    human = curator("status", status["checkpoint"], cwd=tmp_path)
    assert "ValueError: bad item 3" in human.stdout
    checkpoint = tmp_path / status["checkpoint"]
    runs_before, bytes_before = report(checkpoint).runs, checkpoint.read_bytes()
    plan = curator(
        "run", "pipelines:fails_at_3_and_7", "--resume", "--dry-run", "--json", cwd=tmp_path
    )
    planned = json.loads(plan.stdout)
    assert planned.pop("settings")["target"] == "pipelines:fails_at_3_and_7"
    assert planned | {"checkpoint": None} == {
        "checkpoint": None,
        "backend": "sequential",
        "jobs": 1,
        "requested": 10,
        "done": 8,
        "failed": 2,
        "interrupted": 0,
        "pending": 0,
        "to_run": 2,
        "failed_indices": [3, 7],
        "cannot_write": None,
    }
    # The dry run ran nothing and wrote nothing: no run record, the file unchanged.
    assert report(checkpoint).runs == runs_before
    assert checkpoint.read_bytes() == bytes_before
    nothing = curator("status", cwd=tmp_path / ".curator")
    assert nothing.returncode == 2
    assert "no checkpoint in .curator/" in nothing.stderr
    off = curator("run", "pipelines:ten", "--no-checkpoint", "--resume", cwd=tmp_path)
    assert off.returncode == 2


# -- interrupts and crashes of the parent -------------------------------------------------


def start(args: list[str], markers: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curator", "run", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=subprocess_env(CURATOR_TEST_MARKERS=str(markers)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_markers(markers: Path, count: int) -> None:
    wait_until(lambda: len(list(markers.iterdir())) >= count, 60, f"{count} items to finish")


def runs_per_index(markers: Path) -> Counter[int]:
    return Counter(int(p.name.split(".")[0]) for p in markers.iterdir())


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(("backend", "jobs"), BACKENDS)
def test_first_ctrl_c_lets_running_items_finish_and_resume_completes(
    backend: str, jobs: int, markers: Path, tmp_path: Path
) -> None:
    args = ["pipelines:marked", "-b", backend, "-j", str(jobs)]
    proc = start(args, markers, tmp_path)
    wait_for_markers(markers, 6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopping: no new items" in err
    assert "--resume" in err
    summary = json.loads(out)
    ran = runs_per_index(markers)
    # Everything that started finished and was recorded: nothing was lost.
    assert summary["ok"] == len(ran)
    assert summary["interrupted"] is True
    resumed = start([*args, "--resume"], markers, tmp_path)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert json.loads(out)["skipped"] == summary["ok"]
    assert runs_per_index(markers) == Counter(range(200))  # every item exactly once


def test_second_ctrl_c_stops_at_once(markers: Path, tmp_path: Path) -> None:
    proc = start(["pipelines:marked_slow", "-b", "thread-pool", "-j", "2"], markers, tmp_path)
    wait_for_markers(markers, 2)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    # Two signals sent close together can merge into one: wait until the first is seen.
    said = read_until(proc.stderr, "curator: stopping", 30)
    proc.send_signal(signal.SIGINT)
    # Items take 30 s each; the thread pool cannot kill them, but the process exits.
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        # Seen once in CI (py310): keep what the process said, and leave no process behind.
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running 20 s after the second Ctrl-C; it said: {said + err!r}")
    assert proc.returncode == 130, said + err
    assert json.loads(out)["ok"] == 0


@pytest.mark.parametrize(("sent", "code", "said"), [
    (signal.SIGINT, 130, "(Ctrl-C 2 more time(s) to abandon it)"),
    (signal.SIGTERM, 143, "(SIGTERM)"),
])  # fmt: skip
def test_a_stop_while_the_run_records_its_end_waits_for_it_then_stops(
    sent: int, code: int, said: str, markers: Path, tmp_path: Path
) -> None:
    # The stage merge runs in the run's finish, after the rounds' signal handlers are gone:
    # a Ctrl-C there once escaped as "curator: interrupted", without the summary. Then it
    # was dropped once the end was recorded: exit 0, and a script or a bench went on.
    proc = start(["pipelines:slow_merge", "-b", "thread-pool", "-j", "2"], markers, tmp_path)
    wait_until(lambda: (markers / "merging").exists(), 60, "the stage merge to begin")
    proc.send_signal(sent)
    out, err = proc.communicate(timeout=60)
    assert f"recording what finished before stopping {said}" in err
    assert proc.returncode == code, err
    assert "all 20 items are done and recorded in" in err
    assert "--resume" not in err
    summary = json.loads(out)
    assert (summary["ok"], summary["interrupted"]) == (20, False), summary
    status = curator("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    assert (row["state"], row["done"]) == ("finished", 20), row


def test_a_stop_while_a_failed_run_records_its_end_says_the_failure_too(
    markers: Path, tmp_path: Path
) -> None:
    """The stop wins (exit 130), and how the run had ended is still said."""
    args = ["pipelines:slow_merge_failing", "-b", "thread-pool", "-j", "2", "--no-keep-going"]
    proc = start(args, markers, tmp_path)
    wait_until(lambda: (markers / "merging").exists(), 60, "the stage merge to begin")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "ValueError: bad item 5" in err
    assert "--resume" in err  # items are left: the run stopped at the failure
    summary = json.loads(out)  # where it stopped, as a run stopped at a failure says it
    assert (summary["failed"], summary["stopped_at"]) == (1, 5)


def test_the_grace_flag_ends_a_graceful_stop_after_that_long(markers: Path, tmp_path: Path) -> None:
    args = ["pipelines:marked_slow", "-b", "thread-pool", "-j", "2", "--grace", "1"]
    proc = start(args, markers, tmp_path)
    wait_for_markers(markers, 2)
    proc.send_signal(signal.SIGINT)
    # Items take 30 s and the default grace is 30 s: only `--grace 1` ends this sooner.
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "waiting up to 1 s for running ones" in err
    assert "the grace period of 1 s is over; stopping running items" in err
    summary = json.loads(out)
    assert (summary["ok"], summary["interrupted"]) == (0, True), summary


def test_sigterm_stops_and_still_writes_the_checkpoint(markers: Path, tmp_path: Path) -> None:
    proc = start(["pipelines:marked", "-b", "thread-pool", "-j", "2"], markers, tmp_path)
    wait_for_markers(markers, 10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err
    summary = json.loads(out)
    status = only_checkpoint(tmp_path)
    assert status["counts"].get("ok", 0) == summary["ok"]
    assert status["last_run"]["interrupted"] is True


def test_sigkill_of_the_parent_then_resume_redoes_at_most_what_was_in_flight(
    markers: Path, tmp_path: Path
) -> None:
    args = ["pipelines:marked", "-b", "thread-pool", "-j", "2"]
    proc = start(args, markers, tmp_path)
    wait_for_markers(markers, 60)
    proc.kill()
    proc.communicate(timeout=30)
    before = runs_per_index(markers)
    status = only_checkpoint(tmp_path)
    recorded_ok = status["counts"].get("ok", 0)
    # Never reported done without having run; at most ~0.2 s of outcomes unrecorded.
    assert recorded_ok <= len(before)
    assert len(before) - recorded_ok <= 2 + 10
    resumed = start([*args, "--resume"], markers, tmp_path)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert json.loads(out)["skipped"] == recorded_ok
    after = runs_per_index(markers)
    assert set(after) == set(range(200))
    twice = [i for i, n in after.items() if n > 1]
    assert len(twice) <= len(before) - recorded_ok
    assert all(n <= 2 for n in after.values())
    os.sync()
