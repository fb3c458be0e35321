"""What reporting costs: 20,000 no-op items on the process pool with each reporter.

Usage::

    python benchmarks/bench_reporters.py [--items 20000] [--rounds 7]

Needs the process-pool plugin. Each run is a fresh process (pool start and
shutdown included, imports excluded); the reporters run in interleaved rounds
and the table gives the best time and the median per-round overhead over
``none``. ``rich`` draws on a forced terminal console that writes to
/dev/null, so it does all of its work; ``rich-delay0`` shows the live view from
the first moment instead of after the default 0.5 s; ``log`` writes to /dev/null.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

CODE = """
import json, os, sys, time
sys.path.insert(0, {here!r})
import workloads
from curator import run
from curator.plugin_host.registry import default_registry
from curator.observing.reporters import LogReporter, RichReporter
from rich.console import Console
default_registry()
sink = open(os.devnull, "w")
reporters = {{
    "none": lambda: None,
    "log": lambda: LogReporter(LogReporter.Options(stream=sink)),
    "rich": lambda: RichReporter(RichReporter.Options(
        console=Console(file=sink, force_terminal=True, width=100))),
    "rich-delay0": lambda: RichReporter(RichReporter.Options(delay=0.0,
        console=Console(file=sink, force_terminal=True, width=100))),
}}
pipeline = workloads.no_op({items})
reporter = reporters[{name!r}]()
start = time.perf_counter()
result = run(pipeline, backend="process-pool", jobs=2, reporter=reporter)
seconds = time.perf_counter() - start
assert result.ok
print(json.dumps(seconds))
"""


def once(name: str, items: int) -> float:
    code = CODE.format(here=str(HERE), items=items, name=name)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return float(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    names = ["none", "log", "rich", "rich-delay0"]
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            times[name].append(once(name, args.items))
    print(f"{args.items} no-op items on process-pool (jobs=2), {args.rounds} interleaved rounds")
    base = times["none"]
    for name in names:
        overheads = sorted(100 * (t / b - 1) for t, b in zip(times[name], base, strict=True))
        median = overheads[len(overheads) // 2]
        best = 100 * (min(times[name]) / min(base) - 1)
        print(
            f"  {name:11} best {min(times[name]):.4f} s  overhead over none: "
            f"median of rounds {median:+5.1f}%, best/best {best:+5.1f}%"
        )


if __name__ == "__main__":
    main()
