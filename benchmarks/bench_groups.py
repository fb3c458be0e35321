"""Keep-together groups (issue 14): load balance with groups of skewed cost.

Usage::

    python benchmarks/bench_groups.py [--repeat 5] [--seconds 4.0]

400 CPU-bound items in 40 keep-together groups (by remainder, so a group's
members are spread over the request) of skewed cost (weights 1, 1, 1, 2, 6,
repeating: the heaviest groups cost six times the lightest), about
``--seconds`` of work in all. Sequential, then 2 workers with and without the
groups, side by side in rounds; the speedup is the median of the rounds' ratios
(robust to this machine's slow spells), start-up of the workers included. Target: >= 1.8x over sequential with the groups on 2 workers.
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
    parser.add_argument("--repeat", type=int, default=5)
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
    seconds: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(args.repeat):
        for label, kwargs in contenders.items():
            start = time.perf_counter()
            result = run(reporter=None, **kwargs)
            seconds[label].append(time.perf_counter() - start)
            assert result.ok
    base = seconds["sequential, groups"]
    print(f"\n{COUNT} items in {GROUPS} groups, weights {WEIGHTS}, {args.repeat} rounds")
    print("  speedup over sequential: median of the rounds' ratios (each round's own sequential)")
    for label, times in seconds.items():
        ratios = sorted(b / t for b, t in zip(base, times, strict=True))
        rounds = ", ".join(f"{b / t:.2f}" for b, t in zip(base, times, strict=True))
        print(
            f"  {label:34} best {min(times):6.3f} s   median {ratios[len(ratios) // 2]:4.2f}x"
            f"   (rounds: {rounds})"
        )


if __name__ == "__main__":
    main()
