"""Huge runs and small ones (issue 13): parent memory, per-item cost, short runs.

Usage::

    python benchmarks/bench_huge_runs.py [--repeat 3] [--only MEM,ITEM,SHORT,FIXED,SPLIT,SMALL,OBS,PARENT,IMPORT]
                                         [--baseline DIR]

Needs the process-pool plugin, joblib and mpire installed. Every figure comes
from a fresh interpreter, 2 workers, this machine, all sections in one run.
Rounds interleave the contenders, each round in a shuffled (seeded) order, and
each measurement starts once everything the previous one started has exited.
With ``--baseline DIR`` (an older checkout, e.g. ``git archive <commit> | tar
-x -C DIR``), the figures of ``curator.run`` are also taken with that tree's
core and process-pool plugin first on ``sys.path``, side by side.

MEM    parent peak RSS: ``run()`` of 200,000 no-op items returning a short
       string each; ``stream()`` of 200,000 and of 2,000,000 such items, and
       ``stream().batches()`` of 2,000,000.
ITEM   200,000 items of the no-op pipeline: µs per item after start-up (the
       time of 200,000 minus that of 2,000, per extra item) and the parent's
       CPU seconds, for curator's process pool (run, run with each outcome
       read afterwards, stream, and stream taken in batches), a bare
       forkserver ``ProcessPoolExecutor`` whose initializer keeps the pipeline
       and whose chunked ``map`` runs one index per task, joblib (loky) and
       mpire (the pipeline as a shared object).
FIXED  2 no-op items, workers started for the run: the fixed cost of each contender
SPLIT  the same run of curator and of the bare pool, of 2 items and of 20,000, in phases:
       when the fork server was asked for, when it handed out the first worker, when the
       run ended
SMALL  20,000 no-op items, with and without a 1 MB pipeline: each contender, and the ratio
       to the bare pool
OBS    200,000 no-op items with curator's metrics and capture on (the defaults) and off
PARENT 200,000 no-op items: the parent's peak RSS of ``run()`` (every outcome kept) next
       to a bare pool that keeps every result (``list(ex.map(...))``) and one that
       keeps none, and of ``stream()`` (keeps none)
IMPORT ``from curator import run`` in a fresh interpreter (this tree, and the baseline's),
       and whole scripts from launch to exit: ``python -c pass``, a 2-item curator run
       with its imports, the same run as ``curator run`` with a checkpoint (the command's
       default) and without, and the floor, a bare forkserver pool mapping ``abs`` over 2
       numbers (no pipeline, no curator)
SHORT  400 items of 1 ms: sequential; curator, joblib and mpire with workers
       started for the run (cold), and with workers up from a previous run
       (warm: a curator Session, loky's reusable executor, mpire keep_alive).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).parent
T = TypeVar("T")

PRELUDE = f"""
import json, resource, sys, time
sys.path.insert(0, {str(HERE)!r})
from curator import run
try:
    from curator import stream
except ImportError:  # a baseline tree from before streaming
    pass

import workloads
from workloads import nap_item as nap

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
"""

EPILOGUE = """
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "cpu": cpu() - cpu0,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BODIES = {
    "curator run": "r = run(workloads.no_op(N), backend='process-pool', jobs=2, reporter=None)",
    "curator stream": (
        "for o in stream(workloads.no_op(N), backend='process-pool', jobs=2, reporter=None):\n"
        "    pass"
    ),
    "curator stream, batches": (
        "for b in stream(workloads.no_op(N), backend='process-pool', jobs=2,"
        " reporter=None).batches():\n    pass"
    ),
    "bare ProcessPoolExecutor": (
        "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor\n"
        "with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('forkserver'),"
        " initializer=workloads.init_pipeline, initargs=(workloads.no_op(N),)) as ex:\n"
        "    for _ in ex.map(workloads.run_kept, range(N), chunksize=max(1, N // 64)):\n"
        "        pass"
    ),
    "joblib (loky)": (
        "from joblib import Parallel, delayed\npipeline = workloads.no_op(N)\n"
        "for _ in Parallel(n_jobs=2, return_as='generator')("
        "delayed(workloads.run_index)(pipeline, i) for i in range(N)):\n    pass"
    ),
    "mpire": (
        "from mpire import WorkerPool\n"
        "with WorkerPool(n_jobs=2, shared_objects=workloads.no_op(N)) as pool:\n"
        "    for _ in pool.imap_unordered(workloads.run_index, range(N)):\n        pass"
    ),
}

