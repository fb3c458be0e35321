"""A complete example: synthetic simulation snapshots -> derived field -> files.

Each index is one snapshot of a 2-D scalar field (a few Gaussian "hot spots"
on a travelling wave, seeded by the index, so every run produces the same
data). A filter derives the gradient magnitude, another computes statistics,
and the sink writes, per snapshot, a JSON file of statistics and a PGM image
of the field (any image viewer opens it). Each item costs a few milliseconds
of pure-Python CPU, like a small conversion job.

Run it::

    curator run curator.examples.snapshots:pipeline --backend thread-pool --jobs 2

or build a custom one::

    from curator.examples.snapshots import pipeline
    run(pipeline(count=1000, output="out", size=96), backend="process-pool", jobs=-1)
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from curator.model.pipeline import Filter, Pipeline, Sink, Source


@dataclass
class Snapshot:
    """One time step of the synthetic simulation."""

    index: int
    size: int
    time: float
    values: list[float]
    derived: dict[str, list[float]] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


class SnapshotSource(Source[Snapshot]):
    """``count`` seeded snapshots of a ``size`` x ``size`` field.

    Parameters
    ----------
    count
        Number of snapshots (indices).
    size
        Grid points per side.
    seed
        Base seed; snapshot ``i`` uses ``seed + i``.
    """

    def __init__(self, count: int, size: int = 64, seed: int = 0) -> None:
        self.count = count
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[Snapshot]:
        rng = random.Random(self.seed + index)
        n = self.size
        t = index * 0.1
        spots = [
            (rng.uniform(0, n), rng.uniform(0, n), rng.uniform(2, n / 6), rng.uniform(0.5, 2.0))
            for _ in range(4)
        ]
        wave = [math.sin(2 * math.pi * (x / n) + t) for x in range(n)]
        values = []
        for y in range(n):
            row_terms = [(cx, (y - cy) ** 2, 2 * w * w, a) for cx, cy, w, a in spots]
            for x in range(n):
                v = 0.3 * wave[x]
                for cx, dy2, two_w2, amp in row_terms:
                    v += amp * math.exp(-((x - cx) ** 2 + dy2) / two_w2)
                values.append(v)
        yield Snapshot(index, n, t, values)


class GradientMagnitude(Filter[Snapshot]):
    """Add the field's gradient magnitude (central differences) as ``derived["gradient"]``."""

    def __call__(self, items: Iterator[Snapshot]) -> Iterator[Snapshot]:
        """Yield each snapshot with its gradient magnitude added."""
        for snap in items:
            n, v = snap.size, snap.values
            grad = [0.0] * (n * n)
            for y in range(1, n - 1):
                row = y * n
                for x in range(1, n - 1):
                    i = row + x
                    gx = (v[i + 1] - v[i - 1]) * 0.5
                    gy = (v[i + n] - v[i - n]) * 0.5
                    grad[i] = math.sqrt(gx * gx + gy * gy)
            snap.derived["gradient"] = grad
            yield snap


class Statistics(Filter[Snapshot]):
    """Add min, max, mean and standard deviation of the field and every derived field."""

    def __call__(self, items: Iterator[Snapshot]) -> Iterator[Snapshot]:
        """Yield each snapshot with its statistics added."""
        for snap in items:
            for name, data in {"field": snap.values, **snap.derived}.items():
                mean = math.fsum(data) / len(data)
                var = math.fsum((d - mean) ** 2 for d in data) / len(data)
                snap.stats[name] = {
                    "min": min(data),
                    "max": max(data),
                    "mean": mean,
                    "std": math.sqrt(var),
                }
            yield snap


Moments = tuple[int, float, float, float, float]
"""Running statistics of one field: (count, mean, sum of squared deviations, min, max)."""


def welford(moments: Moments, values: list[float]) -> Moments:
    """``moments`` updated with ``values``, one value at a time (Welford's algorithm)."""
    if not values:
        return moments
    count, mean, m2, low, high = moments
    for value in values:
        count += 1
        delta = value - mean
        mean += delta / count
        m2 += delta * (value - mean)
    return count, mean, m2, min(low, min(values)), max(high, max(values))


