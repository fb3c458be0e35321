"""Pipelines used by the tests; module-level so they pickle and import in subprocesses."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Literal

from curator import Filter, Pipeline, Sink, Source
from curator.testing.probes import Numbers, Tally, probe
from curator.testing.shard_rows import ShardRows


def double(items: Iterator[int]) -> Iterator[int]:
    for item in items:
        yield item * 2


class Collect(Sink[int]):
    """Returns the items as strings; counts its calls (state stays where it ran)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[int] = []

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        self.calls += 1
        self.seen.append(index)
        return [str(item) for item in items]


class FailAt(Sink[int]):
    """Raises for the ``bad`` indices; other items take ``seconds``."""

    def __init__(self, bad: set[int], seconds: float = 0.0) -> None:
        self.bad = bad
        self.seconds = seconds
        self.seen: list[int] = []

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        self.seen.append(index)
        values = list(items)
        if index in self.bad:
            raise ValueError(f"bad item {index}")
        if self.seconds:
            time.sleep(self.seconds)
        return [str(v) for v in values]


class Sleep(Sink[int]):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        time.sleep(self.seconds)
        return [str(index)]


class WhoAmI(Sink[int]):
    """Returns the id of the sink object and the thread that ran it (after ``seconds``)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        time.sleep(self.seconds)
        return [str(id(self)), threading.current_thread().name, str(os.getpid())]


BARRIER = threading.Barrier(2)


class MeetAtBarrier(Sink[int]):
    """Blocks until two items run at the same time (raises BrokenBarrierError otherwise)."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        BARRIER.wait(timeout=10)
        return [str(index)]


def numbers(count: int = 10) -> Pipeline[int]:
    return Numbers(count).filter(double).write(Collect())


class LockedSink(Sink[int]):
    """A sink that holds a lock: it can be neither copied (thread-pool) nor pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return [str(item) for item in items]


# Targets for `curator run` tests.
ten = numbers(10)
locked = Numbers(6).write(LockedSink())
eleven = numbers(11)  # the class of `ten`, another parameter
who_runs = Numbers(4).write(WhoAmI())
fails_at_3 = Numbers(10).write(FailAt({3}))
fails_at_3_and_7 = Numbers(10).write(FailAt({3, 7}))
source_only = Numbers(3)
not_a_pipeline = 42


def shard_rows() -> Pipeline[int]:
    """60 items through a :class:`ShardRows` stage into ``$CURATOR_TEST_SHARDS/rows.txt``.

    Item 40's ``flush()`` SIGKILLs its process right after writing its rows, the
    first time only: on the sequential and thread-pool backends, the run itself.
    """
    folder = os.environ["CURATOR_TEST_SHARDS"]
    stage = ShardRows(os.path.join(folder, "rows.txt"), frozenset({40}), folder, how="kill")
    return Numbers(60).filter(stage).write(Collect())


def needs_an_argument(count: int) -> Pipeline[int]:
    return numbers(count)


def raises_while_building() -> Pipeline[int]:
    raise RuntimeError("cannot build the pipeline")


# Items slow enough for the live view to show them on the worker rows.
busy = Numbers(12).write(Sleep(0.25))


class Flaky(Sink[int]):
    """Fails the first ``fail_times`` attempts of each index in ``flaky``, counted in files."""

    def __init__(self, folder: str, flaky: set[int], fail_times: int) -> None:
        self.folder = folder
        self.flaky = flaky
        self.fail_times = fail_times

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index in self.flaky:
            tries = [p for p in os.listdir(self.folder) if p.startswith(f"{index}.")]
            if len(tries) < self.fail_times:
                open(os.path.join(self.folder, f"{index}.{len(tries)}"), "w").close()
                raise RuntimeError(f"flaky item {index}, try {len(tries) + 1}")
        return [str(index)]


class Marked(Sink[int]):
    """Leaves a marker file per execution in $CURATOR_TEST_MARKERS (if set) and sleeps.

    ``mark="start"`` marks before sleeping (the item began), ``"finish"`` after (it ran).
    """

    def __init__(self, seconds: float, mark: Literal["start", "finish"] = "start") -> None:
        self.seconds = seconds
        self.mark = mark

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if self.mark == "start":
            self._leave_marker(index)
        time.sleep(self.seconds)
        if self.mark == "finish":
            self._leave_marker(index)
        return [str(index)]

    @staticmethod
    def _leave_marker(index: int) -> None:
        folder = os.environ.get("CURATOR_TEST_MARKERS")
        if folder:
            name = f"{index}.{os.getpid()}.{time.monotonic_ns()}"
            with open(os.path.join(folder, name), "w"):
                pass


class SlowMerge(Tally):
    """A tally whose merge (run while the run records its end) marks that it began, then sleeps."""

    def merge(self, states: list[tuple[int, ...]]) -> tuple[int, ...]:
        folder = os.environ.get("CURATOR_TEST_MARKERS")
        if folder:
            with open(os.path.join(folder, "merging"), "w"):
                pass
        time.sleep(2.0)
        return super().merge(states)


class Hostile(Sink[int]):
    """Item 1 fails with a message full of terminal escapes, a carriage return and a newline."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == 1:
            raise ValueError("bad \x1b[31mRED\x1b]0;TITLE\x07\r\ncurator: forged line")
        return [str(index)]


