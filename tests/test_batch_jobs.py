"""The batch-job machinery (curator.backends.batch), through the worked local-jobs backend.

The conformance kit runs against local-jobs in the tox env ``local-jobs``; these
tests hold what only a batch system does to a job: a job signalled or killed
from outside while it runs, a job that leaves and comes back (preemption), a
job that runs again for the same task, a torn records file.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from curator import Registry, RunResult, Status, Work, run
from curator.backends.batch import records
from curator.backends.batch.folder import RoundFolder, Settings
from curator.backends.batch.records import Kind
from curator.testing.probes import executions, probe, started
from curator.testing.registries import isolated_registry

EXAMPLE = Path(__file__).parent.parent / "examples/local-jobs-backend/src"
sys.path.insert(0, str(EXAMPLE))

from curator_backend_local_jobs import hooks  # noqa: E402
from curator_backend_local_jobs.backend import LocalJobsBackend  # noqa: E402


class Preemptible(LocalJobsBackend):
    """local-jobs whose jobs take SIGUSR2 as "leave now, you will run again"."""

    name = "preemptible-jobs"
    leave_signal = signal.SIGUSR2


class _Plugin:
    from curator import hookimpl

    @hookimpl
    def curator_register_backends(self) -> list[Any]:
        return [Preemptible]


@pytest.fixture
def jobs_registry() -> Registry:
    return isolated_registry(("local-jobs", hooks), ("preemptible", _Plugin()))


def _in_background(**kwargs: Any) -> tuple[threading.Thread, dict[str, RunResult]]:
    box: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run(**kwargs)))
    thread.start()
    return thread, box


def _wait(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        time.sleep(0.02)


def _job_pid(job_folder: Path, task: str = "0") -> int:
    """The supervisor's pid, from the HELLO record of the first round's task."""
    (round_folder,) = job_folder.glob("run-*/round-1")
    found = records.Reader(str(round_folder / "records" / f"{task}.rec")).read()
    hello = next(r for r in found if r.kind is Kind.HELLO)
    return int(hello.body[0])


def test_a_thousand_items_run_exactly_once_in_order(
    jobs_registry: Registry, tmp_path: Path
) -> None:
    result = run(
        probe(1000, tmp_path), backend="local-jobs", jobs=2, registry=jobs_registry,
        reporter=None,
    )  # fmt: skip
    assert result.ok
    assert [o.index for o in result.outcomes] == list(range(1000))
    assert sorted(e.index for e in executions(tmp_path)) == list(range(1000))
    assert {o.worker for o in result.outcomes} == {f"job-{n}" for n in range(8)}  # 4 per job


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_job_ended_from_outside_costs_only_the_item_it_was_running(
    jobs_registry: Registry, tmp_path: Path, how: str
) -> None:
    """SIGTERM: what scancel and a time limit send first. SIGKILL of the whole job: what
    follows, or the OOM killer, with no word from the job: the item it said it ran."""
    folder, job_folder = tmp_path / "probe", tmp_path / "jobs"
    folder.mkdir()
    thread, box = _in_background(
        pipeline=probe(10, folder, hang=frozenset({3})), backend="local-jobs", jobs=1,
        options={"job_folder": str(job_folder), "items_per_task": 10}, on_error="continue",
        registry=jobs_registry, reporter=None,
    )  # fmt: skip
    _wait(lambda: 3 in started(folder), "item 3 to start")
    time.sleep(0.2)  # the job has said it runs item 3 (it says so every 50 ms)
    pid = _job_pid(job_folder)
    if how == "SIGTERM":
        os.kill(pid, signal.SIGTERM)
    else:
        os.killpg(pid, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    result = box["result"]
    crashed = [o for o in result.outcomes if not o.ok]
    assert [(o.index, o.status) for o in crashed] == [(3, Status.CRASHED)]
    assert crashed[0].error is not None
    if how == "SIGTERM":
        assert "was ended by SIGTERM" in crashed[0].error.message
    else:
        assert "without a word from it" in crashed[0].error.message
    done = sorted(e.index for e in executions(folder))
    assert done == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # the rest of the task ran again, once
    assert {o.worker for o in result.outcomes if o.index > 3} == {"job-1"}


def test_a_preempted_job_leaves_without_blame_and_its_rest_runs_again(
    jobs_registry: Registry, tmp_path: Path
) -> None:
    folder, job_folder = tmp_path / "probe", tmp_path / "jobs"
    folder.mkdir()
    thread, box = _in_background(
        pipeline=probe(6, folder, sleep=0.3), backend="preemptible-jobs", jobs=1,
        options={"job_folder": str(job_folder), "items_per_task": 6}, registry=jobs_registry,
        reporter=None,
    )  # fmt: skip
    _wait(lambda: 2 in started(folder), "item 2 to start")
    os.kill(_job_pid(job_folder), signal.SIGUSR2)
    thread.join(60)
    result = box["result"]
    assert result.ok, [o.error for o in result.outcomes if not o.ok]
    assert sorted(e.index for e in executions(folder)) == list(range(6))
    assert started(folder).count(2) == 2  # interrupted, then run again


def _round(tmp_path: Path, work: Work) -> RoundFolder:
    settings = Settings("test", 1, path=list(sys.path), cwd=os.getcwd())
    return RoundFolder.create(str(tmp_path / "round"), pickle.dumps(work), settings)


def _job(folder: RoundFolder, task: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        folder.command(task), capture_output=True, text=True, timeout=120, check=False
    )


def test_a_job_run_again_for_its_task_runs_only_what_is_not_recorded(tmp_path: Path) -> None:
    probes = tmp_path / "probe"
    probes.mkdir()
    folder = _round(tmp_path, Work(probe(6, probes, crash=frozenset({3}))))
    folder.write_task("0", [0, 1, 2, 3, 4, 5], 0)
    first = _job(folder, "0")
    assert first.returncode == 0, first.stderr
    path = folder.records_path("0")
    data = Path(path).read_bytes()
    found, used = records.parse(data)
    assert used == len(data)
    kinds = [r.kind for r in found]
    assert kinds[0] is Kind.HELLO
    assert kinds[-1] is Kind.END
    crash = next(r for r in found if r.kind is Kind.CRASH)
    assert crash.body[0] == 3  # the item ...
    assert crash.body[2] == 7  # ... and its worker's exit code
    # As if the job had been killed after the crash: the rest unrecorded, a torn last frame.
    at = 0
    for record in found:
        at += len(records.frame(record.kind, pickle.dumps(record.body, protocol=5)))
        if record.kind is Kind.CRASH:
            break
    torn = records.frame(Kind.ROWS, b"x" * 100)[:40]
    Path(path).write_bytes(data[:at] + torn)
    kept, _ = records.parse(data[:at])
    recorded = {i for r in kept if r.kind is Kind.ROWS and r.body[0] for i in r.body[0]}
    before = executions(probes)
    second = _job(folder, "0")
    assert second.returncode == 0, second.stderr
    after = Path(path).read_bytes()
    again, used = records.parse(after)
    assert used == len(after)  # the torn frame was cut off
    rows = [i for r in again if r.kind is Kind.ROWS and r.body[0] for i in r.body[0]]
    assert sorted(rows) == [0, 1, 2, 4, 5]  # each once: the crashed item is not run again
    assert again[-1].kind is Kind.END
    ran = sorted(e.index for e in executions(probes) if e not in before)
    assert ran == sorted({0, 1, 2, 4, 5} - recorded)


def test_records_stop_at_a_torn_or_damaged_frame_and_pass_over_an_unloadable_one() -> None:
    one = records.frame(Kind.HELLO, pickle.dumps((1, "host", 0.0)))
    two = records.frame(Kind.END, pickle.dumps((None, False, None)))
    assert records.parse(one + two[:-1]) == ([records.Record(Kind.HELLO, (1, "host", 0.0))],
                                             len(one))  # fmt: skip
    damaged = bytearray(two)
    damaged[-1] ^= 0xFF
    assert records.parse(one + bytes(damaged))[1] == len(one)
    unloadable = records.frame(Kind.ROWS, b"\x80\x05not a pickle")
    found, used = records.parse(one + unloadable + two)
    assert [r.kind for r in found] == [Kind.HELLO, Kind.END]
    assert used == len(one + unloadable + two)


def test_the_job_command_says_how_to_call_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "curator.backends.batch"], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "usage: python -m curator.backends.batch ROUND_FOLDER TASK" in done.stderr


class _EndsItsJob:
    """A sink that, at the given items, sends SIGTERM to its job (as scancel would)."""

    def __init__(self, at: frozenset[int]) -> None:
        self.at = at

    def __call__(self, items: Any, index: int) -> list[str]:
        for _ in items:
            if index in self.at:
                os.kill(os.getppid(), signal.SIGTERM)  # the job's supervisor
                time.sleep(30)
        return []


def test_jobs_ended_one_after_another_blame_only_the_items_they_ran(
    jobs_registry: Registry,
) -> None:
    from curator import Pipeline
    from curator.testing.probes import Numbers

    pipeline = Pipeline(Numbers(10)).write(_EndsItsJob(frozenset({1, 4, 7})))
    result = run(
        pipeline, backend="local-jobs", jobs=1, options={"items_per_task": 10},
        on_error="continue", registry=jobs_registry, reporter=None,
    )  # fmt: skip
    failed = sorted((o.index, o.status) for o in result.outcomes if not o.ok)
    assert failed == [(1, Status.CRASHED), (4, Status.CRASHED), (7, Status.CRASHED)]


class _KillsItsWorkerInSetup:
    def setup(self, worker: Any) -> None:
        os._exit(3)

    def __call__(self, items: Any, index: int) -> list[str]:
        return []


class _Unloadable:
    """Pickles fine; loading it fails (where the run is as in the job)."""

    def __reduce__(self) -> Any:
        return (_refuse, ())


def _refuse() -> None:
    raise ImportError("no module named 'only_on_the_nodes'")


class _ReturnsUnloadable:
    def __call__(self, items: Any, index: int) -> Any:
        for _ in items:
            pass
        return _Unloadable() if index == 1 else []


def test_a_task_that_cannot_go_on_ends_the_run_with_a_clear_error(
    jobs_registry: Registry,
) -> None:
    from curator import Pipeline, UsageError
    from curator.testing.probes import Numbers

    with pytest.raises(UsageError, match="exited with code 3 in setup"):
        run(
            Pipeline(Numbers(4)).write(_KillsItsWorkerInSetup()), backend="local-jobs", jobs=1,
            options={"items_per_task": 4}, registry=jobs_registry, reporter=None,
        )  # fmt: skip


def test_results_this_process_cannot_load_fail_their_items_and_the_run_goes_on(
    jobs_registry: Registry,
) -> None:
    """It ended the whole run (a usage error), losing what every other job finished."""
    from curator import ErrorKind, Pipeline
    from curator.testing.probes import Numbers

    result = run(
        Pipeline(Numbers(12)).write(_ReturnsUnloadable()), backend="local-jobs", jobs=2,
        options={"items_per_task": 4}, registry=jobs_registry, reporter=None,
        on_error="continue",
    )  # fmt: skip
    failed = [o for o in result.outcomes if not o.ok]
    assert 1 in {o.index for o in failed}
    assert set(range(4, 12)) <= {o.index for o in result.outcomes if o.ok}  # other tasks'
    for outcome in failed:
        assert outcome.index < 4  # only what came back with the unloadable value
        assert outcome.error is not None
        assert outcome.error.type == ErrorKind.UNPICKLABLE_RESULT.value
        assert "cannot load what job job-0 sent back" in outcome.error.message
        assert "only_on_the_nodes" in outcome.error.message


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "echo 'No module named curator' >&2\nexit 1\n",
            r"ended before it started its task: can its Python (.|\n)*No module named curator",
        ),
        # Not a word: the node failed, or it could not reach the job folder.
        ("exit 1\n", r"ended before it started its task: it left no output: can the nodes"),
    ],
    ids=["says-why", "silent"],
)
def test_a_job_whose_python_cannot_start_its_task_is_a_clear_error(
    jobs_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    message: str,
) -> None:
    from curator import UsageError

    monkeypatch.setattr("curator.backends.batch.folder.sys.executable", str(tmp_path / "no-python"))
    broken = tmp_path / "no-python"
    broken.write_text("#!/bin/sh\n" + script)
    broken.chmod(0o755)
    with pytest.raises(UsageError, match=message):
        run(probe(4, tmp_path), backend="local-jobs", jobs=2, registry=jobs_registry,
            reporter=None)  # fmt: skip


KILLED_PARENT = """
import sys
sys.path.insert(0, {example!r})
from curator import run
from curator.testing.probes import probe
from curator.testing.registries import isolated_registry
from curator_backend_local_jobs import hooks
run(probe(16, {probes!r}, sleep=0.25), backend="local-jobs", jobs=2, checkpoint={checkpoint!r},
    options={{"job_folder": {jobs!r}, "items_per_task": 4}},
    registry=isolated_registry(("local-jobs", hooks)), reporter=None)
