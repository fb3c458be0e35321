"""What a plugin's per-item feature costs (issue 26): the extras channel end to end.

Usage::

    python benchmarks/bench_extras.py [--items 200000] [--rounds 3] [--jobs 2]

Runs ``--items`` no-op items on process-pool (``reporter=None``), each in a
fresh interpreter, in interleaved rounds: without any feature, and with the
feature ``workloads.WallClock`` (a clock read around each item, a small dict
of JSON per item: the shape of a real plugin's field), each without and with
a checkpoint (where the field is stored by item). Prints the median wall time
of each, and the feature's cost per item. Needs the process-pool plugin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

CODE = """
import json, sys, tempfile, time
sys.path.insert(0, {here!r})
from curator import Registry, run
from curator.plugin_host.plugins import PluginSettings
import workloads

plugins = [("wall", workloads.WallClockPlugin())] if {feature!r} else []
registry = Registry.load(PluginSettings(strict=True), plugins=plugins)
with tempfile.TemporaryDirectory() as folder:
    checkpoint = folder + "/c.sqlite" if {checkpoint!r} else None
    started = time.perf_counter()
    result = run(workloads.no_op({items}), backend="process-pool", jobs={jobs}, reporter=None,
                 registry=registry, checkpoint=checkpoint)
    seconds = time.perf_counter() - started
assert result.ok
extras = result.outcomes[0].extras
assert (extras is not None) == {feature!r}, extras
print(json.dumps({{"seconds": seconds}}))
"""


def measure(items: int, jobs: int, feature: bool, checkpoint: bool) -> float:
    """Seconds of one run in a fresh interpreter."""
    code = CODE.format(
        here=str(HERE), feature=feature, checkpoint=checkpoint, items=items, jobs=jobs
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    seconds: float = json.loads(out.splitlines()[-1])["seconds"]
    return seconds


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    cases = [(feature, checkpoint) for checkpoint in (False, True) for feature in (False, True)]
    times: dict[tuple[bool, bool], list[float]] = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            times[case].append(measure(args.items, args.jobs, *case))
    print(f"{args.items:,} no-op items, process-pool -j {args.jobs}, medians of {args.rounds}")
    for checkpoint in (False, True):
        bare = statistics.median(times[(False, checkpoint)])
        probed = statistics.median(times[(True, checkpoint)])
        extra = (probed - bare) / args.items * 1e6 * args.jobs
        where = "checkpoint" if checkpoint else "no checkpoint"
        print(
            f"  {where:14} no feature {bare:6.2f} s   with a feature {probed:6.2f} s   "
            f"({probed / bare:4.2f}x, {extra:+.2f} µs per item per worker)"
        )


if __name__ == "__main__":
    main()
