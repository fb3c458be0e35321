"""What remembering costs the command line: runs, resumes and ``status`` over big checkpoints.

Usage::

    python benchmarks/bench_cli_memory.py [--items 100000] [--rounds 5] [--baseline DIR]

Runs ``curator`` as fresh processes in a scratch folder, on a no-op pipeline of
``--items`` items on the sequential backend:

- ``first run``: a run that creates its checkpoint;
- ``rerun``: the same run again over the full checkpoint (the new code reads it
  first, to say how many items are done);
- ``resume, all done``: ``--resume`` when every item is done (the new code reads
  the recorded settings first);
- ``status TARGET`` and ``status`` (a folder of 20 checkpoints listed).

With ``--baseline DIR`` (a checkout of an older commit, e.g. made with
``git archive``), the same commands run with that checkout's ``core/`` first on
``PYTHONPATH``, interleaved round by round with the current code, so both are
measured side by side in one session. Reported: the median and best seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORE = HERE.parent / "core"

TARGET = """
import sys
sys.path.insert(0, {here!r})
import workloads
pipeline = workloads.no_op({items})
variant_{n} = workloads.no_op({items} + {n})
"""


def curator(core: Path, cwd: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{core}{os.pathsep}{cwd}", "CURATOR_NO_PLUGINS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "curator", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"curator {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds


def one_round(core: Path, items: int, has_listing: bool) -> dict[str, float]:
    cwd = Path(tempfile.mkdtemp(prefix="curator-bench-"))
    try:
        for n in range(1, 20):
            (cwd / f"target_{n}.py").write_text(TARGET.format(here=str(HERE), items=items, n=n))
        for n in range(1, 20):  # 19 other checkpoints, for the listing (small ones)
            curator(core, cwd, "run", f"target_{n}:variant_{n}", "--indices", "0:10",
                    "--reporter", "none")  # fmt: skip
        spec = "target_1:pipeline"
        times = {
            "first run": curator(core, cwd, "run", spec, "--reporter", "none"),
            "rerun": curator(core, cwd, "run", spec, "--reporter", "none"),
            "resume, all done": curator(core, cwd, "run", spec, "--resume", "--reporter", "none"),
        }
        path = next(p for p in (cwd / ".curator").glob("*.sqlite") if p.stat().st_size > 100_000)
        # The first wave's status takes a checkpoint file, not a TARGET.
        times["status of the checkpoint"] = curator(core, cwd, "status", str(path), "--json")
        if has_listing:
            times["status (list 20)"] = curator(core, cwd, "status", "--json")
        return times
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare with")
    args = parser.parse_args()
    cores = {"new": CORE}
    if args.baseline is not None:
        cores = {"old": args.baseline.resolve() / "core", **cores}
    results: dict[str, dict[str, list[float]]] = {label: {} for label in cores}
    for _ in range(args.rounds):
        for label, core in cores.items():
            for name, seconds in one_round(core, args.items, label == "new").items():
                results[label].setdefault(name, []).append(seconds)
    print(f"{args.items:,} no-op items, sequential, {args.rounds} rounds, fresh processes")
    print(f"{'command':28}" + "".join(f" {label + ' median':>12} {label + ' best':>10}"
                                      for label in cores))  # fmt: skip
    for name in results["new"]:
        row = f"{name:28}"
        for label in cores:
            times = results[label].get(name)
            row += f" {statistics.median(times):12.3f} {min(times):10.3f}" if times else " " * 24
        print(row)


if __name__ == "__main__":
    main()
