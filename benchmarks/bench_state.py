"""Stage state that merges back (issue 14): what the protocol costs per item.

Usage::

    python benchmarks/bench_state.py [--repeat 7] [--items 20000] [--checkpoint]

20,000 no-op items on process-pool with 2 warm workers (a ``Session``, so
start-up is not counted), three pipelines side by side in rounds: no filter,
a filter that counts items without the protocol, and the same filter as an
accumulating stage (``reset``/``state``/``merge``), whose count merges back
into the caller's object. The protocol's cost per item is the accumulating
run's time minus the plain counting run's, over the items (median of the
rounds). Target: under 5 µs/item. ``--checkpoint`` runs every contender with
a checkpoint (fresh file each run), where partials are also stored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import workloads

from curator import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--checkpoint", action="store_true")
    args = parser.parse_args()
    count = args.items
    source = workloads.NoOpSource(count)
    accumulating = workloads.Accumulating()
    contenders: dict[str, Any] = {
        "no filter": source.write(workloads.no_op_sink),
        "counting filter": source.filter(workloads.Counting()).write(workloads.no_op_sink),
        "accumulating filter": source.filter(accumulating).write(workloads.no_op_sink),
    }
    seconds: dict[str, list[float]] = {label: [] for label in contenders}
    with tempfile.TemporaryDirectory() as folder, Session("process-pool", jobs=2) as session:
        session.run(contenders["no filter"], reporter=None, checkpoint=False)  # warm up
        for round_number in range(args.repeat):
            for label, pipeline in contenders.items():
                checkpoint: Any = False
                if args.checkpoint:
                    checkpoint = Path(folder) / f"{round_number}-{label}.sqlite"
                start = time.perf_counter()
                result = session.run(pipeline, reporter=None, checkpoint=checkpoint)
                seconds[label].append(time.perf_counter() - start)
                assert result.ok
            assert accumulating.count == count, accumulating.count
    where = "with a checkpoint" if args.checkpoint else "no checkpoint"
    print(
        f"\n{count} no-op items, process-pool jobs=2 (warm session), {where}, {args.repeat} rounds"
    )
    base = seconds["counting filter"]
    for label, times in seconds.items():
        per_item = statistics.median(times) / count * 1e6
        print(f"  {label:20s} median {statistics.median(times):.3f} s  {per_item:.2f} µs/item")
    extra = [
        (a - b) / count * 1e6 for a, b in zip(seconds["accumulating filter"], base, strict=True)
    ]
    print(
        f"  protocol cost (accumulating - counting, per round): median "
        f"{statistics.median(extra):.2f} µs/item (rounds {', '.join(f'{e:.2f}' for e in extra)});"
        " target < 5"
    )


if __name__ == "__main__":
    main()
