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
per item (see ``benchmarks/README.md``): about 3 µs, more than a no-op item
itself. So by default quick items are sampled (see :class:`Meter`): every
item's wall time, status and output stay exact, an item that runs long or
fails is always read (its split by stage only if it was sampled), and a
worker whose unmeasured items grow memory or take a real share of the time
goes back to measuring every item.

The data it yields (:class:`Metrics`, rows, stage summaries) is defined in
:mod:`curator.model.measures` and importable from here too.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from curator.model.measures import (
    FIELDS,
    MISSING,
    Metrics,
    StageSummary,
    empty_row,
    format_bytes,
    stage_names,
    summarize,
    summarize_columns,
    width,
)
from curator.model.pipeline import Pipeline, refuse_items

__all__ = [
    "FIELDS",
    "MEMORY_STEP",
    "MISSING",
    "QUICK_SECONDS",
    "QUICK_STREAK",
    "SAMPLE_EVERY",
    "UNSPLIT_ITEMS",
    "UNSPLIT_RARITY",
    "UNSPLIT_SHARE",
    "Meter",
    "Metrics",
    "StageSummary",
    "empty_row",
    "format_bytes",
    "metric_sampling",
    "stage_names",
    "summarize",
    "summarize_columns",
    "width",
]

_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
# Linux reports ru_maxrss in KiB (also for RUSAGE_THREAD: the process's peak), macOS in bytes.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024
_getrusage = resource.getrusage
_clock = time.perf_counter
_thread = threading.get_ident
_MODULES = sys.modules

QUICK_SECONDS = 0.001
"""An item that took less (wall clock, from start to outcome) is *quick*: too short to matter."""
QUICK_STREAK = 8
"""Quick, ok items measured in full one after another before sampling starts."""
SAMPLE_EVERY = 32
"""While sampling, one item in this many is measured in full at first (the default ``every``)."""
SAMPLE_WIDENS_TO = 8
"""While items stay quick, the gap between measured ones doubles up to this many times ``every``.

A full reading costs a few microseconds, more than a no-op item: measuring one
in 256 of a long run of quick items keeps what the defaults cost such an item
near nothing, and still reads hundreds of them per 100,000."""
MEMORY_STEP = 16 << 20
"""Growth of the peak memory (bytes) that ends a streak, and seen after unmeasured items,
stops sampling: smaller steps come and go with a worker's own buffers."""
UNSPLIT_SHARE = 0.2
"""A meter stops sampling once long items that ran unmeasured took more than this share of
the time it has seen (their CPU time): stage summaries are not skewed by more."""
UNSPLIT_ITEMS = 3
"""...once that many such items ran, at least (one slow first item, warming up, is no trend)..."""
UNSPLIT_RARITY = 1000
"""...and once they are at least one in this many of the items it has seen.

Rarer ones are the worker's own hiccups, not slow items of the pipeline: a run
of no-op items sees a garbage collection of a few milliseconds now and then,
whose CPU time is a large share of microsecond items, and measuring every item
from then on would not split it by stage either."""


def metric_sampling(metrics: bool | str) -> int:
    """One item in how many a :class:`Meter` measures in full for the ``metrics`` setting.

    Raises
    ------
    ValueError
        For a setting other than ``True``, ``False`` and ``"all"``.
    """
    if metrics == "all":
        return 1
    if isinstance(metrics, bool | int) and metrics in (0, 1):  # 0 and 1 as Python reads them
        return SAMPLE_EVERY
    raise ValueError(
        f"metrics must be True (quick items sampled), 'all' (every item measured in full) or "
        f"False, not {metrics!r}"
    )


