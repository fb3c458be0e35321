"""The kept metrics rows: sparse while few items are measured, dense once many are."""

from __future__ import annotations

import math
import sqlite3
from array import array
from contextlib import closing
from pathlib import Path

import pytest
from pipelines import Collect

from curator import Successes, UsageError, run
from curator.checkpoint import journal
from curator.checkpoint.latest import read_latest
from curator.model.measured import DENSE_SHARE, MeasuredRows
from curator.model.measures import Metrics
from curator.observing import metrics
from curator.running.ledger import Ledger
from curator.testing.probes import Numbers

NAN = math.nan
KEY = b"k" * 32


def row(n: float) -> tuple[float, ...]:
    return (n, n + 0.5, 1.0, 1000.0 + n, 0.0, 7.0)  # 2 stages, cpu, rss peak, growth, gpu


def test_a_few_rows_stay_sparse_and_read_back_by_position() -> None:
    rows = MeasuredRows(6, 300)
    for position in (7, 150, 299):
        rows.put(position, row(position))
    assert rows.row(7) == array("d", row(7))
    assert rows.row(8) is None
    assert rows._dense is None
    assert len(rows.rows()) == 3 * 6
    rows.put(150, row(1))  # replaced, not added
    assert rows.row(150) == array("d", row(1))
    rows.drop(7)
    assert rows.row(7) is None
    assert sorted(rows.rows()[3::6]) == [1001.0, 1299.0]


def test_rows_of_a_batch_skip_the_unmeasured_ones() -> None:
    rows = MeasuredRows(6, 100)
    flat = array("d", row(0) + (NAN,) * 6 + (NAN,) * 6 + row(3))
    rows.put_rows(10, flat)
    assert [p for p in range(100) if rows.row(p) is not None] == [10, 13]
    assert rows.row(13) == array("d", row(3))