RUN_STRINGS = "r = run(workloads.short_strings(N), backend='process-pool', jobs=2, reporter=None)"
STREAM_STRINGS = (
    "for o in stream(workloads.short_strings(N), backend='process-pool', jobs=2,"
    " reporter=None):\n    pass"
)
STREAM_BATCHES = STREAM_STRINGS.replace("reporter=None):", "reporter=None).batches():")

SHORT = {
    "sequential": "run(workloads.naps(N), reporter=None)",
    "curator process-pool, cold": (
        "run(workloads.naps(N), backend='process-pool', jobs=2, reporter=None)"
    ),
    "joblib (loky), cold": (
        "from joblib import Parallel, delayed\nParallel(n_jobs=2)(delayed(nap)(i) for i in range(N))"
    ),
    "mpire, cold": (
        "from mpire import WorkerPool\nwith WorkerPool(n_jobs=2) as pool:\n"
        "    pool.map(nap, range(N))"
    ),
}

# Warm: the pool is up and ran once before the clock starts (a notebook's second cell).
WARM = {
    "curator Session, warm": (
        "from curator import Session\n"
        "session = Session(backend='process-pool', jobs=2)\n"
        "session.run(workloads.naps(N), reporter=None)",
        "session.run(workloads.naps(N), reporter=None)",
    ),
    "joblib (loky), warm": (
        "from joblib import Parallel, delayed\nParallel(n_jobs=2)(delayed(nap)(i) for i in range(N))",
        "Parallel(n_jobs=2)(delayed(nap)(i) for i in range(N))",
    ),
    "mpire, warm": (
        "from mpire import WorkerPool\npool = WorkerPool(n_jobs=2, keep_alive=True)\n"
        "pool.map(nap, range(N))",
        "pool.map(nap, range(N))",
    ),
}


BASELINE: Path | None = None
"""An older checkout whose core and plugin the ``old`` measurements import."""


def _adopt_orphans() -> bool:
    """Become the subreaper of this process's descendants (Linux); whether it worked.

    A measured interpreter's fork server and resource tracker are orphaned when it
    exits and end on their own when they see its pipes close: usually before
    ``subprocess.run`` returns, but nothing guarantees it. As their subreaper,
    :func:`_settle` waits until they are gone, so that none still runs when the
    next contender starts (and none is left a zombie).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


ADOPTED = _adopt_orphans()


def _settle() -> None:
    """Wait until every process a measurement left behind has exited."""
    if not ADOPTED:
        time.sleep(0.2)
        return
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


ROUNDS = random.Random(20261206)
"""Each round's order of the contenders (seeded: a rerun measures in the same orders)."""


def in_rounds(rows: Iterable[T], repeat: int) -> Iterator[T]:
    """Every row once per round, ``repeat`` rounds, each round in a shuffled order.

    Interleaved rounds let a noisy minute of this shared machine hit every
    contender alike; the shuffle keeps a contender from always following the same
    one (whose leftovers, or the machine's state after it, it would inherit).
    """
    rows = list(rows)
    for _ in range(repeat):
        order = rows[:]
        ROUNDS.shuffle(order)
        yield from order


def _child_env() -> dict[str, str]:
    """This environment for a measured interpreter, bytecode writing allowed.

    Stale bytecode would be compiled again in every process (and the fork server): the
    first run of each tree writes it.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _baseline_env() -> dict[str, str]:
    """The environment that runs the ``--baseline`` tree's core and plugins."""
    assert BASELINE is not None
    env = _child_env()
    # The tree's own code of every installed plugin (editable installs are on the path
    # after PYTHONPATH): the new plugins' hook modules may need the new core.
    plugins = ["plugins/process-pool", "plugins/dask", "plugins/slurm", "plugins/report"]
    plugins.append("examples/local-jobs-backend")
    tree = [BASELINE / "core"] + [BASELINE / p / "src" for p in plugins]
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in tree if p.exists())
    return env


