"""``stream()`` under a slow consumer: does the parent's memory grow with the item count?

Usage::

    python benchmarks/bench_stream_memory.py [--items 20000,160000] [--backends ...]
        [--repeat 3] [--baseline DIR]

Each figure comes from a fresh interpreter that builds a no-op pipeline of N
items, notes its resident memory, then streams the run on 2 workers (1 for
``sequential``) while its consumer is slow (it sleeps 2 ms every 100
outcomes, about 20 µs an outcome, slower than no-op items come). Reported: the peak RSS of the parent above
that starting point, the largest of ``--repeat`` runs. A backend that keeps
pace with its consumer grows by the same few MiB whatever N is; one that runs
ahead keeps every finished outcome queued for it. With ``--baseline DIR`` (an
older checkout, e.g. ``git archive <commit> | tar -x -C DIR``), the same runs
import that tree's core and plugins, side by side. ``--fast``: the consumer
takes each outcome at once (what the run itself keeps, for comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGINS = ("process-pool", "dask")

CODE = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from curator import stream
import workloads

def rss_kib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * (resource.getpagesize() // 1024)

pipeline = workloads.no_op({items})
before = rss_kib()
taken = 0
for outcome in stream(pipeline, backend={backend!r}, jobs={jobs}, reporter=None):
    taken += 1
    if {slow} and taken % 100 == 0:
        time.sleep(0.002)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"growth_mib": (peak - before) / 1024}}))
"""


def measure(backend: str, items: int, baseline: Path | None, slow: bool = True) -> float:
    env = dict(os.environ)
    if baseline is not None:
        tree = [baseline / "core", *(baseline / "plugins" / p / "src" for p in PLUGINS)]
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in tree)
    jobs = 1 if backend == "sequential" else 2
    code = CODE.format(here=str(HERE), items=items, backend=backend, jobs=jobs, slow=slow)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{backend} {items}: {proc.stderr}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["growth_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="20000,160000")
    parser.add_argument("--backends", default="sequential,thread-pool,process-pool,dask")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument(
        "--fast", action="store_true", help="a consumer that takes each outcome at once"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.items.split(",")]
    trees = [("now", None)] + ([("before", args.baseline)] if args.baseline else [])
    print("backend        tree    " + "".join(f"{f'{n:,} items':>20}" for n in sizes))
    for backend in args.backends.split(","):
        for label, tree in trees:
            cells = []
            for items in sizes:
                runs = [measure(backend, items, tree, not args.fast) for _ in range(args.repeat)]
                growth = max(runs)
                cells.append(f"{growth:+.1f} MiB")
            print(f"{backend:14} {label:8} " + "".join(f"{cell:>20}" for cell in cells))


if __name__ == "__main__":
    main()
