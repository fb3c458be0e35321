"""How a Dask run ends when a stage's teardown fails (a stream left early: kit StreamChecks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dask_pipelines import Flush

from curator import Status, TeardownError, run
from curator.testing.probes import Numbers, Probe


def test_a_teardown_that_raises_keeps_the_runs_outcomes(tmp_path: Path) -> None:
    pipeline = Numbers(6).filter(Flush()).write(Probe(str(tmp_path)))  # type: ignore[arg-type]
    with pytest.raises(TeardownError, match="flush failed") as caught:
        run(pipeline, backend="dask", jobs=2, reporter=None)
    result = caught.value.result
    assert result is not None
    assert result.count(Status.OK) == 6
