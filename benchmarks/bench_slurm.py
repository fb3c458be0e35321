"""The slurm backend on the one-node Slurm against process-pool, side by side in one run.

Usage::

    python plugins/slurm/tests/one_node_slurm.py up      # as root, once
    python benchmarks/bench_slurm.py [--rounds 3] [--jobs 2]

Needs ``pip install ./plugins/slurm ./plugins/process-pool``. Each round measures,
backend after backend in turns, with a fresh backend per run (process-pool
starts its workers, Slurm its jobs):

- **first result**: from ``curator.stream(...)`` to the first outcome (20 no-op items);
- **2,000 no-op items**: wall time and what that is per item;
- **200 items of 100 ms**: wall time against the ideal of 200 x 0.1 s / jobs.

It also prints how many array tasks each Slurm run had (from its job folder).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import workloads

BACKENDS = ("process-pool", "slurm")


def options(backend: str, folder: Path) -> dict[str, object]:
    return {"job_folder": str(folder)} if backend == "slurm" else {}


def first_result(backend: str, jobs: int, folder: Path) -> float:
    from curator import stream

    start = time.perf_counter()
    with stream(
        workloads.no_op(20), backend=backend, jobs=jobs, options=options(backend, folder),
        reporter=None,
    ) as outcomes:  # fmt: skip
        next(iter(outcomes))
        seconds = time.perf_counter() - start
        for _ in outcomes:
            pass
    return seconds


def wall(pipeline: object, backend: str, jobs: int, folder: Path) -> float:
    from curator import run

    start = time.perf_counter()
    result = run(
        pipeline, backend=backend, jobs=jobs, options=options(backend, folder),  # type: ignore[arg-type]
        reporter=None,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert result.ok
    return seconds


def tasks_in(folder: Path) -> int:
    rounds = sorted(folder.glob("run-*/round-*"), key=lambda p: p.stat().st_mtime)
    return len(list(rounds[-1].glob("tasks/*.json"))) if rounds else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    jobs = args.jobs
    found: dict[tuple[str, str], list[float]] = {}
    tasks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-slurm-", dir=".") as scratch:
        folder = Path(scratch).resolve()
        for number in range(args.rounds):
            for backend in BACKENDS if number % 2 == 0 else reversed(BACKENDS):
                found.setdefault((backend, "first"), []).append(first_result(backend, jobs, folder))
                found.setdefault((backend, "no-op"), []).append(
                    wall(workloads.no_op(2000), backend, jobs, folder)
                )
                if backend == "slurm":
                    tasks["2,000 no-op"] = tasks_in(folder)
                found.setdefault((backend, "100ms"), []).append(
                    wall(workloads.sleeps(200, 0.1), backend, jobs, folder)
                )
                if backend == "slurm":
                    tasks["200 x 100 ms"] = tasks_in(folder)
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
    ideal = 200 * 0.1 / jobs
    print(f"jobs={jobs}, {args.rounds} rounds; median (best)")
    print(
        "| backend | first result, s | 2,000 no-op, s | per item, ms | 200 x 100 ms, s | over ideal |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for backend in BACKENDS:
        first, noop, naps = (found[backend, k] for k in ("first", "no-op", "100ms"))
        print(
            f"| {backend} | {statistics.median(first):.2f} ({min(first):.2f}) "
            f"| {statistics.median(noop):.2f} ({min(noop):.2f}) "
            f"| {1000 * statistics.median(noop) / 2000:.2f} "
            f"| {statistics.median(naps):.2f} ({min(naps):.2f}) "
            f"| {statistics.median(naps) / ideal:.2f}x |"
        )
    print(f"array tasks per Slurm run: {tasks}")


if __name__ == "__main__":
    main()
