"""A run's report, read from its checkpoint: the model that ``curator report`` renders.

The checkpoint is read column by column (:func:`curator.checkpoint.recorded.read_checkpoint`):
nothing is unpickled, no object is made per item, and a run still being
written can be read (SQLite's WAL lets one process read while another
writes). Everything shown is aggregated to a bounded size, so the report of
a million items is as large as that of a thousand: the timeline draws one
rectangle per item up to :data:`DRAWN_ITEMS` items, and beyond that the
share of each of :data:`TIME_BINS` time slices each worker spent busy.
Time is *running time*: the idle gaps between runs of one checkpoint (an
interrupted run and its resume the next morning) are taken out of the axis,
the wall time and the throughput, and marked as spans instead (see
:mod:`curator_report.running_time`).
Writers (HTML in :mod:`curator_report.html`, JSON, the terminal) only read
this model.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curator import Captured, ErrorInfo, StageSummary, Status
from curator.checkpoint.recorded import RecordedRun, read_checkpoint
from curator_report.running_time import RunningTime, RunSpan

DRAWN_ITEMS = 2000
"""Up to this many items, the timeline draws each one; beyond, busy shares per time slice."""
TIME_BINS = 240
"""Time slices of the aggregated timeline, and at most of the throughput curve."""
ITEMS_PER_RATE = 25
"""Finished items per throughput slice on average, at least: a smooth curve for short runs."""
DURATION_BINS = 30
"""Bars of the duration histogram (logarithmic)."""
LISTED = 20
"""Items listed as slowest and as most memory-hungry."""
LISTED_FAILURES = 100
"""Failures listed with their traceback and output."""

_STATUSES = list(Status)
_NEVER_RAN = (Status.SKIPPED, Status.CANCELLED)
_RAN = bytes(code for code, status in enumerate(_STATUSES) if status not in _NEVER_RAN)
_FAILED = bytes(code for code, status in enumerate(_STATUSES) if status.is_failure)


@dataclass(frozen=True)
class ItemLine:
    """One item in a list of the report (slowest, most memory, failures)."""

    index: int
    status: str
    worker: str
    started: float
    seconds: float
    attempt: int
    rss_peak: float | None = None
    rss_growth: float | None = None
    error: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None
    """What plugins' per-item features recorded for it (failures only)."""


