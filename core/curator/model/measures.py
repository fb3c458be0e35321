"""What an item cost where it ran, as data: :class:`Metrics`, rows of floats, stage summaries.

The measuring itself (:class:`curator.observing.metrics.Meter`) runs in the
worker; what it yields is part of every outcome and is read by the run's
table, the checkpoint and the reporters, so it lives with the outcomes.

Metrics travel as a *row*: a tuple of floats, the stage seconds in pipeline
order, then :data:`FIELDS`. Backends that ship results in columns send rows;
:meth:`Metrics.from_row` makes the object again where someone reads it.
"""

from __future__ import annotations

import array
import itertools
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from curator.model.pipeline import Pipeline
from curator.model.record import FrozenRecord

FIELDS = ("cpu", "rss_peak", "rss_growth", "gpu_peak")
"""The values a row holds after the stage seconds, in order."""

MISSING = math.nan
"""What a row holds for a value that was not measured (``gpu_peak`` without a GPU)."""


class Metrics(FrozenRecord):
    """What one item cost where it ran.

    Attributes
    ----------
    stages
        Seconds spent in each stage, in pipeline order: the source, each
        filter, the sink (names in :attr:`curator.RunInfo.stages`). For a
        failed item, the stages after the one that raised spent nothing.
        ``NaN`` for an item that ran unmeasured and then turned out long or
        failed (quick items are sampled, see :mod:`curator.observing.metrics`):
        it has the readings below, not its split by stage.
    cpu
        CPU seconds (user and system) of the thread that ran the item, as the
        kernel accounts them: exact in sum, but per item only to a scheduler
        tick (1 to 4 ms), so it tells a CPU-bound slow item from one that
        waited, not a 100 µs item from a 300 µs one. Work the item handed to
        other threads (a BLAS pool) is not counted.
    rss_peak
        The worker process's peak resident memory in bytes, at the end of the
        item: the item's own peak whenever the item raised it.
    rss_growth
        How many bytes the item raised the worker's peak by (0 when it stayed
        below an earlier item's peak).
    gpu_peak
        Peak GPU memory allocated while the item ran, in bytes, when a GPU
        library was in use in the worker; ``None`` otherwise.
    """

    _fields = ("stages", "cpu", "rss_peak", "rss_growth", "gpu_peak")
    __slots__ = _fields
    stages: tuple[float, ...]
    cpu: float
    rss_peak: int
    rss_growth: int
    gpu_peak: int | None

    def __init__(
        self,
        stages: tuple[float, ...],
        cpu: float,
        rss_peak: int,
        rss_growth: int,
        gpu_peak: int | None = None,
    ) -> None:
        self._set(stages, cpu, rss_peak, rss_growth, gpu_peak)

    def __eq__(self, other: object) -> bool:
        # NaN stands for "not measured" here, not for a failed sum: the same item's
        # metrics read twice must compare equal (float NaN never equals itself).
        if type(other) is not type(self):  # as Record compares: same class, same fields
            return NotImplemented
        return _comparable(self) == _comparable(other)

    def __hash__(self) -> int:  # type: ignore[override]  # Record: None, as mutable
        return hash(_comparable(self))

    @classmethod
    def from_row(cls, row: Sequence[float]) -> Metrics | None:
        """The metrics in ``row`` (see the module docs), or ``None`` for a row of no item."""
        if not row or math.isnan(row[-3]):  # no peak memory: nothing was read
            return None
        gpu = row[-1]
        return cls(
            tuple(row[:-4]),
            row[-4],
            int(row[-3]),
            int(row[-2]),
            None if math.isnan(gpu) else int(gpu),
        )

    def row(self) -> tuple[float, ...]:
        """These metrics as a row of floats."""
        gpu = MISSING if self.gpu_peak is None else float(self.gpu_peak)
        return (*self.stages, self.cpu, float(self.rss_peak), float(self.rss_growth), gpu)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``metrics`` of a ``task_finish`` event)."""
        return {
            "stages": [_number(s) for s in self.stages],
            "cpu": _number(self.cpu),
            "rss_peak": self.rss_peak,
            "rss_growth": self.rss_growth,
            "gpu_peak": self.gpu_peak,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        """The inverse of :meth:`to_json`."""
        gpu = data.get("gpu_peak")
        return cls(
            tuple(MISSING if s is None else float(s) for s in data["stages"]),
            MISSING if data["cpu"] is None else float(data["cpu"]),
            int(data["rss_peak"]),
            int(data["rss_growth"]),
            None if gpu is None else int(gpu),
        )


def _comparable(metrics: Metrics) -> tuple[Any, ...]:
    """``metrics``' fields with every NaN as ``None``, so that two unmeasured readings match."""
    return (
        tuple(map(_number, metrics.stages)),
        _number(metrics.cpu),
        metrics.rss_peak,
        metrics.rss_growth,
        metrics.gpu_peak,
    )


def _number(value: float) -> float | None:
    """``value`` for JSON: ``None`` for ``NaN`` (not measured), which JSON cannot hold."""
    return None if value != value else value


def width(pipeline: Pipeline[Any]) -> int:
    """How many floats a row of ``pipeline``'s items holds."""
    return len(pipeline.filters) + 2 + len(FIELDS)


