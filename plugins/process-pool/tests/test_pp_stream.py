"""``stream()`` on the process pool: workers stay within a few chunks of a slow consumer."""

from __future__ import annotations

import time
from pathlib import Path

from pp_pipelines import CountsStarts, Numbers, pipeline

from curator import Status, stream

CHUNK = 20


def test_a_slow_consumer_holds_the_workers_back(tmp_path: Path) -> None:
    tally = tmp_path / "started"
    tally.touch()
    jobs, taken, most_ahead = 2, 0, 0
    outcomes = stream(
        Numbers(4000).write(CountsStarts(str(tally))),
        backend="process-pool",
        jobs=jobs,
        options={"chunksize": CHUNK},
        reporter=None,
    )
    for _ in outcomes:
        taken += 1
        most_ahead = max(most_ahead, tally.stat().st_size - taken)
        if taken % 50 == 0:
            time.sleep(0.005)  # a slow consumer: the workers get time to run ahead
    assert taken == tally.stat().st_size == 4000
    # A worker holds at most two chunks (one running, one queued), and the run hands out
    # at most one chunk's outcomes at a time: memory does not grow with the item count.
    assert most_ahead <= 4 * CHUNK * jobs, most_ahead


def test_batches_hand_out_the_workers_chunks_as_columns() -> None:
    outcomes = stream(
        pipeline(3000, fail=frozenset({7, 2500})),
        backend="process-pool",
        jobs=2,
        options={"chunksize": CHUNK},
        on_error="continue",
        metrics="all",
        reporter=None,
    )
    indices: list[int] = []
    sizes: list[int] = []
    for batch in outcomes.batches():
        sizes.append(len(batch))
        indices += batch.indices()
        for outcome, value in zip(batch, batch.values(), strict=True):
            assert outcome.value == value
            if outcome.ok:
                assert value[0] == str(outcome.index)
                assert outcome.metrics is not None
                assert outcome.worker.startswith("process-")
    assert sorted(indices) == list(range(3000))  # each index exactly once
    assert max(sizes) >= CHUNK - 1  # a worker's chunk came as one batch, not item by item
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == 2998
    assert sorted(o.index for o in result.failures) == [7, 2500]