def measure(
    body: str,
    count: int,
    repeat: int,
    setup: str = "",
    old: bool = False,
    env_extra: dict[str, str] | None = None,
) -> dict[str, float]:
    """Best time and CPU, largest peak RSS, of ``repeat`` fresh interpreters."""
    code = (
        PRELUDE
        + f"N = {count}\n{setup}\ncpu0 = cpu()\nstart = time.perf_counter()\n"
        + body
        + EPILOGUE
    )
    env = {**(_baseline_env() if old else _child_env()), **(env_extra or {})}
    samples = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        _settle()
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": min(s["seconds"] for s in samples),
        "cpu": min(s["cpu"] for s in samples),
        "rss_mib": max(s["rss_mib"] for s in samples),
    }


def memory(repeat: int) -> None:
    print("\nMEM  parent peak RSS (MiB), process-pool, 2 workers")
    if BASELINE is not None:
        old = measure(RUN_STRINGS, 200_000, repeat, old=True)["rss_mib"]
        print(f"  {'old run() 200,000 short strings':32} {old:7.1f}")
    for label, body, count in [
        ("run() 200,000 short strings", RUN_STRINGS, 200_000),
        ("stream() 200,000 short strings", STREAM_STRINGS, 200_000),
        ("stream() 2,000,000 short strings", STREAM_STRINGS, 2_000_000),
        ("stream().batches() 2,000,000", STREAM_BATCHES, 2_000_000),
    ]:
        print(f"  {label:32} {measure(body, count, repeat)['rss_mib']:7.1f}")


RUN_AND_READ = "curator run, each outcome read"


def per_item(repeat: int) -> None:
    print("\nITEM 200,000 no-op items, 2 workers: µs/item after start-up, parent CPU s")
    rows = list(BODIES.items())
    # run() keeps columns and makes an Outcome only when one is read; stream() makes
    # one per item as it hands it out. Reading them all puts run() on stream()'s footing.
    rows.insert(2, (RUN_AND_READ, BODIES["curator run"] + "\nfor o in r.outcomes:\n    pass"))
    if BASELINE is not None:
        rows.insert(0, ("old curator run", BODIES["curator run"]))
    # Rounds of every contender in turn, so a noisy minute of this shared machine
    # hits them all alike; each figure is the best of its rounds.
    small: dict[str, list[float]] = {label: [] for label, _ in rows}
    large: dict[str, list[dict[str, float]]] = {label: [] for label, _ in rows}
    for label, body in in_rounds(rows, repeat):
        old = label.startswith("old ")
        small[label].append(measure(body, 2_000, 1, old=old)["seconds"])
        large[label].append(measure(body, 200_000, 1, old=old))
    for label, _ in rows:
        best = min(large[label], key=lambda sample: sample["seconds"])
        marginal = (best["seconds"] - min(small[label])) / 198_000 * 1e6
        cpu = min(sample["cpu"] for sample in large[label])
        print(
            f"  {label:28} {marginal:6.2f} µs/item   parent CPU {cpu:5.2f} s   "
            f"total {best['seconds']:5.2f} s"
        )


def small_runs(repeat: int) -> None:
    print("\nSMALL 20,000 no-op items, 2 workers started for the run: seconds, median of rounds")
    rows = list(BODIES.items())
    if BASELINE is not None:
        rows.insert(0, ("old curator run", BODIES["curator run"]))
    pipelines = {"": "workloads.no_op(N)", ", 1 MB pipeline": "workloads.no_op(N, 1 << 20)"}
    for suffix, pipeline in pipelines.items():
        seconds: dict[str, list[float]] = {label: [] for label, _ in rows}
        for label, body in in_rounds(rows, repeat):
            code = body.replace("workloads.no_op(N)", pipeline)
            old = label.startswith("old ")
            seconds[label].append(measure(code, 20_000, 1, old=old)["seconds"])
        bare = statistics.median(seconds["bare ProcessPoolExecutor"])
        for label, _ in rows:
            median = statistics.median(seconds[label])
            print(f"  {label + suffix:42} {median:6.3f} s   {median / bare:5.2f}x the bare pool")