"""


def _killed_run(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A checkpointed local-jobs run whose process was SIGKILLed once three items finished.

    Its jobs run on. Returns the probe folder, the job folder and the checkpoint.
    """
    probes, job_folder, checkpoint = tmp_path / "probe", tmp_path / "jobs", tmp_path / "c.sqlite"
    probes.mkdir()
    script = KILLED_PARENT.format(
        example=str(EXAMPLE), probes=str(probes), jobs=str(job_folder), checkpoint=str(checkpoint)
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait(lambda: len(executions(probes)) >= 3, "three items to finish")
    finally:  # killed on a failed wait too: a live child would fail a later test's teardown
        parent.kill()
        parent.wait()
    return probes, job_folder, checkpoint


def test_a_resumed_run_adopts_what_the_jobs_of_a_killed_run_did(
    jobs_registry: Registry, tmp_path: Path
) -> None:
    """The run's process SIGKILLed: its jobs run on; --resume takes what they did, runs the
    rest, and no item is lost or run twice."""
    probes, job_folder, checkpoint = _killed_run(tmp_path)
    at_kill = len(executions(probes))
    _wait(lambda: len(executions(probes)) > at_kill + 1, "the jobs to go on without their run")
    assert _jobs_outside(checkpoint, jobs_registry)["finished"] >= 2
    result = run(
        probe(16, probes, sleep=0.25), backend="local-jobs", jobs=2, checkpoint=checkpoint,
        resume=True, options={"job_folder": str(job_folder), "items_per_task": 4},
        registry=jobs_registry, reporter=None,
    )  # fmt: skip
    assert result.ok
    assert sorted(e.index for e in executions(probes)) == list(range(16))
    assert sorted(o.index for o in result.outcomes) == list(range(16))
    (old,) = [p for p in job_folder.glob("run-*/round-1") if (p / "adopted").exists()]
    assert (old / "stop").exists()  # its jobs were asked to stop after their running item
    assert _jobs_outside(checkpoint, jobs_registry) == {
        "folder": str(job_folder), "rounds": 0, "finished": 0,
    }  # fmt: skip


def test_a_run_that_starts_over_stops_a_killed_runs_jobs_and_adopts_nothing(
    jobs_registry: Registry, tmp_path: Path
) -> None:
    """Without --resume the run does every item again, as its notice says: it took over
    what the killed run's jobs did, as a resume does."""
    probes, job_folder, checkpoint = _killed_run(tmp_path)
    result = run(
        probe(16, probes, sleep=0.25), backend="local-jobs", jobs=2, checkpoint=checkpoint,
        options={"job_folder": str(job_folder), "items_per_task": 4}, registry=jobs_registry,
        reporter=None,
    )  # fmt: skip
    assert result.ok
    assert result.count(Status.OK) == 16  # every item ran in this run, none adopted
    runs: dict[int, int] = {}
    for execution in executions(probes):
        runs[execution.index] = runs.get(execution.index, 0) + 1
    assert sorted(runs) == list(range(16))
    assert sum(runs.values()) >= 16 + 3  # what the killed run's jobs did, done again
    (old,) = [p for p in job_folder.glob("run-*/round-1") if (p / "stop").exists()]
    assert (old / "adopted").exists()  # settled: a later resume does not adopt it
    assert _jobs_outside(checkpoint, jobs_registry)["rounds"] == 0


def test_a_resume_on_another_backend_says_the_killed_runs_jobs_may_still_run(
    jobs_registry: Registry, tmp_path: Path
) -> None:
    """It neither stops nor adopts them: their items could run twice at once, unsaid."""
    from curator.cli.remembered import jobs_left_running, stored_settings

    probes, job_folder, checkpoint = _killed_run(tmp_path)
    stored = stored_settings(checkpoint)[0]
    (said,) = jobs_left_running(jobs_registry, checkpoint, stored, "sequential")
    assert "jobs of an earlier local-jobs run of this checkpoint may still be running" in said
    assert f"in {job_folder}" in said
    assert "resume with --backend local-jobs" in said
    assert jobs_left_running(jobs_registry, checkpoint, stored, "local-jobs") == []
    resumed = run(  # what the advice says: their jobs stop, what they did is adopted
        probe(16, probes, sleep=0.25), backend="local-jobs", jobs=2, checkpoint=checkpoint,
        resume=True, options={"job_folder": str(job_folder), "items_per_task": 4},
        registry=jobs_registry, reporter=None,
    )  # fmt: skip
    assert resumed.ok
    after = stored_settings(checkpoint)[0]
    assert jobs_left_running(jobs_registry, checkpoint, after, "sequential") == []


def _jobs_outside(checkpoint: Path, registry: Registry) -> Any:
    """What ``curator status CHECKPOINT --json`` says the jobs did outside the checkpoint."""
    import argparse
    import contextlib
    import io
    import json

    from curator.cli.status_views import show_status

    shown = io.StringIO()
    args = argparse.Namespace(what=str(checkpoint), index=None, failed=False, json=True)
    with contextlib.redirect_stdout(shown):
        show_status(args, registry)
    return json.loads(shown.getvalue())["jobs_outside"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # A hot loop that grew without bound and ignored Ctrl-C, before.
        ({"items_per_task": 0}, "items_per_task must be 1 or more, not 0"),
        ({"items_per_task": -3}, "items_per_task must be 1 or more, not -3"),
        ({"job_folder": " "}, "job_folder is empty"),
    ],
)
def test_bad_batch_options_are_refused_before_anything_runs(
    tmp_path: Path, jobs_registry: Registry, options: dict[str, Any], message: str
) -> None:
    from curator import UsageError

    with pytest.raises(UsageError, match=message):
        run(probe(4, tmp_path), backend="local-jobs", jobs=2, options=options,
            registry=jobs_registry, reporter=None)  # fmt: skip
    assert not started(tmp_path)