class Meter:
    """Measures the items a worker runs.

    :meth:`start` takes the readings of one item and returns them, :meth:`run`
    runs the item (and may raise: the item's failure), :meth:`stop` gives the
    row, whether the item ended ok or not. An item's readings are its own, so
    threads that share a meter (a Dask worker's) measure their items apart;
    the peak RSS is the process's, so its growth is since the last reading by
    any of them. When sampling, they may measure several items at once at the
    end of a stretch: the first to start stands for the stretch, and no other
    opens one until it ended.

    Readings are system calls, so an item costs one: the ``getrusage`` that
    ends an item (CPU time and peak RSS at once) starts the next one of the
    same thread (what the worker does between two items, a few microseconds,
    counts to the later one). :meth:`rebase` starts afresh, after work that is
    no item's (a stage's ``setup``).

    Sampling (``every`` > 1): once :data:`QUICK_STREAK` items in a row were
    measured quick (under :data:`QUICK_SECONDS`), ok and without raising the
    peak memory by :data:`MEMORY_STEP`, all but one in ``every`` items run without the stage clocks
    and the system call (:attr:`skip` says how many come next); each measured
    item that keeps the streak doubles that gap, up to :data:`SAMPLE_WIDENS_TO`
    times ``every`` (one in 256 by default). The streak
    ends, and every item is measured again until a new one builds, as soon
    as any item runs long or fails, or a measured one finds the peak memory
    raised that much. An unmeasured item that turns out long or failed gets a row at
    its end (:meth:`ended`): its CPU time (a lower bound, read from the
    last measured item of its thread; ``NaN`` when another thread measured
    last), the peak memory and its growth since the last
    reading; only its split by stage (``NaN``) is missing.

    So that the time without a split cannot skew where the time went, a meter
    stops sampling for good (``every`` becomes 1) once the long items that
    ran unmeasured used more than :data:`UNSPLIT_SHARE` of the time it has
    seen in CPU time (a measured item, or a long one that ends a stretch
    early, standing for the quick ones sampled out before it, each taken to
    last as long as the quick item measured before them),
    counting those that used :data:`QUICK_SECONDS` of it or more: an item
    held up by a thread switch is long without any stage being slow (for
    this, a long item's CPU time is not the bound in its row but an estimate,
    see :meth:`_late`); and
    only once :data:`UNSPLIT_ITEMS` such items ran and they are at least one
    in :data:`UNSPLIT_RARITY` of the items seen (a slow first item, a garbage
    collection now and then, is no slow stage). It also
    stops once the peak memory grew by :data:`MEMORY_STEP` or more while
    quick items ran unmeasured: that growth shows on the measured item that
    closes their stretch, and from then on every item is measured, so the
    next growth shows on the item that caused it. Growth that shows on a long
    or failed unmeasured item is on its row and only ends the streak: a quick
    item can hardly grow the peak that much, so that item most likely did.
    ``every=1`` measures every item in full.
    """

    __slots__ = (
        "_anchor", "_bare", "_closer", "_gap", "_items", "_last", "_long", "_rate", "_rss",
        "_sample", "_seen", "_streak", "_unsplit", "_weight", "_zeros", "every", "nothing", "quick",
        "skip", "stages", "width",
    )  # fmt: skip

    def __init__(self, pipeline: Pipeline[Any], every: int = SAMPLE_EVERY) -> None:
        self.stages = len(pipeline.filters) + 2
        self.width = self.stages + len(FIELDS)
        """Floats per row."""
        self.nothing = empty_row(self.width)
        """The row of an item that ran unmeasured (all ``NaN``), one object for all."""
        self.every = max(1, every)
        """One item in this many is measured in full while quick items are sampled."""
        self.quick = QUICK_SECONDS
        """Items shorter than this (seconds) are quick (:data:`QUICK_SECONDS`)."""
        self.skip = 0
        """How many of the next items run unmeasured: the caller counts it down, one per item."""
        self._streak = 0  # quick, ok, measured items in a row (sampling starts at QUICK_STREAK)
        self._gap = self.every  # one item in this many is measured next, while the streak lasts
        self._weight = 1  # items the next measured one stands for (it and those sampled out)
        self._bare = False  # items ran unmeasured since the last reading
        self._sample = 0.0  # seconds of the quick item measured before them: what each one took
        # CPU seconds the thread used per bare item of the last stretch, between items
        # included (negative: none yet): a long bare item's CPU is estimated with it.
        self._rate = -1.0
        # (thread, weight) of the measured item that closes the stretch, from its start on:
        # threads sharing the meter may measure several items at once, one stands for it.
        self._closer: tuple[int, int] | None = None
        self._seen = 0.0  # seconds of items seen, a measured one standing for those sampled out
        self._unsplit = 0.0  # seconds of long items that ran unmeasured
        self._items = 0  # items seen, a measured one standing for those sampled out
        self._long = 0  # long items that ran unmeasured
        self._anchor: tuple[int, float, float] | None = None  # _last, while items go unmeasured
        # Per stage k: spent[2k] is the time of its call, spent[2k + 1] the time the
        # next stage spent pulling items from it; the last two slots hold the GPU
        # library in use (or None) and the thread's CPU clock at the start.
        self._zeros: list[Any] = [0.0] * (2 * self.stages) + [None, 0.0]
        self._rss = _getrusage(_WHO).ru_maxrss
        # (thread, CPU time, wall clock) when an item ended
        self._last: tuple[int, float, float] | None = None

    def rebase(self) -> None:
        """Take fresh readings for the next item (after work that is no item's)."""
        self._last = None
        self._rss = _getrusage(_WHO).ru_maxrss

    def ended(
        self, row: tuple[float, ...] | None, seconds: float, ok: bool, due: bool = False
    ) -> Any:
        """The row to keep for an item that took ``seconds`` and ended ``ok`` or not.

        Called for every measured item (``row`` is what :meth:`stop` gave) and
        for an unmeasured one (``row`` is ``None``) that ran long or failed:
        that one gets its resource readings now. Either way, it decides how
        many of the next items run unmeasured (:attr:`skip`, see the class docs).

        ``due`` says that an unmeasured item was not one to run bare (the
        caller did not count it down from :attr:`skip`): it was due to be
        measured, and failed before its readings were taken.
        """
        if row is None:  # it ran unmeasured, and is long or failed
            bare, self._bare = self._bare, False
            # It ends its stretch early: the items before it ran bare too (the caller
            # counted each one down, and this one unless it was due to be measured).
            # They were quick, else they had ended the stretch: each took about what
            # the quick item measured before them did.
            ran = self._weight - max(0, self.skip) - (0 if due else 1) if bare else 1
            ran = max(1, ran)
            self._streak = self.skip = 0
            self._gap = self.every
            row, cpu = self._late(seconds, ran - 1, self._anchor if bare else self._last)
            self._anchor = None
            self._items += ran
            self._seen += (ran - 1) * self._sample
            # Counted by CPU time: an item held up by a thread switch, or by the worker's
            # own sender thread, ran long without any stage being slow.
            if seconds >= self.quick and cpu >= self.quick:
                self._unsplit += cpu
                self._long += 1
            elif cpu == cpu:  # NaN: another thread's readings, its share is not known
                self._seen += seconds
            if (
                self._unsplit > UNSPLIT_SHARE * (self._seen + self._unsplit)
                and self._long >= UNSPLIT_ITEMS
                and self._long * UNSPLIT_RARITY >= self._items
            ):
                self.every = 1  # see the class docs: from now on, every item in full
            return row
        closer = self._closer
        if closer is not None and closer[0] == _thread():  # it closes the stretch
            # It stands for the items sampled out before it. Those were quick (a long
            # one ends the stretch), each about as quick as the item measured before
            # them: a slow one here must not count them as slow too.
            self._closer = self._anchor = None
            weight = closer[1]
            self._seen += seconds + (weight - 1) * self._sample
            self._items += weight
            self._count_streak(row, seconds, ok)
            if row[-2] >= MEMORY_STEP:  # row[-2]: memory grew while items ran bare
                self.every = 1
        else:
            self._seen += seconds
            self._items += 1
            self._count_streak(row, seconds, ok)
        return row

    def failed(self) -> None:
        """An item read already (measured, or long) failed after all: its streak ends.

        For a per-item feature that fails an item once the item ended: the
        item counts once, but no bare items follow it. Those that other
        threads sharing the meter ran bare since count as seen.
        """
        self._end_streak()

    def _end_streak(self) -> None:
        """Measure every item again; the bare items of an open stretch that ran count as seen."""
        if self._bare:
            self._bare = False
            ran = self._weight - 1 - max(0, self.skip)
            self._items += ran
            self._seen += ran * self._sample
            self._anchor = None
        self._streak = self.skip = 0
        self._gap = self.every

    def _count_streak(self, row: tuple[float, ...], seconds: float, ok: bool) -> None:
        """After a measured item: how many of the next items run bare (:attr:`skip`)."""
        # row[-2]: memory growth; smaller steps come and go with the worker's own buffers.
        if ok and seconds < self.quick and not row[-2] >= MEMORY_STEP:
            streak = self._streak + 1
            # One stretch at a time: another thread's item may have opened or be closing one.
            if streak >= QUICK_STREAK and not self._bare and self._closer is None:
                streak = QUICK_STREAK
                every = self.every
                gap = self._gap if every > 1 else 1  # every == 1: sampling stopped for good
                self.skip = gap - 1
                self._weight = gap
                self._gap = min(2 * gap, SAMPLE_WIDENS_TO * every)
                last = self._last
                if self.skip:
                    self._bare = True
                    self._sample = seconds
                    if last is not None:  # the next measured item reads its own start
                        self._anchor, self._last = last, None
            self._streak = min(streak, QUICK_STREAK)
        else:
            self._end_streak()

    def _late(
        self, seconds: float, before: int, anchor: tuple[int, float, float] | None
    ) -> tuple[tuple[float, ...], float]:
        """The readings of an unmeasured item that ran long or failed: all but its stages.

        Its CPU time in the row is what the thread used since the last measured
        item ended (``anchor``), less all the wall time before this item began
        (the ``before`` quick items, and whatever the worker did between them):
        never more than what the item used, nor than its ``seconds``. Returned
        apart, for the sampling to decide by: that CPU time less what the
        thread used per bare item over the last whole stretch (between items
        included), if that is more. The bound alone comes to nothing once the
        thread waited for a core among those items, and a loaded machine would
        hide every long item; the estimate is of CPU time throughout, so an item
        that only waited does not turn long by it.
        """
        usage = _getrusage(_WHO)
        now = usage.ru_utime + usage.ru_stime
        thread = _thread()
        wall = _clock()
        cpu = guess = MISSING
        if anchor is not None and anchor[0] == thread:
            used = now - anchor[1]
            waited = (wall - anchor[2]) - seconds
            cpu = min(seconds, max(0.0, used - max(0.0, waited)))
            guess = cpu
            if before > 0 and self._rate >= 0.0:
                guess = min(seconds, max(cpu, used - before * self._rate))
        self._last = (thread, now, wall)
        return (MISSING,) * self.stages + (cpu, *self._memory(usage), MISSING), guess

    def _memory(self, usage: resource.struct_rusage) -> tuple[float, float]:
        """The peak memory in ``usage``, and how much it grew since the last reading (bytes)."""
        rss = usage.ru_maxrss
        before, self._rss = self._rss, rss
        growth = rss - before
        return rss * _RSS_UNIT, growth * _RSS_UNIT if growth > 0 else 0

    def start(self) -> list[Any]:
        """Take the readings an item's metrics are measured from; pass them to the others."""
        spent = self._zeros.copy()
        if _MODULES.get("torch") is not None:
            gpu = spent[-2] = _gpu_in_use()
            if gpu is not None:
                gpu.reset_peak_memory_stats()
        thread = _thread()
        closes = self._bare
        if closes:  # this item closes the stretch: it stands for the items in it
            self._bare = False
            self._closer = (thread, self._weight)
        last = self._last
        if last is not None and last[0] == thread:
            spent[-1] = last[1]
        else:
            usage = _getrusage(_WHO)
            spent[-1] = usage.ru_utime + usage.ru_stime
        anchor = self._anchor
        if closes and anchor is not None and anchor[0] == thread and self._weight > 1:
            self._rate = max(0.0, spent[-1] - anchor[1]) / (self._weight - 1)
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
        self._last = (_thread(), now, _clock())
        cpu = now - spent[-1]
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
        row += (cpu, *self._memory(usage), gpu)
        return tuple(row)


def _timed(items: Any, spent: list[float], k: int, stage: object, number: int, index: int) -> Any:
    """``items`` that ``stage`` handed on, with the time its ``next()`` takes added to ``spent[k]``.

    Only an iterator is wrapped: a list or tuple goes on as it is, so a stage
    that indexes what it receives behaves as without metrics. What is not
    iterable at all is that stage's error (see :func:`curator.model.pipeline.refuse_items`).
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