def empty_row(size: int) -> tuple[float, ...]:
    """A row of ``size`` floats that stands for no measurement."""
    return (MISSING,) * size


def ascending_positions(positions: Sequence[int], count: int) -> bool:
    """Whether ``positions`` (not empty) rise strictly, each a position of ``count`` items.

    How a batch that carries rows for some items only names them: a worker's
    :class:`~curator.model.outcome.Successes` and a journal batch alike.
    """
    return (
        all(type(p) is int for p in positions)
        and positions[0] >= 0
        and positions[-1] < count
        and all(map(int.__lt__, positions, positions[1:]))
    )


def rows_read(flat: Sequence[float], width: int) -> Iterator[int]:
    """The numbers of the rows in ``flat`` (``width`` floats each) that hold a reading.

    A row holds one when its peak memory, read for every item measured at all,
    is a number (``NaN`` is the one value unequal to itself): picked in C, so
    that a batch of mostly sampled-out items costs no slice per item.
    """
    peaks = flat[width - 3 :: width]
    return itertools.compress(range(len(peaks)), map(operator.eq, peaks, peaks))


def format_bytes(size: float | None) -> str:
    """``1.2 GiB``, ``340 MiB``, ``-``: a byte count as people read it."""
    if size is None or math.isnan(size):
        return "-"
    sign, size = ("-" if size < 0 else ""), abs(size)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            amount = size / scale
            return f"{sign}{amount:.1f} {unit}" if amount < 10 else f"{sign}{amount:.0f} {unit}"
    return f"{sign}{size:.0f} B"


def stage_names(pipeline: Pipeline[Any]) -> tuple[str, ...]:
    """Names for the stages of ``pipeline``, in order, unique: ``source``, filters, ``sink``.

    A stage is named by its class (or function) name, with its role for the
    source and the sink: ``("Snapshots (source)", "Normalize", "Writer (sink)")``.
    A name that repeats gets ``#2``, ``#3``.
    """
    raw = [
        f"{_name(pipeline.source)} (source)",
        *(_name(f) for f in pipeline.filters),
        f"{_name(pipeline.sink)} (sink)",
    ]
    seen: dict[str, int] = {}
    names = []
    for name in raw:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return tuple(names)


def _name(stage: object) -> str:
    name = getattr(stage, "__qualname__", None)
    return name if isinstance(name, str) else type(stage).__qualname__


class StageSummary(FrozenRecord):
    """Seconds one stage took over the items that have metrics.

    ``p50`` and ``p95`` are nearest-rank percentiles.
    """

    _fields = ("stage", "items", "total", "mean", "p50", "p95", "max")
    __slots__ = _fields
    stage: str
    items: int
    total: float
    mean: float
    p50: float
    p95: float
    max: float

    def __init__(
        self, stage: str, items: int, total: float, mean: float, p50: float, p95: float, max: float
    ) -> None:
        self._set(stage, items, total, mean, p50, p95, max)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stage": self.stage,
            "items": self.items,
            "total": self.total,
            "mean": self.mean,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
        }


def summarize(names: Sequence[str], rows: Iterable[Sequence[float]]) -> list[StageSummary]:
    """Per-stage totals, means, percentiles and maxima over the measured ``rows``.

    Rows of items without metrics (cancelled, crashed, skipped) are left out,
    as are those without a split by stage (quick items sampled out).
    """
    columns: list[list[float]] = [[] for _ in names]
    for row in rows:
        if not row or math.isnan(row[0]):
            continue
        for column, seconds in zip(columns, row, strict=False):
            column.append(seconds)
    return [_summary(name, column) for name, column in zip(names, columns, strict=True)]


def summarize_columns(
    names: Sequence[str], flat: array.array[float], width: int, rows: Sequence[int] | None = None
) -> list[StageSummary]:
    """:func:`summarize` over rows held one after another in ``flat``, ``width`` floats each.

    ``rows``: the row numbers to summarize (all by default). Each stage's
    column is cut out of ``flat`` with one slice, so the work runs in C: a run
    of 200,000 items is summarized in milliseconds, not a second.
    """
    if not width:
        return summarize(names, ())
    columns = [flat[position::width] for position in range(len(names))]
    measured = flat[0::width]  # NaN: the item's stages were not measured
    if rows is not None:
        columns = [array.array("d", map(column.__getitem__, rows)) for column in columns]
        measured = array.array("d", map(measured.__getitem__, rows))
    keep = [value == value for value in measured]  # NaN is the one value unequal to itself
    if not all(keep):
        columns = [array.array("d", itertools.compress(column, keep)) for column in columns]
    return [_summary(name, sorted(column)) for name, column in zip(names, columns, strict=True)]


def _summary(name: str, values: list[float]) -> StageSummary:
    count = len(values)
    if not count:
        return StageSummary(name, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    values.sort()
    total = math.fsum(values)
    return StageSummary(
        name,
        count,
        total,
        total / count,
        _rank(values, 0.50),
        _rank(values, 0.95),
        values[-1],
    )


def _rank(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of the non-empty, sorted ``ordered``."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
