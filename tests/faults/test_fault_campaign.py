"""A seeded, randomized fault campaign on every backend (``tox -e faults``).

Faults: worker crashes (exit, SIGKILL, SIGSEGV) among fast and slow items,
SIGKILL of the parent at a random point followed by ``--resume``, one or two
Ctrl-C then ``--resume``, two runs started at once on one checkpoint,
corrupted checkpoints; ``test_fault_values.py`` adds what items hand back
(unpicklable results and partials, bytes written to ``sys.stdout``),
``test_fault_hooks.py`` a stage's setup or teardown that hangs. Runs go to
sequential, thread-pool and process-pool in turn, and a share to dask (a
LocalCluster); half of them carry both styles of stage state (a
reset/state/merge tally and a flush()/merge shard stage). The invariants,
checked after every fault run:

- every requested index ends with exactly one outcome;
- an index the checkpoint records as done really ran (nothing recorded is
  invented), and a resumed run never runs it again (nothing done is computed
  twice), and the resumed run finishes everything (nothing is lost);
- each ok item's contribution is in the merged stage state exactly once, in
  both styles, after crashes, kills and resumes;
- no process of a run is alive 2 s after the run ended (or was killed);
- no run hangs (every wait has a deadline; a missed deadline fails the run).

Seeds, counts, figures and fault classes whose fix is pending: ``campaign.py``.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from campaign import (
    FIGURES,
    RUN_DEADLINE,
    SEED,
    Pending,
    check_no_orphans,
    check_stages,
    count,
    done,
    env,
    finish,
    folders,
    jobs,
    marked,
    record,
    resume_and_check,
    rng,
    runs,
    stage_files,
    start,
    summary_of,
    wait_for_markers,
)
from fault_target import build, rows

from curator import Registry, Status, run
from curator.testing.processes import descendants

pytestmark = pytest.mark.faults


def _stages(number: int) -> str:
    """Every other run carries both styles of stage state."""
    return "tally+shards" if number % 2 == 0 else ""


# -- worker crashes -----------------------------------------------------------------------


def test_worker_crashes_cost_only_the_crashed_items(
    registry: Registry, pending: Pending, tmp_path: Path
) -> None:
    chance = rng("crash")
    for number, backend in runs("crash", local=["process-pool"]):
        items = chance.randrange(100, 3000 if backend == "process-pool" else 400)
        picks = chance.sample(
            range(items), chance.randrange(1, 7 if backend == "process-pool" else 3)
        )
        kinds: dict[str, set[int]] = {"exit_at": set(), "kill_at": set(), "segfault_at": set()}
        for index in picks:
            kinds[chance.choice(list(kinds))].add(index)
        chunksize = chance.choice([None, None, 1, 7, 200])
        stages, output = _stages(number), tmp_path / f"rows{number}.txt"
        pipeline = build(items, stages, output, **{k: frozenset(v) for k, v in kinds.items()})
        what = (
            f"crash run {number} on {backend} (seed {SEED}, {items} items, "
            f"crashes at {sorted(picks)}, stages {stages or 'none'})"
        )
        error = ""
        try:
            result = run(
                pipeline,
                backend=backend,
                jobs=2,
                on_error="continue",
                options={} if chunksize is None else {"chunksize": chunksize},
                reporter=None,
                registry=registry,
            )
        except Exception as exc:  # the run itself must survive its workers' deaths
            if backend != "dask":
                raise
            error = f"{type(exc).__name__}: {exc}"
        if backend == "dask" and not pending.check("25.4", not error, f"{what}: {error}"):
            continue
        assert [o.index for o in result.outcomes] == list(range(items)), what
        crashed = sorted(o.index for o in result.outcomes if o.status is Status.CRASHED)
        assert crashed == sorted(picks), f"{what}: crashed {crashed}"
        assert result.count(Status.OK) == items - len(picks), f"{what}: {result.counts()}"
        assert multiprocessing.active_children() == [], f"{what}: workers left behind"
        ok = [o.index for o in result.outcomes if o.status is Status.OK]
        tally = list(pipeline.filters[0].seen) if "tally" in stages else None
        check_stages(pending, stages, tally, rows(output) if output.exists() else None, ok, what)
        record(f"worker crashes ({backend})", len(picks), items)
    pending.settle()


# -- the parent killed, then resumed ------------------------------------------------------


def test_a_killed_parent_loses_nothing_and_leaves_no_process(
    pending: Pending, tmp_path: Path
) -> None:
    chance = rng("kill")
    for number, backend in runs("kill"):
        items = chance.randrange(100, 400)
        slow = chance.choice([0.0, 0.01, 0.03])
        stages = _stages(number)
        folder, markers = folders(tmp_path, f"kill{number}")
        checkpoint = folder / "c.sqlite"
        what = f"kill run {number} on {backend} (seed {SEED}, stages {stages or 'none'})"
        proc = start(
            ["-b", backend, "-j", jobs(backend), "--checkpoint", str(checkpoint)],
            env(markers, "first", items, slow, stages),
            folder,
        )
        wait_for_markers(proc, markers, chance.randrange(0, items // 2))
        tree = descendants(proc.pid)
        proc.kill()
        finish(proc, what)
        check_no_orphans(tree, what)
        resume_and_check(checkpoint, markers, items, backend, stages, what)
        check_stages(pending, stages, *stage_files(folder), range(items), what)
        record(f"parent kills ({backend})", 1)  # its items count in resume_and_check
    pending.settle()


# -- Ctrl-C once or twice, then resume ----------------------------------------------------


def test_ctrl_c_once_or_twice_records_what_finished(pending: Pending, tmp_path: Path) -> None:
    chance = rng("sigint")
    for number, backend in runs("sigint"):
        twice = number % 2 == 1
        items = chance.randrange(60, 200)
        stages = _stages(number // 2)
        folder, markers = folders(tmp_path, f"int{number}")
        checkpoint = folder / "c.sqlite"
        what = (
            f"Ctrl-C {'twice' if twice else 'once'} run {number} on {backend} "
            f"(seed {SEED}, stages {stages or 'none'})"
        )
        proc = start(
            ["-b", backend, "-j", jobs(backend), "--checkpoint", str(checkpoint), "--grace", "1"],
            env(markers, "first", items, chance.choice([0.02, 0.05, 0.2]), stages),
            folder,
        )
        wait_for_markers(proc, markers, chance.randrange(1, 20))
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        if twice:
            time.sleep(chance.uniform(0.05, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        out, err = finish(proc, what)
        check_no_orphans(tree, what)
        assert proc.returncode in (0, 130), f"{what}: exit {proc.returncode}\n{err[-2000:]}"
        summary = summary_of(out, err, proc.returncode, what)
        assert sum(summary["counts"].values()) == items, f"{what}: {summary['counts']}"
        assert summary["ok"] == len(done(checkpoint)), f"{what}: an ok item was not recorded"
        resume_and_check(checkpoint, markers, items, backend, stages, what)
        check_stages(pending, stages, *stage_files(folder), range(items), what)
        record(f"Ctrl-C ({backend})", 2 if twice else 1)
    pending.settle()


# -- two runs on one checkpoint -----------------------------------------------------------


def test_two_runs_on_one_checkpoint_run_each_item_once(pending: Pending, tmp_path: Path) -> None:
    chance = rng("concurrent")
    for number, backend in runs("concurrent"):
        items = chance.randrange(50, 300)
        folder, markers = folders(tmp_path, f"two{number}")
        args = ["-b", backend, "-j", jobs(backend), "--checkpoint", "c.sqlite", "--resume"]
        slow = chance.choice([0.0, 0.01])
        both = [start(args, env(markers, tag, items, slow), folder) for tag in ("a", "b")]
        what = f"concurrent runs {number} on {backend} (seed {SEED})"
        results = [(p.returncode, err) for p in both for _, err in [finish(p, what)]]
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 2]), f"{what}: exit codes {codes}"
        refused = "".join(err for code, err in results if code == 2)
        half_made = "not a curator checkpoint" in refused or "schema version is None" in refused
        if not pending.check("creating", not half_made, f"{what}: {refused[-300:]}"):
            continue
        if refused:
            assert "is in use by another curator run" in refused, f"{what}: {refused[-500:]}"
        ran = marked(markers, "a") + marked(markers, "b")
        twice = [i for i, n in ran.items() if n > 1]
        FIGURES["duplicated"] += len(twice)
        assert not twice, f"{what}: items ran in both runs: {twice[:10]}"
        assert set(ran) == set(range(items)), f"{what}: items never ran"
        record(f"concurrent runs ({backend})", 1, items, runs=2)
    pending.settle()


# -- corrupted checkpoints ----------------------------------------------------------------


def _corrupt(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    how = rng.choice(["truncate", "garbage", "empty", "flip"])
    if how == "truncate":
        path.write_bytes(bytes(data[: rng.randrange(1, len(data))]))
    elif how == "garbage":
        path.write_bytes(rng.randbytes(rng.randrange(1, 8192)))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        for _ in range(rng.randrange(1, 64)):
            data[rng.randrange(100, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
    return how


def test_corrupted_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    chance = rng("corrupt")
    for number in range(count("corrupt")):
        items = chance.randrange(50, 2000)
        folder, markers = folders(tmp_path, f"bad{number}")
        checkpoint = folder / "c.sqlite"
        environment = env(markers, "first", items, 0.0)
        first = start(["--checkpoint", str(checkpoint)], environment, folder)
        finish(first, "setup")
        how = _corrupt(checkpoint, chance)
        what = f"corrupt ({how}) checkpoint {number} (seed {SEED})"
        status = subprocess.run(
            [sys.executable, "-m", "curator", "status", str(checkpoint)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=folder,
            timeout=RUN_DEADLINE,
        )
        resumed = start(["--checkpoint", str(checkpoint), "--resume"], environment, folder)
        out, err = finish(resumed, what)
        for code, text in ((status.returncode, status.stderr), (resumed.returncode, err)):
            assert code in (0, 2), f"{what}: exit {code}\n{text[-2000:]}"
            assert "Traceback" not in text, f"{what}: {text[-2000:]}"
        if resumed.returncode == 0:
            summary = summary_of(out, err, 0, what)
            assert summary["ok"] + summary["skipped"] == items, f"{what}: {summary}"
        record("corrupt checkpoints", 1, runs=2)
        FIGURES[f"corrupt checkpoints refused ({how})"] += int(resumed.returncode == 2)
