"""Per-item metrics: where an item's time and memory went, measured where it ran.

:class:`Meter` runs an item the way :meth:`curator.Pipeline.__getitem__`
does, with the time spent in each stage counted apart. Stages are lazy
generators that pull from each other, so each stage's output is wrapped in a
generator that adds up the time its ``next()`` takes; that time includes the
stages upstream, which are subtracted (the origin, physicsnemo-curator, times
its stages the same way). A stage that returns a list or another
non-iterator is left unwrapped, so measuring never changes what a stage
receives; its time then counts to the stage that consumes it.

Besides the stage times an item's :class:`Metrics` hold the CPU time of the
thread that ran it, the worker's peak resident memory at the end of the item
and how much the item raised it, and the peak GPU memory when a GPU library
was already in use in the worker (torch; it is never imported to find out).
All of it costs one ``getrusage`` call and a few reads of the wall clock
per item (see ``benchmarks/README.md``).

Metrics travel as a *row*: a tuple of floats, the stage seconds in pipeline
order, then :data:`FIELDS`. Backends that ship results in columns send rows;
:meth:`Metrics.from_row` makes the object again where someone reads it.
"""

from __future__ import annotations

import array
import itertools
import math
import resource
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curator.pipeline import Pipeline, refuse_items

FIELDS = ("cpu", "rss_peak", "rss_growth", "gpu_peak")
"""The values a row holds after the stage seconds, in order."""

MISSING = math.nan
"""What a row holds for a value that was not measured (``gpu_peak`` without a GPU)."""

_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
# Linux reports ru_maxrss in KiB (also for RUSAGE_THREAD: the process's peak), macOS in bytes.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024
_getrusage = resource.getrusage
_clock = time.perf_counter
_thread = threading.get_ident
_MODULES = sys.modules


@dataclass(frozen=True, slots=True)
class Metrics:
    """What one item cost where it ran.

    Attributes
    ----------
    stages
        Seconds spent in each stage, in pipeline order: the source, each
        filter, the sink (names in :attr:`curator.RunInfo.stages`). For a
        failed item, the stages after the one that raised spent nothing.
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

    stages: tuple[float, ...]
    cpu: float
    rss_peak: int
    rss_growth: int
    gpu_peak: int | None = None

    @classmethod
    def from_row(cls, row: Sequence[float]) -> Metrics | None:
        """The metrics in ``row`` (see the module docs), or ``None`` for a row of no item."""
        if not row or math.isnan(row[-4]):
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
            "stages": list(self.stages),
            "cpu": self.cpu,
            "rss_peak": self.rss_peak,
            "rss_growth": self.rss_growth,
            "gpu_peak": self.gpu_peak,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        """The inverse of :meth:`to_json`."""
        gpu = data.get("gpu_peak")
        return cls(
            tuple(float(s) for s in data["stages"]),
            float(data["cpu"]),
            int(data["rss_peak"]),
            int(data["rss_growth"]),
            None if gpu is None else int(gpu),
        )


def width(pipeline: Pipeline[Any]) -> int:
    """How many floats a row of ``pipeline``'s items holds."""
    return len(pipeline.filters) + 2 + len(FIELDS)


def empty_row(size: int) -> tuple[float, ...]:
    """A row of ``size`` floats that stands for no measurement."""
    return (MISSING,) * size


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


