"""A checkpoint's runs on one axis of *running time*: the idle gaps between them taken out.

A checkpoint gathers the runs of one pipeline: a run interrupted in the
evening and its resume the next morning, say. Measured in wall time the
night would count as the run's (its throughput a fraction of what it was)
and squeeze both runs to the edges of a chart. :class:`RunningTime` maps
Unix times onto running time instead and says where the runs and the gaps
are (:class:`RunSpan`), for the report (:mod:`curator_report.model`) to mark them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from curator.checkpoint.recorded import RunRecord


@dataclass(frozen=True)
class RunSpan:
    """One run on the axis of running time.

    ``start`` and ``end`` are seconds of running time from the first item's
    start; ``idle_before`` is the wall time nothing ran before it (0 for the
    first run, and for a run that started while the one before was going).
    """

    run: int
    """The run's number in the checkpoint, from 1."""
    start: float
    end: float
    idle_before: float
    interrupted: bool


class RunningTime:
    """Unix times of a checkpoint's items as seconds of running time from the first one's start.

    Each run's span is what its record says (started, finished) widened to
    its items, an item belonging to the last run that started before it (a
    run that died has no finish: its items' end is its end). Spans that
    overlap merge into one *period*; the time between periods is idle.

    Parameters
    ----------
    started, finished
        The Unix times items started and finished, by row.
    rows
        The rows of the items shown (each index's latest outcome that ran).
    runs
        The checkpoint's runs, oldest first.
    """

    def __init__(
        self,
        started: Sequence[float],
        finished: Sequence[float],
        rows: Sequence[int],
        runs: Sequence[RunRecord],
    ) -> None:
        self.start = min((started[r] for r in rows), default=0.0)
        end = max((finished[r] for r in rows), default=self.start)
        self._begins: list[float] = []  # the Unix time each period begins
        self._ends: list[float] = []
        self._offsets: list[float] = []  # the running time at each period's begin
        self.spans: list[RunSpan] = []
        """The runs with an item shown, by start."""
        for number, begin, finish, interrupted in _run_walls(started, finished, rows, runs):
            begin, finish = max(begin, self.start), min(max(finish, begin), end)
            if self._ends and begin <= self._ends[-1]:  # overlaps the period before
                self._ends[-1] = max(self._ends[-1], finish)
                idle = 0.0
            else:
                idle = begin - self._ends[-1] if self._ends else 0.0
                self._offsets.append(self.seconds)
                self._begins.append(begin)
                self._ends.append(finish)
            self.spans.append(RunSpan(number, self(begin), self(finish), idle, interrupted))
        if not self._begins:  # no run recorded (or none with items): one period
            self._begins, self._ends, self._offsets = [self.start], [end], [0.0]
        self.idle = max(end - self.start - self.seconds, 0.0)
        """Wall seconds between the first start and the last end that no run was going."""

    @property
    def seconds(self) -> float:
        """The running time from the first item's start to the last one's end."""
        if not self._begins:
            return 0.0
        return self._offsets[-1] + self._ends[-1] - self._begins[-1]

    def __call__(self, wall: float) -> float:
        """``wall`` (Unix time) as seconds of running time from the first item's start."""
        period = max(bisect.bisect_right(self._begins, wall) - 1, 0)
        inside = min(max(wall, self._begins[period]), self._ends[period])
        return self._offsets[period] + inside - self._begins[period]


def _run_walls(
    started: Sequence[float],
    finished: Sequence[float],
    rows: Sequence[int],
    runs: Sequence[RunRecord],
) -> list[tuple[int, float, float, bool]]:
    """``(number, begin, end, interrupted)`` in Unix time of each run with an item shown."""
    starts = [record.started for record in runs]
    first = [math.inf] * len(runs)
    last = [-math.inf] * len(runs)
    for row in rows:
        began = started[row]
        number = max(bisect.bisect_right(starts, began) - 1, 0)
        first[number] = min(first[number], began)
        last[number] = max(last[number], finished[row])
    walls = []
    for number, record in enumerate(runs):
        if first[number] > last[number]:
            continue  # none of its items is shown (all ran again later, or none ran)
        ended = record.finished if record.finished is not None else last[number]
        begin, end = min(record.started, first[number]), max(ended, last[number])
        walls.append((number + 1, begin, end, record.interrupted))
    walls.sort(key=lambda wall: wall[1])
    return walls
