"""The kept metrics rows: sparse while few items are measured, dense once many are."""

from __future__ import annotations

import math
from array import array

from curator.model.measured import DENSE_SHARE, MeasuredRows

NAN = math.nan


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