@dataclass(frozen=True)
class Lane:
    """One worker's row of the timeline.

    ``items`` are ``(start, end, status)`` in seconds of running time from
    the report's start (see :class:`RunSpan`), when every item is drawn;
    otherwise ``busy`` holds the share of each time slice (of
    ``RunReport.bin_seconds``) the worker spent on items, and ``failed`` its
    failed items in the shape of ``items`` (at most :data:`DRAWN_ITEMS` over
    all lanes), so that failures still show.
    """

    worker: str
    count: int
    items: list[tuple[float, float, str]] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    failed: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RunReport:
    """What ``curator report`` shows of a checkpoint."""

    checkpoint: str
    pipeline: str
    state: str
    total: int
    counts: dict[str, int]
    runs: int
    start: float
    """Unix time the first recorded item started (0 with none)."""
    seconds: float
    """Running time: from the first item's start to the last one's end, less ``idle_seconds``."""
    idle_seconds: float
    """Wall time between runs when none was going (e.g. before a resume)."""
    spans: list[RunSpan]
    """The runs whose items the report shows, on the axis of running time."""
    generated: float
    lanes: list[Lane]
    drawn: bool
    """Whether the lanes hold every item, or busy shares per slice."""
    bin_seconds: float
    throughput: list[float]
    """Items finished per second in each of ``len(throughput)`` equal time slices."""
    durations: list[tuple[float, float, int]]
    """Histogram bars: ``(from seconds, to seconds, items)``."""
    stages: list[StageSummary]
    slowest: list[ItemLine]
    hungriest: list[ItemLine]
    failures: list[ItemLine]
    failures_total: int

    @property
    def recorded(self) -> int:
        """Items with an outcome in the checkpoint."""
        return sum(self.counts.values())

    @property
    def items_per_second(self) -> float:
        """Items that ran per second of running time."""
        ran = sum(lane.count for lane in self.lanes)
        return ran / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``curator report --json``."""
        data = asdict(self)
        data["stages"] = [stage.to_json() for stage in self.stages]  # a record, not a dataclass
        data["recorded"] = self.recorded
        data["items_per_second"] = self.items_per_second
        return data


def build(path: Path) -> RunReport:
    """Read the checkpoint at ``path`` into a :class:`RunReport`.

    Raises
    ------
    UsageError
        When there is no checkpoint there, it is not one, or it is damaged.
    """
    recorded = read_checkpoint(path)
    columns = recorded.columns
    rows = recorded.latest_rows()
    counts: dict[str, int] = {}
    for row in rows:
        status = _STATUSES[columns.codes[row]].value
        counts[status] = counts.get(status, 0) + 1
    ran = [row for row in rows if columns.codes[row] in _RAN]
    runs = recorded.runs
    clock = RunningTime(columns.started, columns.finished, ran, runs)
    seconds = clock.seconds
    bin_seconds = seconds / TIME_BINS if seconds > 0 else 1.0
    drawn = len(ran) <= DRAWN_ITEMS
    lanes = _lanes(recorded, ran, clock, bin_seconds, drawn)
    slices = max(1, min(TIME_BINS, len(ran) // ITEMS_PER_RATE))
    rate_seconds = seconds / slices if seconds > 0 else 1.0
    throughput = [0.0] * slices
    for row in ran:
        slot = min(int(clock(columns.finished[row]) / rate_seconds), slices - 1)
        throughput[slot] += 1.0 / rate_seconds
    failures = [r for r in rows if _STATUSES[columns.codes[r]].is_failure]
    return RunReport(
        checkpoint=str(path),
        pipeline=recorded.pipeline,
        state=recorded.state,
        total=recorded.total,
        counts=dict(sorted(counts.items())),
        runs=len(runs),
        start=clock.start,
        seconds=seconds,
        idle_seconds=clock.idle,
        spans=clock.spans,
        generated=time.time(),
        lanes=lanes,
        drawn=drawn,
        bin_seconds=bin_seconds,
        throughput=throughput,
        durations=_histogram([columns.finished[r] - columns.started[r] for r in ran]),
        stages=recorded.stage_summaries(ran),
        slowest=[
            _line(recorded, r)
            for r in heapq.nlargest(
                LISTED, ran, key=lambda r: columns.finished[r] - columns.started[r]
            )
        ],
        hungriest=_hungriest(recorded, ran),
        failures=[_line(recorded, r, detail=True) for r in failures[:LISTED_FAILURES]],
        failures_total=len(failures),
    )


def _lanes(
    recorded: RecordedRun, ran: list[int], clock: RunningTime, bin_seconds: float, drawn: bool
) -> list[Lane]:
    columns = recorded.columns
    by_worker: dict[int, list[int]] = {}
    for row in ran:
        by_worker.setdefault(columns.workers[row], []).append(row)

    def drawn_items(rows: list[int]) -> list[tuple[float, float, str]]:
        return [
            (clock(columns.started[r]), clock(columns.finished[r]),
             _STATUSES[columns.codes[r]].value)
            for r in rows
        ]  # fmt: skip

    lanes = []
    failures_left = DRAWN_ITEMS
    for number in sorted(by_worker, key=lambda n: _worker_order(columns.names[n])):
        mine = by_worker[number]
        name = columns.names[number]
        if drawn:
            lanes.append(Lane(name, len(mine), items=drawn_items(mine)))
            continue
        failed = [r for r in mine if columns.codes[r] in _FAILED][:failures_left]
        failures_left -= len(failed)
        busy = [0.0] * TIME_BINS
        for row in mine:
            begin, finish = clock(columns.started[row]), clock(columns.finished[row])
            slot = min(int(begin / bin_seconds), TIME_BINS - 1)
            while begin < finish and slot < TIME_BINS:
                edge = (slot + 1) * bin_seconds
                busy[slot] += min(finish, edge) - begin
                begin, slot = edge, slot + 1
        shares = [min(b / bin_seconds, 1.0) for b in busy]
        lanes.append(Lane(name, len(mine), busy=shares, failed=drawn_items(failed)))
    return lanes


def _worker_order(name: str) -> tuple[str, int]:
    """``process-2`` before ``process-10``."""
    stem, _, number = name.rpartition("-")
    return (stem, int(number)) if number.isdigit() else (name, -1)


def _histogram(durations: list[float]) -> list[tuple[float, float, int]]:
    positive = [d for d in durations if d > 0]
    if not positive:
        return []
    low, high = min(positive), max(positive)
    if high <= low * 1.0001:
        return [(low, high, len(positive))]
    ratio = math.log(high / low) / DURATION_BINS
    counts = [0] * DURATION_BINS
    for seconds in positive:
        counts[min(int(math.log(seconds / low) / ratio), DURATION_BINS - 1)] += 1
    return [
        (low * math.exp(ratio * k), low * math.exp(ratio * (k + 1)), count)
        for k, count in enumerate(counts)
    ]


def _hungriest(recorded: RecordedRun, ran: list[int]) -> list[ItemLine]:
    if not recorded.columns.width:
        return []
    metric = recorded.metric
    measured = [r for r in ran if metric(r, "rss_peak") is not None]
    top = heapq.nlargest(
        LISTED, measured, key=lambda r: (metric(r, "rss_growth") or 0.0, metric(r, "rss_peak"))
    )
    return [_line(recorded, r) for r in top]


def _json(entry: ErrorInfo | Captured | None) -> dict[str, Any] | None:
    return None if entry is None else entry.to_json()


def _line(recorded: RecordedRun, row: int, detail: bool = False) -> ItemLine:
    columns = recorded.columns
    return ItemLine(
        index=columns.indices[row],
        status=_STATUSES[columns.codes[row]].value,
        worker=columns.names[columns.workers[row]],
        started=columns.started[row],
        seconds=columns.finished[row] - columns.started[row],
        attempt=columns.attempts[row],
        rss_peak=recorded.metric(row, "rss_peak"),
        rss_growth=recorded.metric(row, "rss_growth"),
        error=_json(columns.errors.get(row)) if detail else None,
        output=_json(columns.printed.get(row)) if detail else None,
        extras=columns.extras.get(row) if detail else None,
    )