def test_a_job_folder_that_cannot_be_made_is_a_usage_error(
    tmp_path: Path, jobs_registry: Registry
) -> None:
    """It was an OSError traceback ("internal error", exit 3 in the CLI)."""
    from curator import UsageError

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(
        UsageError, match=r"cannot make the local-jobs jobs' folder in .*a-file/jobs"
    ):
        run(probe(4, tmp_path), backend="local-jobs", jobs=2, registry=jobs_registry,
            options={"job_folder": str(blocked / "jobs")}, reporter=None)  # fmt: skip
    assert not started(tmp_path)


def test_a_hard_stop_reads_what_the_jobs_finished_since_the_last_look(
    tmp_path: Path, jobs_registry: Registry
) -> None:
    """A hard stop lands while the run's loop is not reading (a stream's consumer holds an
    outcome; on Slurm, squeue not answering): the job went on finishing items. They must
    be read before the round closes: they were lost, and a resume ran them again."""
    from curator import stream

    folder = tmp_path / "probe"
    folder.mkdir()
    checkpoint = tmp_path / "run.sqlite"
    with stream(
        probe(16, folder, sleep=0.2), backend="local-jobs", jobs=1, registry=jobs_registry,
        options={"items_per_task": 16}, checkpoint=checkpoint, reporter=None,
    ) as outcomes:  # fmt: skip
        next(iter(outcomes))
        time.sleep(1.5)  # the job finishes more items meanwhile
    finished = {execution.index for execution in executions(folder)}
    assert len(finished) >= 3
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == len(finished)
    resumed = run(probe(16, folder, sleep=0.2), backend="thread-pool", jobs=4,
                  checkpoint=checkpoint, resume=True, reporter=None)  # fmt: skip
    assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == finished