def test_past_a_third_of_the_positions_the_rows_go_dense_and_read_the_same() -> None:
    count = 30
    rows = MeasuredRows(6, count)
    for position in range(count // DENSE_SHARE + 1):
        rows.put(position, row(position))
    assert rows._dense is not None
    assert [rows.row(p) for p in range(count // DENSE_SHARE + 1)] == [
        array("d", row(p)) for p in range(count // DENSE_SHARE + 1)
    ]
    assert math.isnan(rows.row(count - 1)[3])  # type: ignore[index]  # a dense NaN row
    rows.put_rows(20, array("d", row(20) + row(21)))
    assert rows.row(21) == array("d", row(21))
    rows.drop(21)
    assert math.isnan(rows.row(21)[3])  # type: ignore[index]
    assert len(rows.rows()) == count * 6


def test_a_batch_of_sampled_items_keeps_only_its_measured_rows_by_position() -> None:
    """A worker's batch may carry rows for some items only, with their positions."""
    rows = MeasuredRows(6, 100)
    rows.put_rows(10, array("d", row(1) + row(4)), [1, 4])
    assert [p for p in range(100) if rows.row(p) is not None] == [11, 14]
    assert rows.row(14) == array("d", row(4))


# -- the journal: sampled rows stored sparsely -------------------------------------------


def _batch(count: int, measured: dict[int, float], *, positions: bool = True) -> Successes:
    """``count`` ok items; those in ``measured`` have a row (sparse, or dense NaN rows)."""
    flat = array("d")
    if positions:
        for position in sorted(measured):
            flat.extend(row(measured[position]))
    else:
        for position in range(count):
            flat.extend(row(measured[position]) if position in measured else (NAN,) * 6)
    return Successes(
        "w", list(range(count)), [0.0] * count, [1.0] * count, [[]] * count, 1,
        flat if measured else None, measured=sorted(measured) if positions else None,
    )  # fmt: skip


def _stored(row_values: tuple[object, ...]) -> dict[int, object]:
    """The metrics of each item of one encoded batch, read back as a reader does."""
    return {record[0]: record[8] for record in journal.decode(row_values, None, Path("cp.sqlite"))}


def test_the_journal_stores_only_the_rows_of_measured_items() -> None:
    batch = _batch(10, {2: 2.0, 7: 7.0})
    stored = journal.encode([batch], KEY)
    column = dict(zip(journal.COLUMNS, stored, strict=True))
    assert column["measured"] == array("q", [2, 7]).tobytes()
    assert len(column["sampled"]) == 2 * 6 * 8, "two rows, not ten"
    assert column["metrics"] is None, "an older curator reads no metrics, never wrong ones"
    metrics = _stored(stored)
    assert [i for i, m in metrics.items() if m is not None] == [2, 7]
    assert metrics[7] == Metrics.from_row(row(7.0))


def test_a_batch_measured_in_full_is_stored_as_a_row_per_item() -> None:
    stored = journal.encode([_batch(3, {0: 0.0, 1: 1.0, 2: 2.0})], KEY)
    column = dict(zip(journal.COLUMNS, stored, strict=True))
    assert column["measured"] is column["sampled"] is None  # as an older release wrote it
    assert len(column["metrics"]) == 3 * 6 * 8
    assert _stored(stored)[2] == Metrics.from_row(row(2.0))


def test_dense_rows_with_nan_for_unmeasured_items_still_read() -> None:
    """Checkpoints written before the measured column hold a NaN row per unmeasured item."""
    dense = journal.encode([_batch(5, {1: 1.0, 3: 3.0}, positions=False)], KEY)
    sparse = journal.encode([_batch(5, {1: 1.0, 3: 3.0})], KEY)
    assert dense[-2] is not None, "read from NaN rows, the positions are stored"
    older = (*dense[:-3], _dense_rows(5, {1: 1.0, 3: 3.0}), None, None)
    assert _stored(older) == _stored(sparse)
    assert [i for i, m in _stored(older).items() if m is not None] == [1, 3]


def _dense_rows(count: int, measured: dict[int, float]) -> bytes:
    flat = array("d")
    for position in range(count):
        flat.extend(row(measured[position]) if position in measured else (NAN,) * 6)
    return flat.tobytes()


@pytest.mark.parametrize(
    ("positions", "why"),
    [
        ([7, 2], "not ascending"),
        ([2, 2], "not ascending"),
        ([2, 10], "not ascending positions"),
        ([-1, 2], "not ascending positions"),
        ([2, 7], "does not split"),
        ([], "does not split"),
    ],
)
def test_measured_positions_that_do_not_fit_the_batch_are_damage(
    positions: list[int], why: str
) -> None:
    stored = list(journal.encode([_batch(10, {2: 2.0, 7: 7.0})], KEY))
    stored[-2] = array("q", positions).tobytes()
    if why == "does not split":
        stored[-1] = stored[-1][: 11 * 8]  # 11 floats: not two rows
    with pytest.raises(UsageError, match=r"cp\.sqlite.*a journal batch cannot be read"):
        _stored(tuple(stored))


def test_the_ledger_takes_sparse_rows_and_refuses_positions_that_do_not_fit() -> None:
    ledger = Ledger(range(10), keep=True, metric_width=6)
    assert ledger.record_successes(_batch(10, {2: 2.0, 7: 7.0})) is None
    table = ledger.table(0.0)
    measured = {o.index: o.metrics for o in table if o.metrics is not None}
    assert measured == {2: Metrics.from_row(row(2.0)), 7: Metrics.from_row(row(7.0))}
    cases = [
        ([7, 2], "not ascending"),
        ([2, 10], "not ascending"),
        ([2, 4, 7, 8, 9], "do not split into one row per measured position"),
    ]
    for positions, why in cases:
        broken = _batch(10, {2: 2.0, 7: 7.0})
        broken.measured = positions
        assert why in (Ledger(range(10)).record_successes(broken) or "")


def test_a_batch_of_sparse_rows_hands_out_each_items_metrics() -> None:
    outcomes = list(_batch(4, {0: 0.0, 3: 3.0}))
    assert [o.metrics is not None for o in outcomes] == [True, False, False, True]
    assert outcomes[3].metrics == Metrics.from_row(row(3.0))


def test_a_sampled_run_stores_exactly_the_metrics_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: what the run measured is what the checkpoint holds, item by item."""
    # Every item quick: on a loaded machine no-op items held up a millisecond by a
    # thread switch end the streak (8 items measured each time), which this test is not about.
    monkeypatch.setattr(metrics, "QUICK_SECONDS", 60.0)
    store = tmp_path / "cp.sqlite"
    result = run(Numbers(400).write(Collect()), checkpoint=store, reporter=None)
    measured = {o.index for o in result.outcomes if o.metrics is not None}
    assert 0 < len(measured) < 200, "quick items were sampled"
    stored = read_latest(store)
    assert {i for i, r in stored.items() if r.metrics is not None} == measured
    some = min(measured)
    assert stored[some].metrics == result.outcomes[some].metrics
    with closing(sqlite3.connect(store)) as db:
        kept = [m for (m,) in db.execute("SELECT measured FROM journal") if m is not None]
    assert kept, "batches of sampled items store their measured positions"
