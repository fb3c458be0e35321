"""What checkpointing costs, and what resume dispatches.

Usage::

    python benchmarks/bench_checkpoint.py [--items 20000] [--rounds 7]

Needs the process-pool plugin. 1) 20,000 no-op items on the process pool
(jobs=2), with and without a checkpoint, in interleaved rounds of fresh
processes (pool start and shutdown, store creation and the final commit
included). 2) A checkpoint in which 19,000 of 20,000 items are done: a resumed
run must dispatch exactly the 1,000 others (counted by a backend wrapper).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

TIMED = """
import json, sys, time, tempfile, os
sys.path.insert(0, {here!r})
import workloads
from curator import run
from curator.registry import default_registry
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
from curator.registry import default_registry
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


def python(code: str) -> object:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
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