def combine(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint sets of values from theirs (Chan et al.'s formula)."""
    if not a[0]:
        return b
    if not b[0]:
        return a
    count = a[0] + b[0]
    delta = b[1] - a[1]
    mean = a[1] + delta * b[0] / count
    m2 = a[2] + b[2] + delta * delta * a[0] * b[0] / count
    return count, mean, m2, min(a[3], b[3]), max(a[4], b[4])


class DatasetStatistics(Filter[Snapshot]):
    """Dataset-wide mean, standard deviation, min and max of every field (normalization constants).

    An accumulating stage (``reset``/``state``/``merge``, see
    :mod:`curator.model.state`): each worker keeps Welford moments per item, the
    run merges the ``ok`` items' moments back into this object, and
    ``finish()`` writes them to ``output`` (JSON) when the run ends.

    Parameters
    ----------
    output
        The JSON file the merged statistics are written to; ``None`` writes nothing.
    """

    def __init__(self, output: str | Path | None = None) -> None:
        self.output = None if output is None else Path(output)
        self.moments: dict[str, Moments] = {}

    def __call__(self, items: Iterator[Snapshot]) -> Iterator[Snapshot]:
        """Add each snapshot's fields to the running moments; yield it unchanged."""
        for snap in items:
            for name, data in {"field": snap.values, **snap.derived}.items():
                empty: Moments = (0, 0.0, 0.0, math.inf, -math.inf)
                self.moments[name] = welford(self.moments.get(name, empty), data)
            yield snap

    def reset(self) -> None:
        """Start with no values."""
        self.moments = {}

    def state(self) -> dict[str, Moments]:
        """The moments accumulated since the last reset."""
        return self.moments

    def merge(self, states: list[dict[str, Moments]]) -> dict[str, Moments]:
        """Hold (and return) the moments of all ``states`` combined."""
        merged: dict[str, Moments] = {}
        for state in states:
            for name, moments in state.items():
                merged[name] = combine(merged[name], moments) if name in merged else moments
        self.moments = merged
        return merged

    def summary(self) -> dict[str, dict[str, float]]:
        """Count, mean, standard deviation, min and max of every field seen."""
        return {
            name: {
                "count": count,
                "mean": mean,
                "std": math.sqrt(m2 / count) if count else 0.0,
                "min": low,
                "max": high,
            }
            for name, (count, mean, m2, low, high) in sorted(self.moments.items())
        }

    def use_scratch(self, folder: Path) -> None:
        """Write into ``folder`` instead (``curator bench`` runs its samples so)."""
        if self.output is not None:
            self.output = folder / self.output.name

    def finish(self) -> None:
        """Write the dataset-wide statistics to ``output`` once the run has merged them."""
        if self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text(json.dumps(self.summary(), indent=2) + "\n")


class SnapshotWriter(Sink[Snapshot]):
    """Write ``snapshot_NNNNN.json`` (statistics) and ``snapshot_NNNNN.pgm`` (image).

    Parameters
    ----------
    output
        The output directory; created when needed.
    """

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)

    def use_scratch(self, folder: Path) -> None:
        """Write into ``folder`` instead (``curator bench`` runs its samples so)."""
        self.output = folder

    def __call__(self, items: Iterator[Snapshot], index: int) -> list[str]:
        """Write the files of each snapshot and return their paths."""
        self.output.mkdir(parents=True, exist_ok=True)
        written = []
        for snap in items:
            stem = self.output / f"snapshot_{snap.index:05d}"
            meta = {"index": snap.index, "time": snap.time, "size": snap.size, "stats": snap.stats}
            json_path = stem.with_suffix(".json")
            json_path.write_text(json.dumps(meta, indent=2) + "\n")
            pgm_path = stem.with_suffix(".pgm")
            pgm_path.write_bytes(_pgm(snap.values, snap.size))
            written += [str(json_path), str(pgm_path)]
        return written


def _pgm(values: list[float], size: int) -> bytes:
    low, high = min(values), max(values)
    scale = 255.0 / (high - low) if high > low else 0.0
    pixels = bytes(int((v - low) * scale) for v in values)
    return f"P5 {size} {size} 255\n".encode() + pixels


def pipeline(
    count: int = 200, output: str = "curator-example-output", size: int = 64, seed: int = 0
) -> Pipeline[Snapshot]:
    """The example pipeline: ``count`` snapshots written into ``output``.

    Besides a JSON file and an image per snapshot, the run ends by writing
    ``output/dataset-statistics.json``, the statistics of every field over
    all the snapshots that converted (see :class:`DatasetStatistics`).
    """
    return (
        SnapshotSource(count, size=size, seed=seed)
        .filter(GradientMagnitude())
        .filter(Statistics())
        .filter(DatasetStatistics(Path(output) / "dataset-statistics.json"))
        .write(SnapshotWriter(output))
    )
