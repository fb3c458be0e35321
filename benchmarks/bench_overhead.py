"""Per-item overhead of the built-in backends over calling ``pipeline[i]`` in a loop.

Usage::

    python benchmarks/bench_overhead.py [--items 20000] [--repeat 7] [--json FILE]

Every configuration runs the same no-op pipeline (one item per index, no
filter, a sink that returns an empty list) in the same process, side by side;
the best of ``--repeat`` runs is reported. Overhead per item is
``(run_time - loop_time) / items``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from curator import Pipeline, run
from curator.plugin_host.registry import default_registry

sys.path.insert(0, str(Path(__file__).parent))
from workloads import no_op


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    n = args.items
    pipeline: Pipeline[int] = no_op(n)
    default_registry()  # plugin loading is a one-off cost, not per item

    def loop() -> None:
        for i in range(n):
            pipeline[i]

    configs: dict[str, Callable[[], object]] = {
        "loop: pipeline[i]": loop,
        "sequential, reporter=None": lambda: run(pipeline, reporter=None),
        "sequential, summary reporter": lambda: run(pipeline, reporter="summary"),
        "thread-pool jobs=2, reporter=None": lambda: run(
            pipeline, backend="thread-pool", jobs=2, reporter=None
        ),
        "thread-pool jobs=2, summary reporter": lambda: run(
            pipeline, backend="thread-pool", jobs=2, reporter="summary"
        ),
    }
    results = {name: best_of(args.repeat, fn) for name, fn in configs.items()}
    base = results["loop: pipeline[i]"]
    print(f"{n} no-op items, best of {args.repeat}, Python {platform.python_version()}")
    print(f"{'configuration':40} {'seconds':>9} {'µs/item':>9} {'overhead µs/item':>17}")
    rows = []
    for name, seconds in results.items():
        overhead = (seconds - base) / n * 1e6
        print(f"{name:40} {seconds:9.4f} {seconds / n * 1e6:9.2f} {overhead:17.2f}")
        rows.append({"config": name, "seconds": seconds, "overhead_us_per_item": overhead})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"items": n, "python": sys.version, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
