"""What checkpointing costs, and what resume dispatches.

Usage::

    python benchmarks/bench_checkpoint.py [--items 20000] [--rounds 7]
    python benchmarks/bench_checkpoint.py --cli --items 200000 [--rounds 5] [--before DIR] [--outputs paths]

Needs the process-pool plugin. 1) 20,000 no-op items on the process pool
(jobs=2), with and without a checkpoint, in interleaved rounds of fresh
processes (pool start and shutdown, store creation and the final commit
included). 2) A checkpoint in which 19,000 of 20,000 items are done: a resumed
run must dispatch exactly the 1,000 others (counted by a backend wrapper).

``--cli``: the same comparison through ``curator run`` (its default reporters,
output not a terminal), ``--checkpoint`` against ``--no-checkpoint``, with the
parent's peak RSS (the CLI runs inside the measuring process, so its own
``ru_maxrss`` is the parent's, workers apart), each timed until the checkpoint
is closed (its WAL folded into the file, as the process waits for at exit), and
the parent's CPU seconds (user and system: the workers do the same work either
way, so the difference is what the checkpoint costs, free of the scheduling noise
of three busy processes on two cores); then a resume of the finished
checkpoint, which skips every item, timed the same way. ``--outputs paths``: each
item's sink returns the path of a file (as a real sink does) instead of an empty list.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

TIMED = """
import json, sys, time, tempfile, os
sys.path.insert(0, {here!r})
import workloads
from curator import run
from curator.plugin_host.registry import default_registry
default_registry()
pipeline = workloads.no_op({items})
checkpoint = os.path.join(tempfile.mkdtemp(), "cp.sqlite") if {checkpoint!r} else None
start = time.perf_counter()
result = run(pipeline, backend="process-pool", jobs=2, reporter=None, checkpoint=checkpoint)
seconds = time.perf_counter() - start
assert result.ok
print(json.dumps(seconds))
"""

RESUME = """
import json, sys
sys.path.insert(0, {here!r})
import workloads
from curator import run, Status
from curator.plugin_host.registry import default_registry
registry = default_registry()
entry = registry.backends["process-pool"]
dispatched = []
original = entry.cls.execute
def counting(self, work, indices):
    dispatched.extend(indices)
    yield from original(self, work, indices)
entry.cls.execute = counting
pipeline = workloads.no_op({items})
checkpoint = {checkpoint!r}
run(pipeline, backend="process-pool", jobs=2, reporter=None, checkpoint=checkpoint,
    indices=range({done}))
dispatched.clear()
result = run(pipeline, backend="process-pool", jobs=2, reporter=None, checkpoint=checkpoint,
             resume=True)
print(json.dumps({{"dispatched": len(dispatched), "distinct": len(set(dispatched)),
                  "lowest": min(dispatched), "skipped": result.count(Status.SKIPPED),
                  "ok": result.count(Status.OK)}}))