class Meter:
    """Measures the items a worker runs.

    :meth:`start` takes the readings of one item and returns them, :meth:`run`
    runs the item (and may raise: the item's failure), :meth:`stop` gives the
    row, whether the item ended ok or not. An item's readings are its own, so
    threads that share a meter (a Dask worker's) measure their items apart;
    the peak RSS is the process's, so its growth is since the last reading by
    any of them.

    Readings are system calls, so an item costs one: the ``getrusage`` that
    ends an item (CPU time and peak RSS at once) starts the next one of the
    same thread (what the worker does between two items, a few microseconds,
    counts to the later one). :meth:`rebase` starts afresh, after work that is
    no item's (a stage's ``setup``).
    """

    __slots__ = ("_last", "_rss", "_zeros", "stages", "width")

    def __init__(self, pipeline: Pipeline[Any]) -> None:
        self.stages = len(pipeline.filters) + 2
        self.width = self.stages + len(FIELDS)
        """Floats per row."""
        # Per stage k: spent[2k] is the time of its call, spent[2k + 1] the time the
        # next stage spent pulling items from it; the last two slots hold the GPU
        # library in use (or None) and the thread's CPU clock at the start.
        self._zeros: list[Any] = [0.0] * (2 * self.stages) + [None, 0.0]
        self._rss = _getrusage(_WHO).ru_maxrss
        self._last: tuple[int, float] | None = None  # (thread, CPU time) when an item ended

    def rebase(self) -> None:
        """Take fresh readings for the next item (after work that is no item's)."""
        self._last = None
        self._rss = _getrusage(_WHO).ru_maxrss

    def start(self) -> list[Any]:
        """Take the readings an item's metrics are measured from; pass them to the others."""
        spent = self._zeros.copy()
        if _MODULES.get("torch") is not None:
            gpu = spent[-2] = _gpu_in_use()
            if gpu is not None:
                gpu.reset_peak_memory_stats()
        last = self._last
        if last is not None and last[0] == _thread():
            spent[-1] = last[1]
        else:
            usage = _getrusage(_WHO)
            spent[-1] = usage.ru_utime + usage.ru_stime
        return spent

    def run(self, pipeline: Pipeline[Any], index: int, spent: list[Any]) -> Any:
        """Run ``pipeline[index]`` with each stage's time counted apart; return the sink's value."""
        sink = pipeline.sink
        if sink is None:
            return pipeline[index]  # raises the pipeline's own error
        position = pipeline.position(index)
        clock = _clock
        began = clock()
        try:
            items = pipeline.source[position]
        finally:
            spent[0] = clock() - began
        items = _timed(items, spent, 1, pipeline.source, 0, index)
        k = 2
        for number, stage in enumerate(pipeline.filters, 1):
            began = clock()
            try:
                items = stage(items)
            finally:
                spent[k] = clock() - began
            items = _timed(items, spent, k + 1, stage, number, index)
            k += 2
        began = clock()
        try:
            return sink(items, position)
        finally:
            spent[k] = clock() - began

    def stop(self, spent: list[Any]) -> tuple[float, ...]:
        """The row of the item whose readings :meth:`start` took."""
        usage = _getrusage(_WHO)
        now = usage.ru_utime + usage.ru_stime
        self._last = (_thread(), now)
        cpu = now - spent[-1]
        rss = usage.ru_maxrss
        before, self._rss = self._rss, rss
        # A stage ran during its own call and while the next stage pulled items
        # from it; the pulls it made from the stage before it are that stage's.
        row = [spent[0] + spent[1]]
        for k in range(2, len(spent) - 2, 2):
            own = spent[k] + spent[k + 1] - spent[k - 1]
            row.append(own if own > 0.0 else 0.0)
        gpu = MISSING
        if spent[-2] is not None:
            try:
                gpu = float(spent[-2].max_memory_allocated())
            except Exception:  # a GPU library in a bad state must not fail the item
                gpu = MISSING
        growth = rss - before
        row += (cpu, rss * _RSS_UNIT, growth * _RSS_UNIT if growth > 0 else 0, gpu)
        return tuple(row)


def _timed(items: Any, spent: list[float], k: int, stage: object, number: int, index: int) -> Any:
    """``items`` that ``stage`` handed on, with the time its ``next()`` takes added to ``spent[k]``.

    Only an iterator is wrapped: a list or tuple goes on as it is, so a stage
    that indexes what it receives behaves as without metrics. What is not
    iterable at all is that stage's error (see :func:`curator.pipeline.refuse_items`).
    """
    try:
        if iter(items) is not items:
            return items
    except TypeError:
        if hasattr(type(items), "__iter__"):
            raise  # an iterable whose __iter__ failed: its own error
        refuse_items(items, stage, number, index)
        raise  # refuse_items passed it: let the consuming stage say what is wrong
    return _timing(items, spent, k)


def _timing(items: Iterator[Any], spent: list[float], k: int) -> Iterator[Any]:
    clock = _clock
    pull = items.__next__
    while True:
        began = clock()
        try:
            item = pull()
        except StopIteration:
            spent[k] += clock() - began
            return
        except BaseException:
            spent[k] += clock() - began
            raise
        spent[k] += clock() - began
        yield item


def _gpu_in_use() -> Any:
    """``torch.cuda`` when torch is imported and has a CUDA context in this process, else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    cuda = getattr(torch, "cuda", None)
    try:
        return cuda if cuda is not None and cuda.is_initialized() else None
    except Exception:
        return None


@dataclass(frozen=True)
class StageSummary:
    """Seconds one stage took over the items that have metrics.

    ``p50`` and ``p95`` are nearest-rank percentiles.
    """

    stage: str
    items: int
    total: float
    mean: float
    p50: float
    p95: float
    max: float

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

    Rows of items without metrics (cancelled, crashed, skipped) are left out.
    """
    columns: list[list[float]] = [[] for _ in names]
    for row in rows:
        if not row or math.isnan(row[-4]):
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
    measured = flat[width - len(FIELDS) :: width]  # NaN: the item was not measured
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