def test_a_round_of_many_tasks_queues_them_cheaply_and_writes_none_before_it_submits(
    tmp_path: Path,
) -> None:
    """A million one-item tasks (items_per_task=1) queued a Task each: 770 bytes, 950 MB in all."""
    import tracemalloc

    from curator.backends.batch.tasks import Round
    from curator.backends.dispatch import Todo

    folder = _round(tmp_path, Work(probe(1, tmp_path)))
    count = 50_000
    tracemalloc.start()
    try:
        queue = Round(LocalJobsBackend(LocalJobsBackend.Options(), 2), folder, 1)
        todo = Todo(range(count))
        while todo:
            queue.add_task(todo.take(1))
        queued, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert queue.tasks == count
    assert queued / count < 300, f"{queued / count:.0f} bytes per queued task"
    assert not any((Path(folder.path) / "tasks").iterdir()), "a queued task wrote its file"


def test_a_hard_stop_reports_the_items_the_jobs_were_running_interrupted(
    tmp_path: Path, jobs_registry: Registry
) -> None:
    """With nobody listening to starts (no reporter), the core cannot tell running items
    from those never started: they read cancelled. The jobs' records say which ran."""
    from curator import RunInterrupted

    folder = tmp_path / "probe"
    folder.mkdir()

    def stop_once_two_run() -> None:
        _wait(lambda: len(started(folder)) >= 2, "two items to start")
        time.sleep(0.5)  # their jobs' records say so
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_once_two_run)
    stopper.start()
    try:
        with pytest.raises(RunInterrupted) as info:
            run(
                probe(8, folder, sleep=60), backend="local-jobs", jobs=2, registry=jobs_registry,
                options={"items_per_task": 1}, reporter=None,
            )  # fmt: skip
    finally:
        stopper.join()
    outcomes = info.value.result.outcomes
    running = set(started(folder))
    assert len(running) == 2
    assert {outcomes[i].status for i in running} == {Status.INTERRUPTED}
    assert {o.status for o in outcomes if o.index not in running} == {Status.CANCELLED}
