"""The slurm backend on a real one-node Slurm: arrays, scancel, time limits, requeue, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from curator_backend_slurm.backend import SlurmBackend, SlurmOptions

from curator import RunResult, Status, UsageError, run
from curator.testing.probes import executions, probe, started


def _squeue(*fields: str) -> list[list[str]]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", " ".join(fields)], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    return [line.split() for line in out.splitlines()]


def _job_ids() -> set[str]:
    """The jobs in the queue now (an earlier test's may still be leaving it)."""
    return {job for (job,) in _squeue("%i")}


def _wait(condition: Any, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        time.sleep(0.1)


def _in_background(**kwargs: Any) -> tuple[threading.Thread, dict[str, RunResult]]:
    box: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run(**kwargs)))
    thread.start()
    return thread, box


def _running_job() -> str:
    """The id of the one array task that runs now."""
    running: list[str] = []

    def one() -> bool:
        running[:] = [job for job, state in _squeue("%i", "%T") if state == "RUNNING"]
        return len(running) == 1

    _wait(one, "exactly one running array task")
    return running[0]


def _release_requeued() -> None:
    """Start requeued tasks now: Slurm holds a requeued job back for two minutes."""
    for job, state, reason in _squeue("%i", "%T", "%r"):
        if state == "PENDING" and reason == "BeginTime":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)


def test_a_thousand_items_go_through_arrays_split_below_max_array_size(tmp_path: Path) -> None:
    result = run(
        probe(1000, tmp_path), backend="slurm", jobs=2, reporter=None,
        options={"items_per_task": 25, "max_array_size": 16},
    )  # fmt: skip
    assert result.ok
    assert [o.index for o in result.outcomes] == list(range(1000))
    assert sorted(e.index for e in executions(tmp_path)) == list(range(1000))
    # 40 tasks in arrays of at most 16: three arrays, each task in one of them
    logs = list(Path("curator-jobs").glob("run-*/round-1/slurm/*_submitted.pkl"))
    arrays = {path.name.split("_")[0] for path in logs}
    assert len(logs) == 40
    assert len(arrays) == 3


def test_scancel_of_a_task_costs_only_the_item_it_was_running(tmp_path: Path) -> None:
    thread, box = _in_background(
        pipeline=probe(10, tmp_path, hang=frozenset({3})), backend="slurm", jobs=1,
        options={"items_per_task": 10}, on_error="continue", reporter=None,
    )  # fmt: skip
    _wait(lambda: 3 in started(tmp_path), "item 3 to start")
    time.sleep(0.5)
    subprocess.run(["scancel", _running_job()], check=True)
    thread.join(120)
    assert not thread.is_alive()
    result = box["result"]
    failed = [o for o in result.outcomes if not o.ok]
    assert [(o.index, o.status) for o in failed] == [(3, Status.CRASHED)]
    assert failed[0].error is not None
    assert "was ended by SIGTERM" in failed[0].error.message
    assert sorted(e.index for e in executions(tmp_path)) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_a_requeued_task_runs_only_its_unfinished_items(tmp_path: Path) -> None:
    """USR2 (what --signal sends before the time limit, or a preemption): the task leaves,
    requeues itself, and runs on where it stopped; its running item is blamed for nothing."""
    thread, box = _in_background(
        pipeline=probe(8, tmp_path, sleep=0.4), backend="slurm", jobs=1,
        options={"items_per_task": 8}, reporter=None,
    )  # fmt: skip
    _wait(lambda: 2 in started(tmp_path), "item 2 to start")
    job = _running_job()
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _wait(lambda: [job, "PENDING"] in _squeue("%i", "%T"), "the task to be requeued")
    _release_requeued()
    thread.join(120)
    assert not thread.is_alive()
    result = box["result"]
    assert result.ok, [o.error for o in result.outcomes if not o.ok]
    assert sorted(e.index for e in executions(tmp_path)) == list(range(8))
    assert len(started(tmp_path)) == 9  # the item running when it left started twice