"""


CLI_TIMED = """
import json, os, resource, sys, time
sys.path.insert(0, {here!r})
os.environ["BENCH_ITEMS"] = "{items}"
os.chdir({folder!r})
from curator.cli.main import main
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
code = main(["run", {target!r}, "-b", "process-pool", "-j", "2", *{flags!r}])
from curator.checkpoint.store import wait_closed
wait_closed()  # the process ends once the file is whole: the user waits for that too
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
assert code == 0, code
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps([seconds, after.ru_maxrss / 1024, cpu]))
"""


def cli_rounds(items: int, rounds: int, before: str | None, target: str) -> None:
    """``curator run`` with and without the checkpoint, then a resume that skips everything.

    ``before``: a checkout of another commit, measured in the same rounds
    (its ``core`` and process-pool plugin first on ``PYTHONPATH``).
    """
    kinds = {
        "--no-checkpoint": ["--no-checkpoint"],
        "checkpoint": ["--checkpoint", "cp.sqlite"],
        "resume, all done": ["--checkpoint", "done.sqlite", "--resume"],
    }
    trees = {"now": None} if before is None else {"before": before, "now": None}
    measured: dict[tuple[str, str], list[Any]] = {(t, k): [] for t in trees for k in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for tree, root in trees.items():
            Path(folder, tree).mkdir()
            made = CLI_TIMED.format(
                here=str(HERE), items=items, folder=str(Path(folder, tree)),
                flags=kinds["resume, all done"][:2], target=target,
            )  # fmt: skip
            python(made, root)  # the finished checkpoint the resumes skip
        for _ in range(rounds):
            for kind, flags in kinds.items():
                for tree, root in trees.items():
                    where = Path(folder, tree)
                    (where / "cp.sqlite").unlink(missing_ok=True)
                    code = CLI_TIMED.format(
                        here=str(HERE), items=items, folder=str(where), flags=flags, target=target
                    )
                    measured[tree, kind].append(python(code, root))
    print(f"curator run {target}, {items} items, process-pool -j 2, {rounds} interleaved rounds")
    for tree in trees:
        base = measured[tree, "--no-checkpoint"]
        for kind in kinds:
            values = measured[tree, kind]
            times = sorted(v[0] for v in values)
            peaks = sorted(v[1] for v in values)
            cpus = sorted(v[2] for v in values)
            ratio = sorted(v[0] / b[0] for v, b in zip(values, base, strict=True))
            peak_ratio = sorted(v[1] / b[1] for v, b in zip(values, base, strict=True))
            print(
                f"  {tree:6} {kind:18} median {times[len(times) // 2]:.3f} s "
                f"(best {times[0]:.3f}), parent CPU {cpus[len(cpus) // 2]:.3f} s, "
                f"peak RSS {peaks[len(peaks) // 2]:.1f} MiB; "
                f"/ --no-checkpoint (median of rounds): time {ratio[len(ratio) // 2]:.2f}x, "
                f"RSS {peak_ratio[len(peak_ratio) // 2]:.2f}x"
            )


def python(code: str, root: str | None = None) -> object:
    """Run ``code`` in a fresh interpreter (with the checkout at ``root``, if given)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # or each process compiles the tree it imports
    if root is not None:
        paths = [f"{root}/core", f"{root}/plugins/process-pool/src", env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cli", action="store_true", help="through curator run (see above)")
    parser.add_argument("--before", help="with --cli: a checkout to measure side by side")
    parser.add_argument(
        "--outputs",
        choices=("none", "paths"),
        default="none",
        help="with --cli: what each item's sink returns: an empty list, or a file's path",
    )
    args = parser.parse_args()
    if args.cli:
        target = {"none": "workloads:no_op_from_env", "paths": "workloads:paths_from_env"}
        cli_rounds(args.items, args.rounds, args.before, target[args.outputs])
        return
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for checkpoint in (False, True):
            code = TIMED.format(here=str(HERE), items=args.items, checkpoint=checkpoint)
            times[checkpoint].append(float(python(code)))  # type: ignore[arg-type]
    ratios = sorted(100 * (c / n - 1) for n, c in zip(times[False], times[True], strict=True))
    print(f"{args.items} no-op items on process-pool (jobs=2), {args.rounds} interleaved rounds")
    print(f"  no checkpoint   best {min(times[False]):.4f} s")
    print(f"  checkpoint      best {min(times[True]):.4f} s")
    print(
        f"  overhead: median of rounds {ratios[len(ratios) // 2]:+.1f}%, "
        f"best/best {100 * (min(times[True]) / min(times[False]) - 1):+.1f}%"
    )
    done = args.items - args.items // 20
    with tempfile.TemporaryDirectory() as folder:
        code = RESUME.format(
            here=str(HERE), items=args.items, checkpoint=str(Path(folder) / "cp.sqlite"), done=done
        )
        counts = python(code)
    print(f"resume of {args.items} items with {done} done: {counts}")


if __name__ == "__main__":
    main()