OBSERVED = {
    "curator run, metrics and capture on": (
        "r = run(workloads.no_op(N), backend='process-pool', jobs=2, reporter=None)"
    ),
    "curator run, both off": (
        "r = run(workloads.no_op(N), backend='process-pool', jobs=2, reporter=None,"
        " metrics=False, capture=False)"
    ),
}


def observed(repeat: int) -> None:
    print("\nOBS 200,000 no-op items, 2 workers: what the default observability costs")
    trees = ["", "old "] if BASELINE is not None else [""]
    rows = {tree + label: body for tree in trees for label, body in OBSERVED.items()}
    seconds: dict[str, list[float]] = {label: [] for label in rows}
    peaks: dict[str, list[float]] = {label: [] for label in rows}
    for label, body in in_rounds(rows.items(), repeat):
        sample = measure(body, 200_000, 1, old=label.startswith("old "))
        seconds[label].append(sample["seconds"])
        peaks[label].append(sample["rss_mib"])
    for tree in trees:
        on, off = f"{tree}curator run, metrics and capture on", f"{tree}curator run, both off"
        both_off = statistics.median(seconds[off])
        for label in (on, off):
            median = statistics.median(seconds[label])
            print(
                f"  {label:42} {median:6.3f} s   {median / both_off:5.2f}x both off   "
                f"parent peak {max(peaks[label]):5.1f} MiB"
            )
        # Each round measures both one after the other: the median of the rounds' own
        # ratios is steadier than the ratio of medians on a machine whose speed drifts.
        paired = [a / b for a, b in zip(seconds[on], seconds[off], strict=True)]
        print(
            f"  {tree}on / off within each round: median {statistics.median(paired):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in paired)})"
        )


KEPT_BY_BARE_POOL = BODIES["bare ProcessPoolExecutor"].replace(
    "    for _ in ex.map(workloads.run_kept, range(N), chunksize=max(1, N // 64)):\n        pass",
    "    results = list(ex.map(workloads.run_kept, range(N), chunksize=max(1, N // 64)))",
)


def parent_memory(repeat: int) -> None:
    print("\nPARENT 200,000 no-op items, 2 workers: the parent's peak RSS, largest of rounds")
    rows = {
        "bare pool, every result kept": KEPT_BY_BARE_POOL,
        "curator run (every outcome kept)": BODIES["curator run"],
        "bare pool, no result kept": BODIES["bare ProcessPoolExecutor"],
        "curator stream (none kept)": BODIES["curator stream"],
    }
    assert "results = list(" in rows["bare pool, every result kept"]
    peaks: dict[str, list[float]] = {label: [] for label in rows}
    for label, body in in_rounds(rows.items(), repeat):
        peaks[label].append(measure(body, 200_000, 1)["rss_mib"])
    kept = max(peaks["bare pool, every result kept"])
    bare = max(peaks["bare pool, no result kept"])
    for label in rows:
        peak = max(peaks[label])
        base = kept if "kept)" in label or "every" in label else bare
        print(f"  {label:34} {peak:6.1f} MiB   {peak / base:5.2f}x the bare pool alike")


ONLY_PROCESS_POOL = "curator run, process-pool plugin only"
WITH_FORK = "curator run, start_method=fork"


