"""Per-item metrics (issue 15): what measuring every item costs.

Usage::

    python benchmarks/bench_metrics.py [--repeat 9] [--items 20000] [--filters 1] [--checkpoint]
                                       [--feature metrics|capture]

20,000 no-op items on process-pool with 2 warm workers (a ``Session``, so
start-up is not counted), the same pipeline with ``metrics=True`` (the
default) and ``metrics=False``, side by side in rounds. The cost per item is
the measured run's time minus the unmeasured one's, over the items (median of
the rounds' differences). Target: at most 3 µs/item. ``--filters N`` puts N
pass-through filters between source and sink (each one more timed stage);
``--checkpoint`` runs both with a checkpoint (fresh file each run), where the
metrics are stored too. ``--feature capture`` compares ``capture=True`` and
``capture=False`` instead (metrics on in both): what capturing each item's
output costs when items print nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import workloads

from curator import Session


def passing(items: Iterator[Any]) -> Iterator[Any]:
    """A filter that passes every item on."""
    yield from items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--filters", type=int, default=0)
    parser.add_argument("--checkpoint", action="store_true")
    parser.add_argument("--feature", choices=("metrics", "capture"), default="metrics")
    args = parser.parse_args()
    count = args.items
    pipeline: Any = workloads.NoOpSource(count)
    for _ in range(args.filters):
        pipeline = pipeline.filter(passing)
    pipeline = pipeline.write(workloads.no_op_sink)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder, Session("process-pool", jobs=2) as session:
        session.run(pipeline, reporter=None, checkpoint=False)  # warm up
        for round_number in range(args.repeat):
            # Alternate which goes first, so a drifting machine favours neither.
            order = (True, False) if round_number % 2 == 0 else (False, True)
            for on in order:
                checkpoint: Any = False
                if args.checkpoint:
                    checkpoint = Path(folder) / f"{round_number}-{on}.sqlite"
                switch = {args.feature: on}
                start = time.perf_counter()
                result = session.run(pipeline, reporter=None, checkpoint=checkpoint, **switch)
                seconds[on].append(time.perf_counter() - start)
                assert result.ok
                if args.feature == "metrics":
                    assert (result.outcomes[0].metrics is not None) == on
    where = "with a checkpoint" if args.checkpoint else "no checkpoint"
    print(
        f"\n{count} no-op items, {args.filters} filter(s), process-pool jobs=2 (warm session), "
        f"{where}, {args.repeat} rounds"
    )
    for on, times in seconds.items():
        label = f"{args.feature} {'on' if on else 'off'}"
        per_item = statistics.median(times) / count * 1e6
        print(f"  {label:12s} median {statistics.median(times):.3f} s  {per_item:.2f} µs/item")
    extra = [(a - b) / count * 1e6 for a, b in zip(seconds[True], seconds[False], strict=True)]
    print(
        f"  {args.feature} cost (on - off, per round): median {statistics.median(extra):.2f} µs/item "
        f"(rounds {', '.join(f'{e:.2f}' for e in extra)})"
        + ("; target <= 3" if args.feature == "metrics" else "")
    )


if __name__ == "__main__":
    main()
