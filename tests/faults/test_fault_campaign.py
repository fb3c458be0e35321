"""A seeded, randomized fault campaign on every backend (``tox -e faults``).

Faults: worker crashes (exit, SIGKILL, SIGSEGV) among fast and slow items,
SIGKILL of the parent at a random point followed by ``--resume``, one or two
Ctrl-C then ``--resume``, two runs started at once on one checkpoint,
corrupted checkpoints, unpicklable results. The invariants, checked after
every fault run:

- every requested index ends with exactly one outcome;
- an index the checkpoint records as done really ran (nothing recorded is
  invented), and a resumed run never runs it again (nothing done is computed
  twice), and the resumed run finishes everything (nothing is lost);
- no process of a run is alive 2 s after the run ended (or was killed);
- no run hangs (every wait has a deadline; a missed deadline fails the run).

``FAULT_SEED`` picks the seed (default 1) and ``FAULT_SCALE`` multiplies the
number of runs (default 1: about 220 fault runs). The figures are printed at
the end and, with ``FAULT_REPORT=path``, written there as JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from fault_target import build  # noqa: E402

from curator import Registry, Status, run  # noqa: E402
from curator.catalog import read as report  # noqa: E402
from curator.plugins import PluginSettings  # noqa: E402
from curator.store import read_latest  # noqa: E402
from curator.testing.processes import child_env, descendants, running  # noqa: E402

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("FAULT_SEED", "1"))
SCALE = float(os.environ.get("FAULT_SCALE", "1"))
BACKENDS = ["sequential", "thread-pool", "process-pool"]
ORPHAN_SECONDS = 2.0
RUN_DEADLINE = 120.0

FIGURES: Counter[str] = Counter()


def _count(name: str) -> int:
    return max(1, round(SCALE * {"crash": 45, "unpicklable": 30, "kill": 50, "sigint": 50,
                                 "concurrent": 20, "corrupt": 25}[name]))  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    FIGURES.clear()
    started = time.monotonic()
    yield
    FIGURES["seconds"] = round(time.monotonic() - started)
    figures = {"seed": SEED, **dict(sorted(FIGURES.items()))}
    print(f"\nfault campaign: {json.dumps(figures)}")
    target = os.environ.get("FAULT_REPORT")
    if target:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n")


@pytest.fixture
def registry() -> Registry:
    """The installed plugins (the process pool among them), strict."""
    return Registry.load(PluginSettings(strict=True))


def _rng(kind: str) -> random.Random:
    return random.Random(f"{SEED}-{kind}")


# -- helpers ------------------------------------------------------------------------------


def _env(markers: Path, tag: str, items: int, slow: float) -> dict[str, str]:
    return child_env(
        HERE,
        FAULT_MARKERS=str(markers),
        FAULT_TAG=tag,
        FAULT_ITEMS=str(items),
        FAULT_SLOW=str(slow),
    )


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curator", "run", "fault_target:pipeline", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _finish(proc: subprocess.Popen[str], what: str) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=RUN_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        FIGURES["hangs"] += 1
        raise AssertionError(f"{what}: the run hung ({RUN_DEADLINE} s)\n{err[-2000:]}") from None


def _check_no_orphans(pids: set[int], what: str) -> None:
    ended = time.monotonic()
    while any(running(p) for p in pids) and time.monotonic() - ended < ORPHAN_SECONDS:
        time.sleep(0.02)
    left = sorted(p for p in pids if running(p))
    FIGURES["orphans"] += len(left)
    assert not left, f"{what}: processes alive {ORPHAN_SECONDS} s after the run ended: {left}"


def _marked(markers: Path, tag: str) -> Counter[int]:
    return Counter(int(p.name.split(".")[1]) for p in markers.glob(f"{tag}.*"))


def _wait_for_markers(proc: subprocess.Popen[str], markers: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(list(markers.iterdir())) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.005)


def _done(checkpoint: Path) -> set[int]:
    return {i for i, s in read_latest(checkpoint).items() if s.done}


def _resume_and_check(
    checkpoint: Path, markers: Path, items: int, backend: str, cwd: Path, what: str
) -> None:
    """Resume after a fault: nothing recorded is invented, redone or lost."""
    done = _done(checkpoint)
    invented = done - set(_marked(markers, "first"))
    FIGURES["lost"] += len(invented)
    assert not invented, f"{what}: recorded as done but never ran: {sorted(invented)[:10]}"
    proc = _start(
        ["-b", backend, "-j", _jobs(backend), "--checkpoint", str(checkpoint), "--resume"],
        _env(markers, "second", items, 0.0),
        cwd,
    )
    out, err = _finish(proc, what)
    assert proc.returncode == 0, f"{what}: resume exited {proc.returncode}\n{err[-2000:]}"
    summary = json.loads(out)
    finished = summary["ok"] + summary["skipped"]
    FIGURES["lost"] += items - finished
    assert finished == items, f"{what}: resume finished {finished} of {items}"
    again = done & set(_marked(markers, "second"))
    FIGURES["duplicated"] += len(again)
    assert not again, f"{what}: done items ran again on resume: {sorted(again)[:10]}"
    FIGURES["items"] += items


def _jobs(backend: str) -> str:
    return "1" if backend == "sequential" else "2"


def _folders(tmp_path: Path, name: str) -> tuple[Path, Path]:
    folder = tmp_path / name
    markers = folder / "markers"
    markers.mkdir(parents=True)
    return folder, markers


# -- worker crashes -----------------------------------------------------------------------


def test_worker_crashes_cost_only_the_crashed_items(registry: Registry) -> None:
    rng = _rng("crash")
    for number in range(_count("crash")):
        items = rng.randrange(100, 3000)
        picks = rng.sample(range(items), rng.randrange(1, 7))
        kinds: dict[str, set[int]] = {"exit_at": set(), "kill_at": set(), "segfault_at": set()}
        for index in picks:
            kinds[rng.choice(list(kinds))].add(index)
        chunksize = rng.choice([None, None, 1, 7, 200])
        result = run(
            build(items, **{k: frozenset(v) for k, v in kinds.items()}),
            backend="process-pool",
            jobs=2,
            on_error="continue",
            options={} if chunksize is None else {"chunksize": chunksize},
            reporter=None,
            registry=registry,
        )
        what = f"crash run {number} (seed {SEED}, {items} items, crashes at {sorted(picks)})"
        assert [o.index for o in result.outcomes] == list(range(items)), what
        crashed = sorted(o.index for o in result.outcomes if o.status is Status.CRASHED)
        assert crashed == sorted(picks), f"{what}: crashed {crashed}"
        assert result.count(Status.OK) == items - len(picks), f"{what}: {result.counts()}"
        assert multiprocessing.active_children() == [], f"{what}: workers left behind"
        FIGURES["runs"] += 1
        FIGURES["faults"] += len(picks)
        FIGURES["items"] += items
        FIGURES["worker crashes"] += len(picks)


# -- unpicklable results ------------------------------------------------------------------


def test_unpicklable_results_fail_only_their_items(registry: Registry, tmp_path: Path) -> None:
    rng = _rng("unpicklable")
    for number in range(_count("unpicklable")):
        backend = BACKENDS[number % len(BACKENDS)]
        items = rng.randrange(20, 600)
        bad = set(rng.sample(range(items), rng.randrange(1, 4)))
        checkpoint = tmp_path / f"u{number}.sqlite"
        result = run(
            build(items, unpicklable_at=frozenset(bad)),
            backend=backend,
            jobs=int(_jobs(backend)),
            on_error="continue",
            checkpoint=checkpoint,
            reporter=None,
            registry=registry,
        )
        what = f"unpicklable run {number} on {backend} (seed {SEED})"
        failed = {o.index for o in result.outcomes if o.status is Status.FAILED}
        assert failed == bad, f"{what}: failed {sorted(failed)}, expected {sorted(bad)}"
        assert {o.error.type for o in result.failures if o.error} == {"UnpicklableResult"}
        recorded = report(checkpoint).counts
        assert recorded == {"ok": items - len(bad), "failed": len(bad)}, f"{what}: {recorded}"
        FIGURES["runs"] += 1
        FIGURES["faults"] += len(bad)
        FIGURES["items"] += items
        FIGURES["unpicklable results"] += len(bad)


# -- the parent killed, then resumed ------------------------------------------------------


def test_a_killed_parent_loses_nothing_and_leaves_no_process(tmp_path: Path) -> None:
    rng = _rng("kill")
    for number in range(_count("kill")):
        backend = BACKENDS[number % len(BACKENDS)]
        items = rng.randrange(100, 400)
        slow = rng.choice([0.0, 0.01, 0.03])
        folder, markers = _folders(tmp_path, f"kill{number}")
        checkpoint = folder / "c.sqlite"
        what = f"kill run {number} on {backend} (seed {SEED})"
        proc = _start(
            ["-b", backend, "-j", _jobs(backend), "--checkpoint", str(checkpoint)],
            _env(markers, "first", items, slow),
            folder,
        )
        _wait_for_markers(proc, markers, rng.randrange(0, items // 2))
        tree = descendants(proc.pid)
        proc.kill()
        _finish(proc, what)
        _check_no_orphans(tree, what)
        _resume_and_check(checkpoint, markers, items, backend, folder, what)
        FIGURES["runs"] += 1
        FIGURES["faults"] += 1
        FIGURES["parent kills"] += 1


# -- Ctrl-C once or twice, then resume ----------------------------------------------------


def test_ctrl_c_once_or_twice_records_what_finished(tmp_path: Path) -> None:
    rng = _rng("sigint")
    for number in range(_count("sigint")):
        backend = BACKENDS[number % len(BACKENDS)]
        twice = number % 2 == 1
        items = rng.randrange(60, 200)
        folder, markers = _folders(tmp_path, f"int{number}")
        checkpoint = folder / "c.sqlite"
        what = f"Ctrl-C {'twice' if twice else 'once'} run {number} on {backend} (seed {SEED})"
        proc = _start(
            ["-b", backend, "-j", _jobs(backend), "--checkpoint", str(checkpoint), "--grace", "1"],
            _env(markers, "first", items, rng.choice([0.02, 0.05, 0.2])),
            folder,
        )
        _wait_for_markers(proc, markers, rng.randrange(1, 20))
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        if twice:
            time.sleep(rng.uniform(0.05, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        out, err = _finish(proc, what)
        _check_no_orphans(tree, what)
        assert proc.returncode in (0, 130), f"{what}: exit {proc.returncode}\n{err[-2000:]}"
        summary = json.loads(out)
        assert sum(summary["counts"].values()) == items, f"{what}: {summary['counts']}"
        assert summary["ok"] == len(_done(checkpoint)), f"{what}: an ok item was not recorded"
        _resume_and_check(checkpoint, markers, items, backend, folder, what)
        FIGURES["runs"] += 1
        FIGURES["faults"] += 2 if twice else 1
        FIGURES["interrupts"] += 1


# -- two runs on one checkpoint -----------------------------------------------------------


def test_two_runs_on_one_checkpoint_run_each_item_once(tmp_path: Path) -> None:
    rng = _rng("concurrent")
    for number in range(_count("concurrent")):
        backend = BACKENDS[number % len(BACKENDS)]
        items = rng.randrange(50, 300)
        folder, markers = _folders(tmp_path, f"two{number}")
        args = ["-b", backend, "-j", _jobs(backend), "--checkpoint", "c.sqlite", "--resume"]
        slow = rng.choice([0.0, 0.01])
        both = [_start(args, _env(markers, tag, items, slow), folder) for tag in ("a", "b")]
        what = f"concurrent runs {number} on {backend} (seed {SEED})"
        results = [(p.returncode, err) for p in both for _, err in [_finish(p, what)]]
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 2]), f"{what}: exit codes {codes}"
        for code, err in results:
            if code == 2:
                assert "is in use by another curator run" in err, f"{what}: {err[-500:]}"
        runs = _marked(markers, "a") + _marked(markers, "b")
        twice = [i for i, n in runs.items() if n > 1]
        FIGURES["duplicated"] += len(twice)
        assert not twice, f"{what}: items ran in both runs: {twice[:10]}"
        assert set(runs) == set(range(items)), f"{what}: items never ran"
        FIGURES["runs"] += 2
        FIGURES["faults"] += 1
        FIGURES["items"] += items
        FIGURES["concurrent runs"] += 1


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
    rng = _rng("corrupt")
    for number in range(_count("corrupt")):
        items = rng.randrange(50, 2000)
        folder, markers = _folders(tmp_path, f"bad{number}")
        checkpoint = folder / "c.sqlite"
        env = _env(markers, "first", items, 0.0)
        first = _start(["--checkpoint", str(checkpoint)], env, folder)
        _finish(first, "setup")
        how = _corrupt(checkpoint, rng)
        what = f"corrupt ({how}) checkpoint {number} (seed {SEED})"
        status = subprocess.run(
            [sys.executable, "-m", "curator", "status", str(checkpoint)],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            timeout=RUN_DEADLINE,
        )
        resumed = _start(["--checkpoint", str(checkpoint), "--resume"], env, folder)
        out, err = _finish(resumed, what)
        for code, text in ((status.returncode, status.stderr), (resumed.returncode, err)):
            assert code in (0, 2), f"{what}: exit {code}\n{text[-2000:]}"
            assert "Traceback" not in text, f"{what}: {text[-2000:]}"
        if resumed.returncode == 0:
            summary = json.loads(out)
            assert summary["ok"] + summary["skipped"] == items, f"{what}: {summary}"
        FIGURES["runs"] += 2
        FIGURES["faults"] += 1
        FIGURES["corrupt checkpoints"] += 1
        FIGURES[f"corrupt checkpoints refused ({how})"] += int(resumed.returncode == 2)