def _other_plugins() -> str:
    """The installed ``curator`` plugins but the process pool, for CURATOR_DISABLE_PLUGINS."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="curator")} - {"process-pool"}
    return ",".join(sorted(names))


def fixed_cost(repeat: int) -> None:
    print("\nFIXED 2 no-op items, 2 workers started for the run: ms from the call to the end")
    # Every run imports each installed backend's class: the second curator row has
    # only what `pip install curator-backend-process-pool` brings.
    others = _other_plugins()
    print(f"  (installed plugins besides the process pool: {others or 'none'})")
    rows = list(BODIES.items())
    rows.insert(1, (ONLY_PROCESS_POOL, BODIES["curator run"]))
    # Not the default (see docs/user-guide.md, "Threads inside workers"): what the
    # fork server's start costs, seen from the start method that needs none.
    fork = BODIES["curator run"].replace(
        "reporter=None)", "reporter=None, options={'start_method': 'fork'})"
    )
    rows.insert(2, (WITH_FORK, fork))
    if BASELINE is not None:
        rows.insert(0, ("old curator run", BODIES["curator run"]))
    only = {"CURATOR_DISABLE_PLUGINS": others}
    seconds: dict[str, list[float]] = {label: [] for label, _ in rows}
    for label, body in in_rounds(rows, repeat):
        extra = only if label == ONLY_PROCESS_POOL else None
        sample = measure(body, 2, 1, old=label.startswith("old "), env_extra=extra)
        seconds[label].append(sample["seconds"])
    bare = statistics.median(seconds["bare ProcessPoolExecutor"])
    for label, _ in rows:
        median = statistics.median(seconds[label])
        print(
            f"  {label:38} median {median * 1e3:6.1f} ms  best {min(seconds[label]) * 1e3:6.1f} ms"
            f"   bare pool + {(median - bare) * 1e3:5.1f} ms"
        )


# Stamps the moments the fork server is asked for and first hands out a worker. The
# process pool calls the module's ensure_running() (bound at import), multiprocessing's
# own Popen the instance's method: both are wrapped.
SPLIT_STAMPS = """
from multiprocessing import forkserver, popen_forkserver
stamps = {}
def stamped(name, call):
    def wrapper(*args, **kwargs):
        stamps.setdefault(name + " asked", time.perf_counter() - start)
        try:
            return call(*args, **kwargs)
        finally:
            stamps.setdefault(name + " done", time.perf_counter() - start)
    return wrapper
