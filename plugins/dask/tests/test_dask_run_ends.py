"""How a Dask run ends when a stage's teardown fails or a stream is left early."""

from __future__ import annotations

from pathlib import Path

import pytest
from dask_pipelines import Flush

from curator import Status, TeardownError, run, stream
from curator.testing.probes import Numbers, Probe, probe, settled


def test_a_teardown_that_raises_keeps_the_runs_outcomes(tmp_path: Path) -> None:
    pipeline = Numbers(6).filter(Flush()).write(Probe(str(tmp_path)))  # type: ignore[arg-type]
    with pytest.raises(TeardownError, match="flush failed") as caught:
        run(pipeline, backend="dask", jobs=2, reporter=None)
    result = caught.value.result
    assert result is not None
    assert result.count(Status.OK) == 6


def test_a_stream_left_early_records_every_item_that_finished(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    items = tmp_path / "items"  # the probe's run.* records, beside no run.sqlite
    items.mkdir()
    pipeline = probe(200, items)
    with stream(pipeline, backend="dask", jobs=2, checkpoint=checkpoint, reporter=None) as outcomes:
        next(iter(outcomes))
        seen = settled(items, quiet=1.0)  # until the workers are held back
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == len(seen) > 1
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == seen
