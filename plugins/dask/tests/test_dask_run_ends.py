"""How a Dask run ends when a stage's teardown fails or a stream is left early."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dask_pipelines import Finishes, Flush

from curator import Status, TeardownError, run, stream
from curator.testing.probes import Numbers


def _done(folder: Path) -> set[int]:
    return {int(p.name[5:]) for p in folder.glob("done-*")}


def test_a_teardown_that_raises_keeps_the_runs_outcomes(tmp_path: Path) -> None:
    pipeline = Numbers(6).filter(Flush()).write(Finishes(str(tmp_path)))  # type: ignore[arg-type]
    with pytest.raises(TeardownError, match="flush failed") as caught:
        run(pipeline, backend="dask", jobs=2, reporter=None)
    result = caught.value.result
    assert result is not None
    assert result.count(Status.OK) == 6


def test_a_stream_left_early_records_every_item_that_finished(tmp_path: Path) -> None:
    checkpoint, folder = tmp_path / "run.sqlite", tmp_path / "done"
    folder.mkdir()
    pipeline = Numbers(200).write(Finishes(str(folder)))  # type: ignore[arg-type]
    with stream(pipeline, backend="dask", jobs=2, checkpoint=checkpoint, reporter=None) as outcomes:
        next(iter(outcomes))
        seen, since = _done(folder), time.monotonic()
        while time.monotonic() - since < 1.0:  # until the workers are held back
            time.sleep(0.05)
            if (now := _done(folder)) != seen:
                seen, since = now, time.monotonic()
    result = outcomes.result
    assert result is not None
    assert result.count(Status.OK) == len(seen) > 1
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == seen
