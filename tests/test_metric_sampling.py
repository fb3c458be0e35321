"""Metrics that cost nothing: quick items sampled, the long, failed and memory-hungry still read."""

from __future__ import annotations

import gc
import math
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from core_support import curator

import curator.observing.metrics as metrics_module
from curator import Pipeline, Sink, Status, UsageError, Work, run
from curator.observing.metrics import (
    QUICK_STREAK,
    SAMPLE_EVERY,
    SAMPLE_WIDENS_TO,
    UNSPLIT_ITEMS,
    UNSPLIT_RARITY,
)
from curator.observing.reporters.summary import format_summary
from curator.testing.probes import Numbers, Tally


class Fails(Sink[int]):
    """Returns at once; raises for the indices in ``bad``."""

    def __init__(self, bad: frozenset[int] = frozenset()) -> None:
        self.bad = bad

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index in self.bad:
            raise ValueError(f"bad item {index}")
        return []


@pytest.fixture
def every_item_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No item counts as long by accident (a loaded machine): the schedule is exact."""
    monkeypatch.setattr(metrics_module, "QUICK_SECONDS", 60.0)


def measured_by(
    work: Work,
    count: int,
    long: frozenset[int] = frozenset(),
    took: float = 0.0,
    offset: int = 0,
) -> list[bool | None]:
    """For indices ``offset`` on: True measured in full, False read at its end only, None not.

    An item "takes" ``took`` seconds, and those in ``long`` an hour, by starting that
    far back (the meter reads an item's time from its start).
    """
    kinds: list[bool | None] = []
    for index in range(offset, offset + count):
        started = time.time() - (3600.0 if index in long else took)
        work.run_index(index, started)
        row = work.measured
        assert row is not None
        if row is work.meter.nothing:  # type: ignore[union-attr]
            kinds.append(None)
        else:
            assert not math.isnan(row[-3]), row  # a row that is given has its peak memory
            kinds.append(not math.isnan(row[0]))
    return kinds


def gaps(every: int, count: int) -> list[int]:
    """The gaps between measured items once sampling starts: doubling up to the widest."""
    widths = [min(every << k, SAMPLE_WIDENS_TO * every) for k in range(count)]
    assert widths[-1] == SAMPLE_WIDENS_TO * every  # the schedule reaches its widest
    return widths


@pytest.mark.usefixtures("every_item_quick")
def test_after_a_streak_of_quick_items_one_in_sample_every_is_measured_then_fewer() -> None:
    work = Work(Pipeline(Numbers(5000)).write(Fails()))
    schedule = gaps(SAMPLE_EVERY, 6)
    kinds = measured_by(work, QUICK_STREAK + sum(schedule))
    assert kinds[:QUICK_STREAK] == [True] * QUICK_STREAK
    expected: list[bool | None] = []
    for gap in schedule:  # 32, 64, 128, 256, 256, 256
        expected += [None] * (gap - 1) + [True]
    assert kinds[QUICK_STREAK:] == expected


@pytest.mark.usefixtures("every_item_quick")
def test_a_failed_item_narrows_the_gap_again() -> None:
    work = Work(Pipeline(Numbers(5000)).write(Fails(frozenset({2000}))))
    kinds = measured_by(work, 2001)
    assert kinds[2000] is False  # read at its end
    after = measured_by(work, QUICK_STREAK + SAMPLE_EVERY, offset=2001)
    assert after == [True] * QUICK_STREAK + [None] * (SAMPLE_EVERY - 1) + [True]


@pytest.mark.usefixtures("every_item_quick")
def test_all_measures_every_item_in_full() -> None:
    work = Work(Pipeline(Numbers(200)).write(Fails()), metrics="all")
    assert measured_by(work, 100) == [True] * 100


def test_a_long_item_in_a_sampled_stretch_is_read_and_ends_the_sampling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Quick" is under two hours here, and each item takes a minute: the hour of the
    # long one below is a small share of the time seen, so sampling goes on after it.
    monkeypatch.setattr(metrics_module, "QUICK_SECONDS", 7200.0)
    work = Work(Pipeline(Numbers(5000)).write(Fails()))
    assert measured_by(work, QUICK_STREAK + 64 * SAMPLE_EVERY + 3, took=60.0)[-3:] == [None] * 3
    # Item 0 of the next stretch ran long: its readings are taken at its end.
    monkeypatch.setattr(work.meter, "quick", 3000.0)  # an hour is long, a minute is not
    kinds = measured_by(work, QUICK_STREAK + 2, long=frozenset({0}), took=60.0)
    assert kinds[0] is False
    # Then every item is measured until a new streak built up.
    assert kinds[1 : 1 + QUICK_STREAK] == [True] * QUICK_STREAK
    assert kinds[1 + QUICK_STREAK] is None


@pytest.mark.usefixtures("every_item_quick")
def test_a_failed_item_in_a_sampled_stretch_is_read_and_ends_the_sampling() -> None:
    work = Work(Pipeline(Numbers(200)).write(Fails(bad=frozenset({QUICK_STREAK + 2}))))
    kinds = measured_by(work, 2 * QUICK_STREAK + 4)
    assert kinds[QUICK_STREAK : QUICK_STREAK + 2] == [None, None]
    assert kinds[QUICK_STREAK + 2] is False  # the failure: readings, no split by stage
    assert kinds[QUICK_STREAK + 3 : 2 * QUICK_STREAK + 3] == [True] * QUICK_STREAK
    assert kinds[2 * QUICK_STREAK + 3] is None


@pytest.mark.usefixtures("every_item_quick")
def test_an_outcome_of_a_sampled_out_item_has_no_metrics_and_its_own_times() -> None:
    result = run(Pipeline(Numbers(100)).write(Fails(bad=frozenset({50}))), reporter=None,
                 on_error="continue")  # fmt: skip
    kinds = [o.metrics is not None for o in result.outcomes]
    assert kinds[:QUICK_STREAK] == [True] * QUICK_STREAK
    assert 0 < sum(kinds) < 100
    failed = result.outcomes[50]
    assert failed.status is Status.FAILED
    assert failed.metrics is not None  # read whether it was sampled or not
    assert all(o.finished >= o.started > 0 for o in result.outcomes)
    # The stage summary counts the items measured by stage, not the rest.
    split = sum(o.metrics is not None and not math.isnan(o.metrics.stages[0])
                for o in result.outcomes)  # fmt: skip
    assert [s.items for s in result.stage_summary()] == [split, split]
    assert all(math.isfinite(s.total) for s in result.stage_summary())
    assert f"(over the {split} of 100 items measured by stage)" in format_summary(result)


def test_metrics_takes_true_false_or_all_and_says_so() -> None:
    with pytest.raises(UsageError, match=r"metrics must be True .* 'all' .* or False, not 'some'"):
        run(Pipeline(Numbers(3)).write(Fails()), reporter=None, metrics="some")  # type: ignore[arg-type]


def test_all_metrics_on_the_command_line_is_remembered_for_the_resume(tmp_path: Path) -> None:
    first = curator("run", "pipelines:fails_at_3", "--indices", "0:5", "--all-metrics",
                    cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1, first.stderr
    again = curator("run", "pipelines:fails_at_3", "--resume", cwd=tmp_path)
    assert "resuming with the last run's settings: --indices 0:5 --all-metrics" in again.stderr


def spin(seconds: float) -> None:
    """Busy for ``seconds`` of CPU (and wall) time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


class Busy(Sink[int]):
    """Spins ``seconds`` of CPU for the indices in ``busy``; returns at once for the rest."""

    def __init__(self, busy: frozenset[int], seconds: float = 0.03) -> None:
        self.busy = busy
        self.seconds = seconds

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index in self.busy:
            spin(self.seconds)
        return []


def sampled_stretch(work: Work, offset: int) -> int:
    """Run quick items from ``offset`` until one runs bare (a streak built); the next index."""
    for _ in range(QUICK_STREAK + 1):
        kinds = measured_by(work, 1, offset=offset)
        offset += 1
        if kinds == [None]:
            return offset
    raise AssertionError("no item ran bare: the meter does not sample")


def long_bare_item(work: Work, busy: set[int], offset: int) -> int:
    """Run item ``offset`` long (the sink spins for it) and bare: read at its end; the next index.

    Long against "quick" set back to a millisecond for it alone: the other items
    stay quick on a loaded machine too.
    """
    assert work.meter is not None
    busy.add(offset)
    work.pipeline.sink.busy = frozenset(busy)  # type: ignore[attr-defined]
    work.meter.quick = 0.001
    assert measured_by(work, 1, offset=offset) == [False]  # it ran bare: read at its end
    work.meter.quick = 60.0
    return offset + 1


@pytest.mark.usefixtures("every_item_quick")
def test_a_worker_whose_long_bare_items_use_a_real_share_of_cpu_measures_every_item() -> None:
    """Else where the time went would leave the slow items out: a biased sample.

    It takes UNSPLIT_ITEMS of them: one slow item (the first, warming up) is no trend.
    """
    busy: set[int] = set()
    work = Work(Pipeline(Numbers(10_000)).write(Busy(frozenset())))
    assert work.meter is not None
    offset = 0
    for seen in range(1, UNSPLIT_ITEMS + 1):
        offset = sampled_stretch(work, offset)
        offset = long_bare_item(work, busy, offset)  # 30 ms of CPU, against microseconds
        assert (work.meter.every == 1) is (seen == UNSPLIT_ITEMS)
    assert measured_by(work, 3 * SAMPLE_EVERY, offset=offset) == [True] * (3 * SAMPLE_EVERY)


@pytest.mark.usefixtures("every_item_quick")
def test_rare_long_items_among_many_quick_ones_do_not_stop_the_sampling() -> None:
    """A garbage collection now and then: fewer than one in UNSPLIT_RARITY items."""
    work = Work(Pipeline(Numbers(100_000)).write(Busy(frozenset(), seconds=0.002)))
    assert work.meter is not None
    offset, busy = 0, set[int]()
    for _ in range(UNSPLIT_ITEMS + 1):
        measured_by(work, UNSPLIT_RARITY, offset=offset)  # a thousand quick items first
        offset = sampled_stretch(work, offset + UNSPLIT_RARITY)
        offset = long_bare_item(work, busy, offset)
    # Their CPU is far more than a fifth of the microseconds seen, but they are rare.
    assert work.meter.every == SAMPLE_EVERY
    after = measured_by(work, QUICK_STREAK + SAMPLE_EVERY, offset=offset)
    assert after.count(True) < QUICK_STREAK + SAMPLE_EVERY  # still sampling


def test_the_stage_summary_of_a_mix_of_quick_and_slow_items_is_not_skewed() -> None:
    """Every 25th item spends 5 ms in a filter: sampled, the filter's share stays about right."""
    from curator import Filter

    class Heavy(Filter[int]):
        def __call__(self, items: Iterator[int]) -> Iterator[int]:
            for item in items:
                if item % 25 == 0:
                    spin(0.005)
                yield item

    # A garbage collection of the test process's heap (tens of ms) would count to
    # whichever stage allocated at the time: real time, but not what is tested here.
    gc.disable()
    try:
        result = run(Pipeline(Numbers(500)).filter(Heavy()).write(Fails()), reporter=None)
    finally:
        gc.enable()
    totals = [s.total for s in result.stage_summary()]  # source, Heavy, sink
    assert totals[1] / sum(totals) > 0.9, totals  # 20 items x 5 ms against 500 no-op items


@pytest.mark.usefixtures("every_item_quick")
def test_a_feature_that_fails_a_bare_item_gets_it_read() -> None:
    from curator.observing.features import ItemFeature

    class Picky(ItemFeature):
        name = "picky"

        def end(self, index: int, token: object, ok: bool) -> None:
            if index == QUICK_STREAK + 2:
                raise RuntimeError("not this one")

    work = Work(Pipeline(Numbers(200)).write(Fails()), features=(Picky(),))
    kinds = measured_by(work, QUICK_STREAK + 3)
    assert kinds[QUICK_STREAK + 1] is None  # bare, quick, ok
    assert kinds[QUICK_STREAK + 2] is False  # bare, failed by the feature: read at its end


def above_the_peak(extra: int) -> int:
    """Bytes to allocate now to raise this process's peak memory by ``extra``."""
    page = resource.getpagesize()
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * page
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max(0, peak - resident) + extra


@pytest.mark.usefixtures("every_item_quick")
def test_memory_that_grows_while_items_run_bare_ends_the_sampling_for_good() -> None:
    kept: list[bytes] = []

    class Hoards(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            for _ in items:
                pass
            if index == QUICK_STREAK + 1:  # bare: its growth shows on the next item read
                kept.append(b"x" * above_the_peak(64 << 20))
            return []

    work = Work(Pipeline(Numbers(400)).write(Hoards()))
    assert work.meter is not None
    kinds = measured_by(work, QUICK_STREAK + SAMPLE_EVERY + 2 * SAMPLE_EVERY)
    assert kinds[QUICK_STREAK + 1] is None
    assert work.meter.every == 1
    first = kinds.index(True, QUICK_STREAK)  # the next item read, which shows the growth
    assert kinds[first:] == [True] * (len(kinds) - first)


@pytest.mark.usefixtures("every_item_quick")
@pytest.mark.parametrize("ends_the_stretch", ["long", "failed"])
def test_growth_that_shows_on_a_long_or_failed_bare_item_is_on_its_row_and_ends_the_streak(
    ends_the_stretch: str,
) -> None:
    """The item read is most likely the one that grew it (a quick one hardly can): one long
    item that loads a table must not cost the rest of a run of millions its sampling."""
    kept: list[bytes] = []
    closer = QUICK_STREAK + 2

    class Hoards(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            for _ in items:
                pass
            if index == closer:
                kept.append(b"x" * above_the_peak(64 << 20))
                if ends_the_stretch == "failed":
                    raise ValueError("bad item")
            return []

    work = Work(Pipeline(Numbers(400)).write(Hoards()))
    assert work.meter is not None
    long = frozenset({closer}) if ends_the_stretch == "long" else frozenset()
    assert measured_by(work, closer)[QUICK_STREAK:] == [None, None]  # bare before it
    work.run_index(closer, time.time() - (3600.0 if long else 0.0))
    row = work.measured
    assert row is not None
    assert row is not work.meter.nothing  # read at its end...
    assert math.isnan(row[0])  # ...bare: no split by stage
    assert row[-2] >= 32 << 20  # its growth is on its row (64 MiB, less what was resident)
    assert work.meter.every == SAMPLE_EVERY  # sampling goes on...
    kinds = measured_by(work, QUICK_STREAK + SAMPLE_EVERY, offset=closer + 1)
    assert kinds == [True] * QUICK_STREAK + [None] * (SAMPLE_EVERY - 1) + [True]  # ...anew


@pytest.mark.usefixtures("every_item_quick")
def test_a_count_of_bare_items_below_zero_reads_as_none_left() -> None:
    """Threads sharing a work may both count the last bare item down: measuring goes on."""
    work = Work(Pipeline(Numbers(200)).write(Fails()))
    assert work.meter is not None
    work.meter.skip = -1
    assert measured_by(work, QUICK_STREAK + 1) == [True] * QUICK_STREAK + [None]


def widest_stretch(work: Work, offset: int) -> int:
    """Run quick items from ``offset`` until the next measured one stands for the widest gap."""
    schedule = gaps(SAMPLE_EVERY, 4)  # 32, 64, 128, 256: the next stretch is 256 wide too
    kinds = measured_by(work, QUICK_STREAK + sum(schedule[:-1]), offset=offset)
    assert kinds[-1] is True, kinds[-3:]
    assert kinds[-2] is None, kinds[-3:]
    return offset + len(kinds)


@pytest.mark.usefixtures("every_item_quick", "precise_cpu")
@pytest.mark.parametrize(("took", "spun"), [(0.25, 0.2), (0.01, 0.02)])
def test_a_slow_item_measured_after_quick_bare_ones_does_not_count_them_slow(
    took: float, spun: float
) -> None:
    """The items sampled out before it were quick, else they had ended the stretch.

    Counted as slow as the measured one, they would hide long bare items that
    use most of the CPU (three of 0.2 s against 0.25 s): sampling must still
    stop for those. Counted at a millisecond each (0.255 s) they would hide
    long ones using most of the time (three of 20 ms against 10 ms and the
    255): they count what the quick item measured before them took (set to
    10 µs here, with what the meter saw before: on a loaded machine a no-op
    item can take milliseconds, and then the long ones are no fifth).
    """
    work = Work(Pipeline(Numbers(100_000)).write(Busy(frozenset(), seconds=spun)))
    meter = work.meter
    assert meter is not None
    offset = widest_stretch(work, 0)
    widest = SAMPLE_WIDENS_TO * SAMPLE_EVERY
    assert measured_by(work, widest - 1, offset=offset) == [None] * (widest - 1)
    offset += widest - 1
    meter._seen = seen = 0.0
    meter._sample = sample = 1e-5  # the quick item measured before the 255 bare ones
    meter.quick = 0.001  # the measured item that closes the stretch is slow
    began = time.time()
    assert measured_by(work, 1, took=took, offset=offset) == [True]
    running = time.time() - began
    meter.quick = 60.0
    offset += 1
    # It took "took" and what running it took; each bare item, the sample.
    assert took + 255 * sample <= meter._seen - seen <= took + running + 255 * sample
    busy: set[int] = set()
    for _ in range(UNSPLIT_ITEMS):  # then three bare items spin `spun` of CPU each
        offset = sampled_stretch(work, offset)
        offset = long_bare_item(work, busy, offset)
    # 0.6 s or 60 ms unsplit against the slow item and 255 quick ones: more than a fifth.
    assert meter.every == 1, (meter._unsplit, meter._seen, meter._long, meter._items, sample)


@pytest.mark.usefixtures("every_item_quick")
def test_a_long_bare_item_ending_a_stretch_counts_the_quick_ones_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Else the long items read as more frequent than they are, and stop the sampling.

    Each round: the schedule widens to its widest, three stretches of 256, and
    the 255th item of the next one runs long: one long item in 1255. Counted
    without the 254 quick items before it, that would be one in 1001.
    """
    monkeypatch.setattr(metrics_module, "UNSPLIT_RARITY", 1100)
    work = Work(Pipeline(Numbers(100_000)).write(Busy(frozenset(), seconds=0.05)))
    meter = work.meter
    assert meter is not None
    widest = SAMPLE_WIDENS_TO * SAMPLE_EVERY
    offset, busy = 0, set[int]()
    for _ in range(UNSPLIT_ITEMS + 1):
        offset = widest_stretch(work, offset)
        kinds = measured_by(work, 3 * widest + widest - 2, offset=offset)
        assert kinds[-(widest - 2) :] == [None] * (widest - 2)  # the 254 quick bare ones
        offset += len(kinds)
        offset = long_bare_item(work, busy, offset)
    assert offset == (UNSPLIT_ITEMS + 1) * 1255
    # Most of the CPU (50 ms against microseconds), but one in 1255 is rarer than one in 1100.
    assert meter.every == SAMPLE_EVERY


@pytest.mark.usefixtures("every_item_quick")
def test_a_feature_that_fails_a_measured_item_counts_it_once() -> None:
    from curator.observing.features import ItemFeature

    class Picky(ItemFeature):
        name = "picky"

        def end(self, index: int, token: object, ok: bool) -> None:
            if index == 3:
                raise RuntimeError("not this one")

    work = Work(Pipeline(Numbers(200)).write(Fails()), features=(Picky(),))
    meter = work.meter
    assert meter is not None
    assert measured_by(work, 3) == [True] * 3
    seen, items = meter._seen, meter._items  # what the sampling decides by
    assert measured_by(work, 1, took=0.25, offset=3) == [True]
    assert work.run_index(4, time.time())[0] is True
    assert meter._items == items + 2  # items 3 and 4, once each
    assert 0.25 <= meter._seen - seen < 0.5
    # It failed: a new streak builds up (item 4 began it) before items run bare.
    assert measured_by(work, QUICK_STREAK, offset=5) == [True] * (QUICK_STREAK - 1) + [None]


def refusing(refused: set[int]) -> object:
    """A per-item feature whose ``begin`` fails for the indices in ``refused`` (read live)."""
    from curator.observing.features import ItemFeature

    class Refuses(ItemFeature):
        name = "refuses"

        def begin(self, index: int) -> None:
            if index in refused:
                raise RuntimeError("not this one")

    return Refuses()


@pytest.mark.usefixtures("every_item_quick")
def test_a_feature_that_fails_before_an_item_gets_it_read_and_counted_down() -> None:
    refused = {QUICK_STREAK + 1, 2 * QUICK_STREAK + 5}  # bare: 2nd and 4th of their stretches
    work = Work(Pipeline(Numbers(200)).write(Fails()), features=(refusing(refused),))
    kinds = measured_by(work, 3 * QUICK_STREAK + 6)
    assert kinds[QUICK_STREAK] is None  # bare
    assert kinds[QUICK_STREAK + 1] is False  # failed before it ran: read at its end
    assert kinds[QUICK_STREAK + 2 : 2 * QUICK_STREAK + 2] == [True] * QUICK_STREAK
    assert kinds[2 * QUICK_STREAK + 2 : 2 * QUICK_STREAK + 5] == [None] * 3
    assert kinds[2 * QUICK_STREAK + 5] is False
    assert kinds[2 * QUICK_STREAK + 6 :] == [True] * QUICK_STREAK


def the_first_stretch(work: Work) -> int:
    """Run quick items up to the one that closes the first stretch; that item's index."""
    kinds = measured_by(work, QUICK_STREAK + SAMPLE_EVERY - 1)
    assert kinds == [True] * QUICK_STREAK + [None] * (SAMPLE_EVERY - 1)
    return len(kinds)


@pytest.mark.usefixtures("every_item_quick")
def test_a_feature_that_fails_the_item_due_to_be_measured_counts_the_whole_stretch() -> None:
    """It was not counted down: it and the bare items before it are the stretch."""
    refused = set[int]()
    work = Work(Pipeline(Numbers(200)).write(Fails()), features=(refusing(refused),))
    meter = work.meter
    assert meter is not None
    due = the_first_stretch(work)
    refused.add(due)
    assert meter._items == QUICK_STREAK
    assert measured_by(work, 1, offset=due) == [False]  # failed before it ran: read at its end
    assert meter._items == QUICK_STREAK + SAMPLE_EVERY  # every item so far, once


class Resets(Tally):
    """An accumulating stage whose ``reset`` fails while ``refuse`` is set."""

    refuse = False

    def reset(self) -> None:
        if self.refuse:
            raise RuntimeError("cannot start empty")
        super().reset()


@pytest.mark.usefixtures("every_item_quick")
def test_an_item_due_to_be_measured_that_fails_before_its_readings_counts_the_stretch() -> None:
    stage = Resets()
    work = Work(Pipeline(Numbers(200)).filter(stage).write(Fails()))
    meter = work.meter
    assert meter is not None
    due = the_first_stretch(work)
    stage.refuse = True
    assert measured_by(work, 1, offset=due) == [False]
    assert meter._items == QUICK_STREAK + SAMPLE_EVERY
    stage.refuse = False
    assert measured_by(work, 1, offset=due + 1) == [True]  # the streak ended: measured again


@pytest.mark.usefixtures("every_item_quick")
def test_an_item_read_then_failed_counts_the_bare_items_other_threads_ran() -> None:
    """Threads sharing a work: while one ends its measured item, others run the next bare ones."""
    work = Work(Pipeline(Numbers(200)).write(Fails()))
    meter = work.meter
    assert meter is not None
    measured_by(work, QUICK_STREAK)  # the streak is built: bare items come next
    assert meter.skip == SAMPLE_EVERY - 1
    items = meter._items
    meter.skip -= 5  # five of them ran in other threads
    meter.failed()  # then a feature failed the measured item
    assert meter._items == items + 5
    assert meter.skip == 0
    assert measured_by(work, 1, offset=QUICK_STREAK) == [True]


class Naps(Busy):
    """Busy, and sleeps ``nap`` seconds (wall time without CPU) for the indices in ``naps``."""

    def __init__(self, nap: float) -> None:
        super().__init__(frozenset())
        self.naps: set[int] = set()
        self.nap = nap

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        if index in self.naps:
            time.sleep(self.nap)
        return super().__call__(items, index)


@pytest.fixture
def precise_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread's CPU time from ``thread_time``: ``getrusage`` moves it in ticks (4 ms here)."""
    real = resource.getrusage

    def usage(who: int) -> SimpleNamespace:
        return SimpleNamespace(
            ru_utime=time.thread_time(), ru_stime=0.0, ru_maxrss=real(who).ru_maxrss
        )

    monkeypatch.setattr(metrics_module, "_getrusage", usage)


def closed_stretch(work: Work) -> int:
    """Run quick items through the first stretch and the item that closes it; the next index."""
    due = the_first_stretch(work)
    assert measured_by(work, 1, offset=due) == [True]
    return due + 1


@pytest.mark.usefixtures("every_item_quick")
def test_long_bare_items_count_when_the_items_before_them_waited() -> None:
    """A bare item that waits (for a core, on a loaded machine) leaves the next one its CPU.

    The CPU a long bare item used is read against the last measured item's end:
    the wall time the bare items between took bounds their CPU from above, so
    subtracting it leaves nothing of a long item once one of them waited. Taken
    at what the thread used per bare item over a whole stretch, they leave it
    its 30 ms, and three such stop the sampling.
    """
    sink = Naps(nap=0.1)
    work = Work(Pipeline(Numbers(10_000)).write(sink))
    meter = work.meter
    assert meter is not None
    offset, busy = closed_stretch(work), set[int]()
    for _ in range(UNSPLIT_ITEMS):
        offset = sampled_stretch(work, offset)
        sink.naps.add(offset)
        assert measured_by(work, 1, offset=offset) == [None]  # bare, quick against 60 s
        offset = long_bare_item(work, busy, offset + 1)
    row = work.measured
    assert row is not None
    assert row[-4] < 0.03  # its CPU time in the row stays a bound
    assert meter.every == 1


class Waits(Sink[int]):
    """Returns at once, except for the index in ``hold``: that one waits for ``go``."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.began = threading.Event()
        self.go = threading.Event()

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index == self.hold:
            self.began.set()
            assert self.go.wait(30)
        return []


@pytest.mark.usefixtures("every_item_quick")
def test_threads_measuring_at_once_at_the_end_of_a_stretch_count_it_once() -> None:
    """Threads sharing a work (a thread pool, a Dask worker) see the last bare item go together.

    Both then measure their next item; the one that began first closes the
    stretch and stands for its items, the other counts as itself, and it
    opens no stretch of its own meanwhile.
    """
    due = QUICK_STREAK + SAMPLE_EVERY - 1
    sink = Waits(hold=due)
    work = Work(Pipeline(Numbers(200)).write(sink))
    meter = work.meter
    assert meter is not None
    measured_by(work, due)  # the streak, then the bare items of the first stretch
    assert meter.skip == 0
    closer = threading.Thread(target=work.run_index, args=(due, time.time()))
    closer.start()
    assert sink.began.wait(30)  # it measures the item due: it holds the stretch
    assert measured_by(work, 1, offset=due + 1) == [True]  # measured too: skip is 0
    assert meter.skip == 0  # and it opened no stretch
    sink.go.set()
    closer.join(30)
    assert meter._items == QUICK_STREAK + SAMPLE_EVERY + 1  # every item so far, once
    assert meter.skip == 2 * SAMPLE_EVERY - 1  # the closer opened the next stretch


@pytest.mark.usefixtures("every_item_quick", "precise_cpu")
def test_a_long_bare_item_that_only_waited_is_not_counted_unsplit() -> None:
    """The worker's own CPU between items (a reporter, the checkpoint) is not the item's.

    Between items the test spins 0.2 ms, as a busy run loop would; the long item
    sleeps 3 ms. What the thread used since the last reading, less each bare
    item's share by the last stretch's rate, leaves it next to nothing.
    """
    sink = Naps(nap=0.003)
    work = Work(Pipeline(Numbers(10_000)).write(sink))
    meter = work.meter
    assert meter is not None

    def looping(count: int, offset: int) -> list[bool | None]:
        kinds = []
        for index in range(offset, offset + count):
            spin(0.0002)
            kinds += measured_by(work, 1, offset=index)
        return kinds

    looping(QUICK_STREAK + SAMPLE_EVERY, 0)  # a whole stretch, closed: its rate is known
    offset = QUICK_STREAK + SAMPLE_EVERY
    for _ in range(UNSPLIT_ITEMS):
        kinds = looping(QUICK_STREAK + 20, offset)  # a streak, then 20 bare items
        assert kinds[-20:] == [None] * 20
        offset += len(kinds)
        sink.naps.add(offset)
        meter.quick = 0.001
        assert looping(1, offset) == [False]  # long, bare: read at its end
        meter.quick = 60.0
        offset += 1
    assert meter._long == 0
    assert meter.every == SAMPLE_EVERY


@pytest.mark.usefixtures("every_item_quick")
def test_a_long_bare_item_whose_cpu_cannot_be_read_leaves_the_share_as_it_was() -> None:
    """Another thread's: its CPU is NaN. Counted as time seen, it would hide the others."""
    work = Work(Pipeline(Numbers(200)).write(Fails()))
    meter = work.meter
    assert meter is not None
    offset = sampled_stretch(work, 0)
    seen = meter._seen
    meter.quick = 0.001
    elsewhere = threading.Thread(target=work.run_index, args=(offset, time.time() - 3600.0))
    elsewhere.start()
    elsewhere.join(30)
    row = work.measured
    assert row is not None
    assert math.isnan(row[-4])  # read at its end, its CPU not known
    assert meter._items == QUICK_STREAK + 2  # it counts as an item seen
    # The quick bare item before it counts at the sample's time, its hour not at all.
    assert meter._seen == pytest.approx(seen + meter._sample)
