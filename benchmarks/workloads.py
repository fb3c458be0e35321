"""Pipelines and helpers shared by the benchmarks (module-level, so workers can import them)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from curator import Filter, Pipeline, Source, hookimpl

try:
    from curator import ItemFeature
except ImportError:  # a tree from before per-item features, measured side by side
    ItemFeature = object  # type: ignore[misc,assignment]


class NoOpSource(Source[int]):
    """``count`` items that do nothing; ``payload_bytes`` makes the pipeline pickle that big."""

    def __init__(self, count: int, payload_bytes: int = 0) -> None:
        self.count = count
        self.payload = b"x" * payload_bytes

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index


def no_op_sink(items: Iterator[int], index: int) -> list[str]:
    for _ in items:
        pass
    return []


def no_op(count: int, payload_bytes: int = 0) -> Pipeline[int]:
    return NoOpSource(count, payload_bytes).write(no_op_sink)


def no_op_from_env() -> Pipeline[int]:
    """``no_op`` of ``$BENCH_ITEMS`` items (200,000 by default): a CLI target."""
    import os

    return no_op(int(os.environ.get("BENCH_ITEMS", "200000")))


def path_sink(items: Iterator[int], index: int) -> list[str]:
    """What a real sink returns: the path of the file it wrote (nothing is written)."""
    for _ in items:
        pass
    return [f"/data/curated/run-0001/sample-{index:08d}.h5"]


def paths_from_env() -> Pipeline[int]:
    """``$BENCH_ITEMS`` no-op items whose sink returns one path each: a CLI target."""
    import os

    return NoOpSource(int(os.environ.get("BENCH_ITEMS", "200000"))).write(path_sink)


def spin(loops: int) -> int:
    """Pure-Python CPU work; holds the GIL."""
    total = 0
    for i in range(loops):
        total += i * i
    return total


def loops_for(seconds: float) -> int:
    """How many ``spin`` loops take about ``seconds`` on this machine."""
    loops = 100_000
    while True:
        start = time.perf_counter()
        spin(loops)
        took = time.perf_counter() - start
        if took > 0.05:
            return max(1, int(loops * seconds / took))
        loops *= 2


class CpuSource(Source[int]):
    """Items of pure-Python CPU work; every ``slow_every``-th item is ``slow_factor`` times longer."""

    def __init__(self, count: int, loops: int, slow_every: int = 0, slow_factor: int = 1) -> None:
        self.count = count
        self.loops = loops
        self.slow_every = slow_every
        self.slow_factor = slow_factor

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        slow = self.slow_every and index % self.slow_every == 0
        yield spin(self.loops * (self.slow_factor if slow else 1))


def cpu(count: int, loops: int, slow_every: int = 0, slow_factor: int = 1) -> Pipeline[int]:
    return CpuSource(count, loops, slow_every, slow_factor).write(no_op_sink)


def run_index(pipeline: Pipeline[int], index: int) -> list[str]:
    return pipeline[index]


def run_index_packed(packed: tuple[Pipeline[int], int]) -> list[str]:
    pipeline, index = packed
    return pipeline[index]


_PIPELINE: Pipeline[int] | None = None


def init_pipeline(pipeline: Pipeline[int]) -> None:
    """A bare pool's initializer: keep the pipeline in the worker (shipped once)."""
    global _PIPELINE
    _PIPELINE = pipeline


def run_kept(index: int) -> list[str]:
    """A bare pool's task: one index of the pipeline its initializer kept."""
    assert _PIPELINE is not None
    return _PIPELINE[index]


def nap_item(index: int) -> None:
    """A bare pool's 1 ms task (module level, so workers import it)."""
    time.sleep(0.001)


def short_string_sink(items: Iterator[int], index: int) -> list[str]:
    for _ in items:
        pass
    return ["x"]


def short_strings(count: int) -> Pipeline[int]:
    """No-op items whose sink returns one short string each."""
    return NoOpSource(count).write(short_string_sink)


def nap_sink(items: Iterator[int], index: int) -> list[str]:
    for _ in items:
        time.sleep(0.001)
    return []


def naps(count: int) -> Pipeline[int]:
    """Items of 1 ms each."""
    return NoOpSource(count).write(nap_sink)


class GroupedCpuSource(Source[int]):
    """``count`` CPU items in ``groups`` keep-together groups (by remainder) of skewed cost.

    Group ``g``'s items take ``loops * weights[g % len(weights)]`` spin loops, so
    a few groups cost several times the others, as files of different sizes do.
    """

    def __init__(
        self, count: int, groups: int, loops: int, weights: tuple[int, ...], declare: bool = True
    ) -> None:
        self.count = count
        self.groups = groups
        self.loops = loops
        self.weights = weights
        self.declare = declare

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        group = index % self.groups
        yield spin(self.loops * self.weights[group % len(self.weights)])

    def partition_indices(self, indices: list[int]) -> list[list[int]] | None:
        if not self.declare:  # the same items as free ones, to compare with
            return None
        found: dict[int, list[int]] = {}
        for index in indices:
            found.setdefault(index % self.groups, []).append(index)
        return list(found.values())


def grouped_cpu(
    count: int, groups: int, loops: int, weights: tuple[int, ...], declare: bool = True
) -> Pipeline[int]:
    return GroupedCpuSource(count, groups, loops, weights, declare).write(no_op_sink)


class Counting(Filter[int]):
    """Counts the items that pass it, with no state protocol (the baseline of ``Accumulating``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        for item in items:
            self.count += 1
            yield item


class Accumulating(Counting):
    """``Counting`` as an accumulating stage: its count merges back (curator.model.state)."""

    def reset(self) -> None:
        self.count = 0

    def state(self) -> int:
        return self.count

    def merge(self, states: list[int]) -> int:
        self.count = sum(states)
        return self.count


class WallClock(ItemFeature):
    """A plugin's per-item field as a real one looks: a clock read around the item, a small dict."""

    name = "wall"

    def begin(self, index: int) -> float:
        return time.perf_counter()

    def end(self, index: int, token: float, ok: bool) -> dict[str, float]:
        return {"seconds": time.perf_counter() - token}


class WallClockPlugin:
    """Provides :class:`WallClock`."""

    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        return [WallClock]


class SleepSink:
    """A sink whose items each sleep ``seconds`` (waiting, as on a file system)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            time.sleep(self.seconds)
        return []


def sleeps(count: int, seconds: float) -> Pipeline[int]:
    """Items of ``seconds`` each, spent sleeping."""
    return NoOpSource(count).write(SleepSink(seconds))
