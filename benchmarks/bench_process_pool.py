"""The process-pool backend against the origin's design, joblib and sequential.

Usage::

    python benchmarks/bench_process_pool.py [--skip-origin] [--only W1,MEM,W2,W5]

Needs the process-pool plugin installed (``pip install ./plugins/process-pool``)
and joblib for the comparison (``pip install joblib``). Every measurement runs
in a fresh Python process (so pool start, including the forkserver, and
shutdown are inside the timed region), 2 workers, on this machine; imports and
interpreter start are outside it.

W1   20,000 no-op items, pipeline pickling to 1 MB.
MEM  200,000 no-op items: marginal µs per item after start-up, parent peak RSS.
W2   400 items of ~10 ms pure-Python CPU: speedup over sequential.
W5   200 items of ~5 ms, every tenth 20x longer: speedup over sequential.

Each figure is the best of ``--repeat`` fresh processes (the origin design runs
once: it takes about 20 s). W2 and W5 run sequential, curator and joblib in
interleaved rounds and report the median of the per-round speedups (robust to
the machine's slow spells) next to best over best.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import workloads  # noqa: E402

# Each snippet runs in a fresh interpreter and prints {"seconds": ..., "rss_mib": ...}.
PRELUDE = f"""
import json, resource, sys, time
sys.path.insert(0, {str(HERE)!r})
import workloads
from curator import run
from curator.plugin_host.registry import default_registry
default_registry()
"""

TIMED = """
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


REPEAT = 5


def measure(setup: str, body: str, repeat: int | None = None) -> dict[str, float]:
    """Best wall time (and the largest peak RSS) of ``repeat`` fresh processes."""
    code = PRELUDE + setup + TIMED.format(body=body)
    samples = []
    for _ in range(repeat or REPEAT):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": min(s["seconds"] for s in samples),
        "rss_mib": max(s["rss_mib"] for s in samples),
    }


def measure_rounds(setup: str, bodies: dict[str, str]) -> dict[str, list[float]]:
    """Run every body once per round, rounds interleaved, so all see the same machine."""
    times: dict[str, list[float]] = {label: [] for label in bodies}
    for _ in range(REPEAT):
        for label, body in bodies.items():
            times[label].append(measure(setup, body, repeat=1)["seconds"])
    return times


def speedup_table(title: str, times: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    base = times["sequential"]
    for label, samples in times.items():
        ratios = sorted(b / t for b, t in zip(base, samples, strict=True))
        median = ratios[len(ratios) // 2]
        print(
            f"  {label:32} best {min(samples):7.3f} s  speedup: median of rounds {median:5.2f}x, "
            f"best/best {min(base) / min(samples):5.2f}x  (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


def curator_run(pipeline: str, backend: str, jobs: int, options: str = "{}") -> str:
    return (
        f"result = run({pipeline}, backend={backend!r}, jobs={jobs}, options={options}, "
        "reporter=None)\nassert result.ok"
    )


ORIGIN = """
from concurrent.futures import ProcessPoolExecutor, as_completed
indices = range(len(pipeline))
result_map = {}
with ProcessPoolExecutor(max_workers=2) as executor:
    futures = {executor.submit(workloads.run_index_packed, (pipeline, i)): i for i in indices}
    for future in as_completed(futures):
        result_map[futures[future]] = future.result()
outputs = [result_map[i] for i in indices]
"""

JOBLIB = """
from joblib import Parallel, delayed
outputs = Parallel(n_jobs=2, backend="loky", batch_size="auto")(
    delayed(workloads.run_index)(pipeline, i) for i in range(len(pipeline)))
"""


def table(title: str, rows: list[tuple[str, dict[str, float]]], base: str | None = None) -> None:
    print(f"\n{title}")
    reference = dict(rows)[base]["seconds"] if base else None
    for label, data in rows:
        extra = f"  {reference / data['seconds']:6.2f}x" if reference else ""
        print(f"  {label:48} {data['seconds']:9.3f} s  peak {data['rss_mib']:6.1f} MiB{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-origin", action="store_true", help="skip the slow origin design")
    parser.add_argument("--only", default="W1,MEM,W2,W5")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best counts")
    args = parser.parse_args()
    global REPEAT
    REPEAT = args.repeat
    only = set(args.only.split(","))
    print(
        f"Python {sys.version.split()[0]}, 2 workers, best of {REPEAT} fresh processes per figure"
    )

    if "W1" in only:
        setup = "pipeline = workloads.no_op(20_000, payload_bytes=1_000_000)\n"
        rows = [
            (
                "curator process-pool (forkserver, default)",
                measure(setup, curator_run("pipeline", "process-pool", 2)),
            ),
            (
                "curator process-pool (fork)",
                measure(
                    setup, curator_run("pipeline", "process-pool", 2, "{'start_method': 'fork'}")
                ),
            ),
            (
                "curator process-pool (spawn)",
                measure(
                    setup, curator_run("pipeline", "process-pool", 2, "{'start_method': 'spawn'}")
                ),
            ),
            ("joblib loky, batch_size='auto'", measure(setup, JOBLIB)),
            (
                "sequential (curator, jobs=1)",
                measure(setup, curator_run("pipeline", "sequential", 1)),
            ),
        ]
        if not args.skip_origin:
            rows.append(
                ("origin design (one future per item + pipeline)", measure(setup, ORIGIN, repeat=1))
            )
        table("W1: 20,000 no-op items, pipeline pickles to 1 MB", rows)
        mine = rows[0][1]["seconds"]
        for label, data in rows[1:]:
            print(f"  {label}: {data['seconds'] / mine:.2f}x the time of curator's default")

    if "MEM" in only:
        setup = "small = workloads.no_op(2_000)\nbig = workloads.no_op(200_000)\n"
        small = measure(setup, curator_run("small", "process-pool", 2))
        big = measure(setup, curator_run("big", "process-pool", 2))
        per_item = (big["seconds"] - small["seconds"]) / 198_000 * 1e6
        table(
            "MEM: no-op items on process-pool (default start method)",
            [("2,000 items", small), ("200,000 items", big)],
        )
        print(
            f"  marginal cost after start-up: {per_item:.2f} µs/item; parent peak RSS {big['rss_mib']:.1f} MiB"
        )

    if "W2" in only:
        # Calibrated once here, so every process runs the very same work.
        setup = f"pipeline = workloads.cpu(400, {workloads.loops_for(0.010)})\n"
        times = measure_rounds(setup, cpu_bodies())
        speedup_table("W2: 400 items x ~10 ms pure-Python CPU", times)

    if "W5" in only:
        setup = f"pipeline = workloads.cpu(200, {workloads.loops_for(0.005)}, slow_every=10, slow_factor=20)\n"
        times = measure_rounds(setup, cpu_bodies())
        speedup_table("W5: 200 items x ~5 ms, every tenth 20x longer", times)


def cpu_bodies() -> dict[str, str]:
    return {
        "sequential": curator_run("pipeline", "sequential", 1),
        "curator process-pool": curator_run("pipeline", "process-pool", 2),
        "joblib loky, batch_size='auto'": JOBLIB,
    }


if __name__ == "__main__":
    main()
