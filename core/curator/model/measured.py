"""The metrics rows of a run's kept outcomes, by position: sparse while few items have one.

Quick items are sampled (see :mod:`curator.observing.metrics`), so most
outcomes of a large run of small items carry no metrics. A dense array of
``NaN`` rows would cost the run's process ``8 * width`` bytes per item for
nothing (about 10 MB for 200,000 items), so rows are kept by position in a
dict and one flat array until a third of the positions have one; from then
on (``metrics="all"``, or slow items) a dense array is cheaper, and the rows
move into one.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from curator.model.measures import empty_row, rows_read

DENSE_SHARE = 3
"""Rows move into a dense array once more than one position in this many has one."""


class MeasuredRows:
    """Rows of ``width`` floats for some of ``count`` positions.

    Parameters
    ----------
    width
        Floats per row (:attr:`curator.model.plan.StagePlan.metric_width`).
    count
        How many positions there are.
    """

    __slots__ = ("_dense", "_flat", "_where", "count", "width")

    def __init__(self, width: int, count: int) -> None:
        self.width = width
        self.count = count
        self._where: dict[int, int] = {}  # position -> row number in _flat, while sparse
        self._flat = array("d")
        self._dense: array[float] | None = None

    def put(self, position: int, row: Sequence[float]) -> None:
        """Keep ``row`` (``width`` floats) for ``position``, replacing any row it had."""
        width = self.width
        dense = self._dense
        if dense is not None:
            dense[position * width : (position + 1) * width] = array("d", row)
            return
        number = self._where.get(position)
        if number is None:
            self._where[position] = len(self._flat) // width
            self._flat.extend(row)
            if len(self._where) * DENSE_SHARE > self.count:
                self._densify()
        else:
            self._flat[number * width : (number + 1) * width] = array("d", row)

    def put_rows(
        self, at: int, flat: Sequence[float], positions: Sequence[int] | None = None
    ) -> None:
        """Keep the rows in ``flat`` for positions ``at``, ``at + 1``, ...; ``NaN`` rows are none.

        A row is one when it holds a reading (:func:`~curator.model.measures.rows_read`).
        ``positions``: ``flat`` holds rows for these positions (after ``at``) only.
        """
        width = self.width
        if positions is not None:
            for k, position in enumerate(positions):
                self.put(at + position, flat[k * width : (k + 1) * width])
            return
        dense = self._dense
        if dense is not None:
            dense[at * width : at * width + len(flat)] = array("d", flat)
            return
        for k in rows_read(flat, width):
            self.put(at + k, flat[k * width : (k + 1) * width])

    def drop(self, position: int) -> None:
        """Forget the row of ``position``, if any."""
        width = self.width
        if self._dense is not None:
            self._dense[position * width : (position + 1) * width] = array("d", empty_row(width))
        else:
            self._where.pop(position, None)  # its floats stay in _flat, unreferenced

    def row(self, position: int) -> Sequence[float] | None:
        """The row of ``position``; ``None`` (sparse) or a ``NaN`` row (dense) when it has none."""
        width = self.width
        if self._dense is not None:
            return self._dense[position * width : (position + 1) * width]
        number = self._where.get(position)
        if number is None:
            return None
        return self._flat[number * width : (number + 1) * width]

    def present(self) -> dict[int, Sequence[float]]:
        """The rows that hold a reading, by position (what :meth:`row` reads as metrics)."""
        width = self.width
        dense = self._dense
        if dense is not None:
            return {p: dense[p * width : (p + 1) * width] for p in rows_read(dense, width)}
        flat = self._flat
        return {p: flat[n * width : (n + 1) * width] for p, n in self._where.items()}

    def rows(self) -> array[float]:
        """Every row one after another, in no particular order (``NaN`` rows: none)."""
        if self._dense is not None:
            return self._dense
        width, flat = self.width, self._flat
        if len(self._where) * width == len(flat):
            return flat
        kept = array("d")
        for number in self._where.values():
            kept.extend(flat[number * width : (number + 1) * width])
        return kept

    def _densify(self) -> None:
        width, flat = self.width, self._flat
        dense = array("d", empty_row(width)) * self.count
        for position, number in self._where.items():
            dense[position * width : (position + 1) * width] = flat[
                number * width : (number + 1) * width
            ]
        self._dense = dense
        self._where, self._flat = {}, array("d")
