"""Keep-together groups (issue 14): load balance with groups of skewed cost.

Usage::

    python benchmarks/bench_groups.py [--repeat 3] [--seconds 4.0]

400 CPU-bound items in 40 keep-together groups (by remainder, so a group's
members are spread over the request) of skewed cost (weights 1, 1, 1, 2, 6,
repeating: the heaviest groups cost six times the lightest), about
``--seconds`` of work in all. Sequential, then 2 workers with and without the
groups, side by side in turns; best of ``--repeat`` each, start-up of the
workers included. Target: >= 1.8x over sequential with the groups on 2 workers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import workloads

from curator import run

COUNT, GROUPS, WEIGHTS = 400, 40, (1, 1, 1, 2, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    mean_weight = sum(WEIGHTS) / len(WEIGHTS)
    loops = workloads.loops_for(args.seconds / COUNT / mean_weight)
    grouped = workloads.grouped_cpu(COUNT, GROUPS, loops, WEIGHTS)
    free = workloads.grouped_cpu(COUNT, GROUPS, loops, WEIGHTS, declare=False)
    contenders: dict[str, dict[str, Any]] = {
        "sequential, groups": {"pipeline": grouped, "backend": "sequential"},
        "process-pool jobs=2, groups": {"pipeline": grouped, "backend": "process-pool", "jobs": 2},
        "process-pool jobs=2, no groups": {"pipeline": free, "backend": "process-pool", "jobs": 2},
        "thread-pool jobs=2, groups": {"pipeline": grouped, "backend": "thread-pool", "jobs": 2},
    }
    best = {label: float("inf") for label in contenders}
    for _ in range(args.repeat):
        for label, kwargs in contenders.items():
            start = time.perf_counter()
            result = run(reporter=None, **kwargs)
            best[label] = min(best[label], time.perf_counter() - start)
            assert result.ok
    base = best["sequential, groups"]
    print(f"\n{COUNT} items in {GROUPS} groups, weights {WEIGHTS}, best of {args.repeat}")
    for label, seconds in best.items():
        print(f"  {label:34} {seconds:6.3f} s   {base / seconds:4.2f}x")


if __name__ == "__main__":
    main()