forkserver.ensure_running = stamped("fork server", forkserver.ensure_running)
forkserver.ForkServer.ensure_running = stamped("fork server", forkserver.ForkServer.ensure_running)
popen_forkserver.Popen._launch = stamped("first worker", popen_forkserver.Popen._launch)
"""


def fixed_split(repeat: int) -> None:
    # 2 items: the fixed cost alone; 20,000: SMALL's run, where the items' time adds to it.
    for count in (2, 20_000):
        split_at(count, repeat)


def split_at(count: int, repeat: int) -> None:
    print(f"\nSPLIT where a {count:,}-item run's time goes, ms from the call, median of rounds")
    rows = {"curator run": BODIES["curator run"], "bare pool": BODIES["bare ProcessPoolExecutor"]}
    marks: dict[str, dict[str, list[float]]] = {label: {} for label in rows}
    for label, body in in_rounds(rows.items(), repeat):
        code = (
            PRELUDE
            + SPLIT_STAMPS  # before the clock starts, as the modules it imports
            + f"N = {count}\ncpu0 = cpu()\nstart = time.perf_counter()\n"
            + body
            + "\nstamps['end'] = time.perf_counter() - start\nprint(json.dumps(stamps))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=_child_env()
        )
        _settle()
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        for name, value in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            marks[label].setdefault(name, []).append(value * 1e3)
    for label, named in marks.items():
        asked = statistics.median(named["fork server asked"])
        first = statistics.median(named["first worker done"])
        end = statistics.median(named["end"])
        print(
            f"  {label:12} fork server asked at {asked:5.1f}   first worker at {first:6.1f} "
            f"(fork server's start {first - asked:5.1f})   end {end:6.1f}"
            f"   (first worker to end {end - first:5.1f})"
        )


IMPORTING = """
import time
start = time.perf_counter()
from curator import run
print((time.perf_counter() - start) * 1e3)
"""

CURATOR_SCRIPT = "curator run(), import included"
WHOLE_SCRIPTS = {
    "python -c pass": "pass",
    CURATOR_SCRIPT: (
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\nfrom curator import run\n"
        "import workloads\n"
        "run(workloads.no_op(2), backend='process-pool', jobs=2, reporter=None)"
    ),
    # The floor: no pipeline, no curator; a builtin as the work.
    "bare ProcessPoolExecutor, abs()": (
        "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor\n"
        "if __name__ == '__main__':\n"
        "    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('forkserver'))"
        " as ex:\n"
        "        list(ex.map(abs, range(2)))"
    ),
}


# The command line of the same 2-item run, the checkpoint (its default) in a fresh folder.
COMMAND = ["run", "workloads:no_op_from_env", "-b", "process-pool", "-j", "2", "--reporter", "none"]
COMMANDS = {
    "curator run, checkpoint (the default)": ["--checkpoint", "{folder}"],
    "curator run --no-checkpoint": ["--no-checkpoint"],
}


def importing(repeat: int) -> None:
    print("\nIMPORT ms, median of rounds, each a fresh interpreter")
    trees = [("this tree", False)] + ([("baseline", True)] if BASELINE is not None else [])
    rows = [("from curator import run, " + label, ["-c", IMPORTING], old) for label, old in trees]
    rows += [(label, ["-c", code], False) for label, code in WHOLE_SCRIPTS.items()]
    if BASELINE is not None:
        script = ["-c", WHOLE_SCRIPTS[CURATOR_SCRIPT]]
        rows.append(("baseline curator run(), import included", script, True))
    for label, extra in COMMANDS.items():
        rows += [(f"{label}, {tree}", ["-m", "curator", *COMMAND, *extra], old)
                 for tree, old in trees]  # fmt: skip
    spent: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    with tempfile.TemporaryDirectory() as scratch:
        for n, (label, argv, old) in enumerate(in_rounds(rows, repeat)):
            env = {**(_baseline_env() if old else _child_env()), "BENCH_ITEMS": "2"}
            argv = [a.replace("{folder}", f"{scratch}/{n}") for a in argv]
            began = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=HERE
            )
            whole = (time.perf_counter() - began) * 1e3
            _settle()
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            inside = label.startswith("from curator import run")
            spent[label].append(float(proc.stdout.strip().splitlines()[-1]) if inside else whole)
    for label, _, _ in rows:
        kind = "the import, in the process" if label.startswith("from ") else "launch to exit"
        print(f"  {label:52} {statistics.median(spent[label]):6.1f} ms   ({kind})")


def short_runs(repeat: int) -> None:
    print("\nSHORT 400 items of 1 ms, 2 workers (start-up included)")
    rows: list[tuple[str, str, str, bool]] = []  # label, setup, body, old tree
    if BASELINE is not None:
        rows.append(
            ("old curator process-pool, cold", "", SHORT["curator process-pool, cold"], True)
        )
    rows += [(label, "", body, False) for label, body in SHORT.items()]
    rows += [(label, setup, body, False) for label, (setup, body) in WARM.items()]
    seconds: dict[str, list[float]] = {label: [] for label, *_ in rows}
    for label, setup, body, old in in_rounds(rows, repeat):
        seconds[label].append(measure(body, 400, 1, setup, old=old)["seconds"])
    for label, *_ in rows:
        print(f"  {label:28} {min(seconds[label]):6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="MEM,ITEM,SHORT")
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare with")
    args = parser.parse_args()
    global BASELINE
    BASELINE = args.baseline.resolve() if args.baseline is not None else None
    sections = {
        "MEM": memory,
        "ITEM": per_item,
        "SHORT": short_runs,
        "FIXED": fixed_cost,
        "SPLIT": fixed_split,
        "SMALL": small_runs,
        "OBS": observed,
        "PARENT": parent_memory,
        "IMPORT": importing,
    }
    for name in args.only.split(","):
        sections[name](args.repeat)


if __name__ == "__main__":
    main()
