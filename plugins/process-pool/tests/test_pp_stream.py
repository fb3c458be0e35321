"""``stream()`` on the process pool: workers stay within a few chunks of a slow consumer."""

from __future__ import annotations

import time
from pathlib import Path

from pp_pipelines import CountsStarts, Numbers

from curator import Status, run, stream
from curator.testing.probes import probe, settled

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


def test_a_stream_left_early_records_every_item_that_finished(tmp_path: Path) -> None:
    # Workers go on while the consumer holds its first outcome: what they finished is
    # handed over when the stream closes (ok, recorded), so a resume does not run it again.
    checkpoint = tmp_path / "run.sqlite"
    items = tmp_path / "items"  # the probe's run.* records, beside no run.sqlite
    items.mkdir()
    pipeline = probe(400, items)
    with stream(
        pipeline, backend="process-pool", jobs=2, checkpoint=checkpoint, reporter=None
    ) as outcomes:
        next(iter(outcomes))
        done = settled(items)
    assert len(done) > 1
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == len(done)
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == done