def _refuse(index: int) -> None:
    raise RuntimeError(f"item {index} cannot come back")


class OneWay:
    """Pickles, but refuses to unpickle: as a value whose class changed since its run."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return _refuse, (self.index,)


class OneWayAt(Sink[int]):
    """Returns a :class:`OneWay` for item ``at``, the item's index for the others."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, items: Iterator[int], index: int) -> object:
        list(items)
        return OneWay(index) if index == self.at else index


class OneWayTuple(tuple[int, ...]):
    """A tally's partial that pickles, but refuses to unpickle."""

    __slots__ = ()

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return _refuse, (len(self),)


class OneWayTally(Tally):
    """A tally whose partials holding item ``at`` do not unpickle (its merges keep them so)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def state(self) -> tuple[int, ...]:
        return self._mark(super().state())

    def merge(self, states: list[tuple[int, ...]]) -> tuple[int, ...]:
        self.seen = self._mark(super().merge(states))
        return self.seen

    def _mark(self, seen: tuple[int, ...]) -> tuple[int, ...]:
        return OneWayTuple(seen) if self.at in seen else seen


marked = Numbers(200).write(Marked(0.05))
hostile = Numbers(3).write(Hostile())
one_way_result = Numbers(30).write(OneWayAt(7))
one_way_partial = Numbers(30).filter(OneWayTally(7)).write(Collect())
slow_merge = Numbers(20).filter(SlowMerge()).write(Collect())
slow_merge_failing = Numbers(20).filter(SlowMerge()).write(FailAt({5}))
tallied = Numbers(10).filter(Tally()).write(Collect())
marked_slow = Numbers(40).write(Marked(30.0))
marked_six = Numbers(6).write(Marked(2.0))  # still busy when a test presses Ctrl-C
slow = Numbers(200).write(Marked(0.05, mark="finish"))


class Length(Source[int]):
    """A source whose ``__len__`` returns (or raises) what it is given."""

    def __init__(self, size: object) -> None:
        self.size = size

    def __len__(self) -> int:
        if isinstance(self.size, BaseException):
            raise self.size
        return self.size  # type: ignore[return-value]

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index


len_raises = Length(RuntimeError("cannot count the files")).write(Collect())
len_negative = Length(-1).write(Collect())
len_fractional = Length(2.5).write(Collect())
many = Numbers(5000).write(Collect())  # enough JSON events to outlast a closed pipe


def chatty() -> Pipeline[int]:
    """Six items that print (stdout, stderr, a logging warning); item 2 fails."""
    folder = os.path.join(os.getcwd(), "chatty")  # the run's folder: a test's own
    os.makedirs(folder, exist_ok=True)
    return probe(6, folder, chatty=True, fail=frozenset({2}))


# Parameters as `curator status` lists them: a module-level value a filter reads (a
# parameter), a module it reads (code, not one), one filter class used twice.
OFFSET = 1


def shifted(items: Iterator[int]) -> Iterator[int]:
    for item in items:
        yield json.loads(json.dumps(item)) + OFFSET


class Scale(Filter[int]):
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        for item in items:
            yield item * self.factor


parametrized = Numbers(5).filter(shifted).filter(Scale(2)).filter(Scale(3)).write(FailAt({9}))
