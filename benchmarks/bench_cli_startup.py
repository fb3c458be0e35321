"""Wall time of ``curator backends list`` and what it imports.

Usage::

    python benchmarks/bench_cli_startup.py [--runs 20]

Runs ``curator backends list`` (table and ``--json``) as fresh processes and
reports the median and best wall time, then runs it once under
``python -X importtime`` to list the slowest imports and to check that no
execution engine (dask, distributed, joblib, loky, numpy, ...) was imported.
Every plugin installed in the running interpreter's environment is loaded,
as a user would see it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from curator.testing import HEAVY_MODULES as ENGINES


def timed(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    print(f"{label:42} {statistics.median(times):9.3f} {min(times):9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("curator", path=str(Path(sys.executable).parent)) or "curator"
    print(f"{'command':42} {'median s':>9} {'best s':>9}")
    for extra in ([], ["--json"]):
        cmd = [script, "backends", "list", *extra]
        times = timed(cmd, args.runs)
        report(" ".join(["curator", *cmd[1:]]), times)
    baseline = timed([sys.executable, "-c", "pass"], args.runs)
    report("python -c pass (interpreter start)", baseline)

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "curator", "backends", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    imports = []  # (cumulative µs, nesting depth, module)
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, raw_name = line.split(":", 1)[1].split("|")
        depth = (len(raw_name) - len(raw_name.lstrip()) - 1) // 2
        imports.append((int(cumulative_us), depth, raw_name.strip()))
    names = {name for _, _, name in imports}
    engines = sorted(n for n in names if n.split(".")[0] in ENGINES)
    print(f"\nmodules imported by `curator backends list --json`: {len(names)}")
    print(f"execution engines imported: {engines or 'none'}")
    print("slowest top-level imports (cumulative µs):")
    top = sorted((c, n) for c, depth, n in imports if depth == 0)[-8:]
    for cumulative, name in reversed(top):
        print(f"  {cumulative:>8}  {name}")


if __name__ == "__main__":
    main()
