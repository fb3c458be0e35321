"""The Dask backend on a 2-worker LocalCluster, cluster start-up excluded.

Usage::

    python benchmarks/bench_dask.py [--items 20000] [--repeat 5]

Needs ``pip install ./plugins/dask``. A LocalCluster (2 worker processes, one
thread each) is started once; each measurement is a ``curator.run`` against
its address, so the time covers connecting, scattering the pipeline,
dispatching and collecting, but not starting the cluster. For comparison, the
origin's approach of one Dask task per item is timed on a tenth of the items.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import workloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from curator import run

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    print(f"LocalCluster start-up: {time.perf_counter() - start:.2f} s (not counted below)")
    address = cluster.scheduler_address
    pipeline = workloads.no_op(args.items)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = run(pipeline, backend="dask", jobs=2, options={"address": address}, reporter=None)
        times.append(time.perf_counter() - start)
        assert result.ok
    print(
        f"curator dask backend, {args.items} no-op items: best {min(times):.3f} s, "
        f"all {', '.join(f'{t:.3f}' for t in times)}"
    )
    few = args.items // 10
    with Client(address) as client:
        start = time.perf_counter()
        futures = [client.submit(workloads.run_index, pipeline, i, pure=False) for i in range(few)]
        client.gather(futures)
        per_item = (time.perf_counter() - start) / few
    print(
        f"one Dask task per item (the origin's approach), {few} items: "
        f"{per_item * 1e3:.2f} ms per item, i.e. {per_item * args.items:.1f} s for {args.items}"
    )
    cluster.close()


if __name__ == "__main__":
    main()