def test_an_item_past_its_jobs_time_limit_twice_times_out_and_the_rest_runs(
    tmp_path: Path,
) -> None:
    """A one-minute job, told to leave 45 s before its limit: the hung item is running
    both times its task leaves, so the task's third run gives it up and runs the rest."""
    thread, box = _in_background(
        pipeline=probe(4, tmp_path, hang=frozenset({1})), backend="slurm", jobs=1,
        options={"items_per_task": 4, "time_limit": 1, "signal_before_limit": 45},
        on_error="continue", reporter=None,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while thread.is_alive() and time.monotonic() < deadline:
        _release_requeued()
        thread.join(1)
    assert not thread.is_alive()
    result = box["result"]
    failed = [o for o in result.outcomes if not o.ok]
    assert [(o.index, o.status) for o in failed] == [(1, Status.TIMED_OUT)]
    assert failed[0].error is not None
    assert "each of the 2 times its job was told to leave" in failed[0].error.message
    assert sorted(e.index for e in executions(tmp_path)) == [0, 2, 3]


def test_an_unknown_partition_is_refused_before_anything_is_submitted(tmp_path: Path) -> None:
    before = _job_ids()
    with pytest.raises(
        UsageError, match=r"Slurm has no partition 'nope'; this cluster has: debug, short"
    ):
        run(probe(3, tmp_path), backend="slurm", jobs=2, options={"partition": "nope"},
            reporter=None)  # fmt: skip
    assert _job_ids() <= before, "a job was submitted"
    assert not list(Path(".").glob("curator-jobs/run-*/round-*/slurm/*_submitted.pkl"))
    cli = subprocess.run(
        [sys.executable, "-m", "curator", "run", "curator.examples.snapshots:pipeline",
         "--backend", "slurm", "--jobs", "2", "-o", "partition=nope", "--no-checkpoint"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert "Slurm has no partition 'nope'" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_a_bench_leaves_nothing_where_it_ran(tmp_path: Path) -> None:
    """Its jobs' folder was curator-jobs/ in the working directory, kept after every bench."""
    bench = subprocess.run(
        [sys.executable, "-m", "curator", "bench", "curator.examples.snapshots:pipeline",
         "-b", "slurm", "-j", "1", "--sample", "2", "--json"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["recommended"]["backend"] == "slurm"
    assert list(tmp_path.iterdir()) == []


def test_options_reach_the_sbatch_script(tmp_path: Path) -> None:
    options = SlurmOptions(
        partition="debug", time_limit=30, cpus_per_task=4, mem="8G", gpus_per_task=1,
        account="physics", qos="high", sbatch=("--constraint=a100", "--exclusive"),
        setup=("module load cuda/12", "source ~/venv/bin/activate"), signal_before_limit=120,
    )  # fmt: skip
    script = SlurmBackend(options, jobs=3).script(10)
    for line in (
        "#SBATCH --array=0-9%3", "#SBATCH --partition=debug", "#SBATCH --time=30",
        "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --gpus-per-task=1",
        "#SBATCH --account=physics", "#SBATCH --qos=high", "#SBATCH --constraint=a100",
        "#SBATCH --exclusive", "#SBATCH --signal=USR2@120", "#SBATCH --requeue",
        "module load cuda/12", "source ~/venv/bin/activate",
    ):  # fmt: skip
        assert line in script.splitlines(), f"{line!r} not in\n{script}"
    assert script.index("module load cuda/12") < script.index("submitit.core._submit")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sbatch": ("--array=0-3",)}, "the backend makes the array itself"),
        ({"sbatch": ("constraint=a100",)}, "long options such as"),
        # The user's entries silently fought the backend's own (found by a hostile user).
        ({"sbatch": ("--job-name=mine",)}, "is one the backend sets itself: its jobs are named"),
        ({"sbatch": ("--no-requeue",)}, "it requeues its jobs itself"),
        ({"sbatch": ("--time=10",)}, "give time_limit"),
        ({"mem": "lots"}, "mem is sbatch --mem: a number of megabytes"),
        ({"cpus_per_task": 0}, "cpus_per_task must be 1 or more"),
        # A hot loop that grew without bound and ignored Ctrl-C, before.
        ({"items_per_task": 0}, "items_per_task must be 1 or more, not 0"),
        ({"signal_before_limit": -5}, "signal_before_limit must be 0 or more seconds"),
        # Every job was told to leave as it started: its items all timed out.
        (
            {"partition": "short", "signal_before_limit": 90},
            r"signal_before_limit=90 s is not below the jobs' time limit \(1 min\)",
        ),
    ],
)
def test_bad_options_are_clear_errors(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        run(probe(2, tmp_path), backend="slurm", jobs=2, options=options, reporter=None)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("partition=nope", "Slurm has no partition 'nope'; this cluster has: debug, short"),
        (
            "max_array_size=5000",
            r"max_array_size=5000 is above this cluster's MaxArraySize \(\d+\)",
        ),
        ("partition=short", r"signal_before_limit=90 s is not below the jobs' time limit"),
    ],
)
def test_a_dry_run_asks_the_cluster_and_submits_nothing(
    tmp_path: Path, option: str, message: str
) -> None:
    """--dry-run named only what the options alone said wrong; the cluster's answer came later."""
    before = _job_ids()
    cli = subprocess.run(
        [sys.executable, "-m", "curator", "run", "curator.examples.snapshots:pipeline",
         "--backend", "slurm", "--jobs", "2", "-o", option, "--dry-run"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert re.search(message, cli.stderr), cli.stderr
    assert "Traceback" not in cli.stderr
    assert _job_ids() <= before, "a job was submitted"
    assert not (tmp_path / "curator-jobs").exists()
    fine = subprocess.run(
        [sys.executable, "-m", "curator", "run", "curator.examples.snapshots:pipeline",
         "--backend", "slurm", "--jobs", "2", "-o", "partition=debug", "--dry-run", "--json"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert fine.returncode == 0, fine.stderr
    assert json.loads(fine.stdout)["to_run"] == 200
    assert not (tmp_path / "curator-jobs").exists()
    assert _job_ids() <= before, "a job was submitted"


def test_what_sbatch_refuses_is_said_once(tmp_path: Path) -> None:
    """submitit printed sbatch's message, then the error repeated it."""
    cli = subprocess.run(
        [sys.executable, "-m", "curator", "run", "curator.examples.snapshots:pipeline",
         "--backend", "slurm", "--jobs", "2", "-o", "sbatch=['--constraint=nosuch']",
         "--no-checkpoint", "--reporter", "none"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert "curator: error: sbatch refused the job array: " in cli.stderr
    sbatch_says = re.findall(r"sbatch: error: [^\n]*", cli.stderr)
    assert sbatch_says, cli.stderr
    assert len(sbatch_says) == len(set(sbatch_says)), cli.stderr
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        # Slurm names either, as its scheduler's pass comes
        ({"partition": "short", "time_limit": 5}, "(PartitionTimeLimit|PartitionConfig)"),
        ({"cpus_per_task": (os.cpu_count() or 1) + 1}, "PartitionConfig"),  # waited forever
    ],
    ids=["above-the-time-limit", "more-cpus-than-a-node"],
)
def test_a_job_slurm_will_never_start_is_an_error_and_is_cancelled(
    tmp_path: Path, options: dict[str, Any], reason: str
) -> None:
    """Slurm keeps such a job pending forever."""
    never = rf"Slurm will never start job \S+ as asked: .*{reason}"
    before = _job_ids()
    with pytest.raises(UsageError, match=never):
        run(probe(3, tmp_path), backend="slurm", jobs=2, reporter=None, options=options)
    assert _job_ids() <= before, "the job Slurm never starts was left in the queue"


def test_the_run_outlives_its_process_and_resume_adopts_what_the_jobs_did(
    tmp_path: Path,
) -> None:
    """``curator run`` SIGKILLed on the login node: the array runs on; ``--resume`` adopts
    what the jobs finished meanwhile: 0 items lost, 0 run twice."""
    probes = tmp_path / "probe"
    probes.mkdir()
    (tmp_path / "jobs_pipeline.py").write_text(
        "from curator.testing.probes import probe\n"
        f"pipeline = probe(24, {str(probes)!r}, sleep=0.3)\n"
    )
    command = [
        sys.executable, "-m", "curator", "run", "jobs_pipeline.py:pipeline", "--backend",
        "slurm", "--jobs", "2", "-o", "items_per_task=6", "--reporter", "none",
    ]  # fmt: skip
    first = subprocess.Popen(command, cwd=tmp_path)
    _wait(lambda: len(executions(probes)) >= 3, "three items to finish")
    first.kill()
    first.wait()
    assert _squeue("%i"), "the jobs went away with the run's process"
    resumed = subprocess.run(
        [*command, "--resume", "--json"], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(e.index for e in executions(probes)) == list(range(24))
    # Nothing is left behind (a job that said its last word may be completing a moment).
    _wait(lambda: _squeue("%i") == [], "every job to leave the queue", 30)


def test_a_squeue_that_does_not_answer_is_said_once_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The run waited on a silent controller without a word (found by a hostile user)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    refusal = "slurm_load_jobs error: Unable to contact slurm controller"
    (fake / "squeue").write_text(f"#!/bin/sh\necho '{refusal}' >&2\nexit 1\n")
    (fake / "squeue").chmod(0o755)
    monkeypatch.setattr(SlurmBackend, "silence_seconds", 0.5)
    probes = tmp_path / "probe"
    probes.mkdir()
    thread, box = _in_background(
        pipeline=probe(16, probes, sleep=1.0), backend="slurm", jobs=2, reporter=None,
        options={"items_per_task": 8},
    )  # fmt: skip
    _wait(lambda: len(executions(probes)) >= 1, "an item to finish")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "curator"]

    real = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{real}")
    _wait(lambda: any("has not answered" in m for m in said()), "the run to say so", 20)
    monkeypatch.setenv("PATH", real)
    assert len(executions(probes)) < 16, "the jobs ended before squeue answered again"
    thread.join(120)
    assert box["result"].ok
    assert box["result"].counts()[Status.OK] == 16
    silent = [m for m in said() if "squeue has not answered for" in m]
    assert len(silent) == 1, said()
    assert "its jobs are cancelled once Slurm answers" in silent[0]
    assert said().count("Slurm's squeue answers again") == 1, said()


def test_a_second_ctrl_c_cancels_the_jobs(tmp_path: Path) -> None:
    """The first Ctrl-C lets each task finish its item (these hang); the second cancels."""
    import signal

    probes = tmp_path / "probe"
    probes.mkdir()
    (tmp_path / "hung_pipeline.py").write_text(
        "from curator.testing.probes import probe\n"
        f"pipeline = probe(8, {str(probes)!r}, hang=frozenset(range(8)))\n"
    )
    run_it = subprocess.Popen(
        [sys.executable, "-m", "curator", "run", "hung_pipeline.py:pipeline", "--backend",
         "slurm", "--jobs", "2", "--reporter", "none", "--no-checkpoint"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait(lambda: len(started(probes)) == 2, "two items to start")
    run_it.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert run_it.poll() is None  # still waiting for the running items
    assert len([state for _, state in _squeue("%i", "%T") if state == "RUNNING"]) == 2
    run_it.send_signal(signal.SIGINT)
    _, err = run_it.communicate(timeout=60)
    assert run_it.returncode == 130, err
    _wait(lambda: _squeue("%i") == [], "the jobs to be cancelled", 30)


def test_a_new_process_cancels_the_queued_jobs_an_earlier_one_submitted(tmp_path: Path) -> None:
    """A resume adopting a killed run's round cancels its queued tasks: their ids come from
    the round's jobs.json, which cancel() did not read (they stayed queued, then started
    only to find the run gone)."""
    import json
    from types import SimpleNamespace

    held = subprocess.run(
        ["sbatch", "--parsable", "--hold", "--job-name=curator", "--wrap", "sleep 60"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    (tmp_path / "jobs.json").write_text(json.dumps({"3": held}))
    backend = SlurmBackend(SlurmOptions(), jobs=2)
    try:
        backend.cancel(SimpleNamespace(path=str(tmp_path)), ["3"])  # type: ignore[arg-type]
        assert held not in _job_ids()
    finally:
        subprocess.run(["scancel", held], check=False)
