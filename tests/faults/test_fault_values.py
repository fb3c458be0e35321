"""The fault campaign, part two: what items hand back and write, on every backend.

- results no pickler takes (a lock), results and stage partials only cloudpickle
  takes (instances of a class local to a function): a value the checkpoint
  cannot store fails its own item only (``UnpicklableResult``,
  ``UnpicklableState``), on every backend; the checkpoint records every outcome
  the run returned, and the stages' merged state only the ``ok`` items;
- bytes written to ``sys.stdout`` while capture is on (the default): the item's
  own ``TypeError``, as without capture; the run goes on.

Seeds, counts and the figures: ``campaign.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign import SEED, Pending, check_stages, record, rng, runs
from fault_target import build, rows

from curator import Registry, Status, run
from curator.checkpoint.catalog import read as report

pytestmark = pytest.mark.faults


def test_unpicklable_results_and_partials_fail_only_their_items(
    registry: Registry, pending: Pending, tmp_path: Path
) -> None:
    chance = rng("unpicklable")
    for number, backend in runs("unpicklable"):
        items = chance.randrange(20, 600 if backend != "dask" else 200)
        picked = chance.sample(range(items), 6)
        locks, local, local_state = (frozenset(picked[k : k + 2]) for k in (0, 2, 4))
        checkpoint, output = tmp_path / f"u{number}.sqlite", tmp_path / f"rows{number}.txt"
        stages = "tally+shards" if number % 2 == 0 else "tally"
        pipeline = build(items, stages, output, local_state, unpicklable_at=locks, local_at=local)
        what = f"unpicklable run {number} on {backend} (seed {SEED})"
        result = run(
            pipeline,
            backend=backend,
            jobs=1 if backend == "sequential" else 2,
            on_error="continue",
            checkpoint=checkpoint,
            reporter=None,
            registry=registry,
        )
        failed = {o.index: o.error.type for o in result.failures if o.error}
        # What the checkpoint cannot store (no pickler takes a lock; plain pickle, the
        # checkpoint's, no local class) fails its own item, on every backend.
        expected = dict.fromkeys(locks | local, "UnpicklableResult") | dict.fromkeys(
            local_state, "UnpicklableState"
        )
        assert failed == expected, f"{what}: failed {failed}, expected {expected}"
        recorded = report(checkpoint).counts
        counts = {"ok": items - len(failed), "failed": len(failed)}
        assert recorded == counts, f"{what}: recorded {recorded}, ran {counts}"
        ok = [o.index for o in result.outcomes if o.status is Status.OK]
        check_stages(
            pending,
            stages,
            list(pipeline.filters[0].seen),
            rows(output) if output.exists() else None,
            ok,
            what,
            shard_issues={"never ok": "25.1/25.2"},
        )
        record(f"unpicklable values ({backend})", 6, items)
    pending.settle()


def test_bytes_written_to_stdout_fail_only_their_items(registry: Registry) -> None:
    chance = rng("bytes")
    for number, backend in runs("bytes"):
        items = chance.randrange(20, 300)
        bad = frozenset(chance.sample(range(items), chance.randrange(1, 4)))
        what = f"bytes run {number} on {backend} (seed {SEED})"
        result = run(
            build(items, bytes_at=bad),
            backend=backend,
            jobs=1 if backend == "sequential" else 2,
            on_error="continue",
            reporter=None,
            registry=registry,
        )
        failed = {o.index: o.error.type for o in result.failures if o.error}
        assert failed == dict.fromkeys(bad, "TypeError"), f"{what}: {result.counts()}, {failed}"
        assert result.count(Status.OK) == items - len(bad), f"{what}: {result.counts()}"
        record(f"bytes to stdout ({backend})", len(bad), items)
