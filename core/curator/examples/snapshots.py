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

from curator.pipeline import Filter, Pipeline, Sink, Source


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


class SnapshotWriter(Sink[Snapshot]):
    """Write ``snapshot_NNNNN.json`` (statistics) and ``snapshot_NNNNN.pgm`` (image).

    Parameters
    ----------
    output
        The output directory; created when needed.
    """

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)

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
    """The example pipeline: ``count`` snapshots written into ``output``."""
    return (
        SnapshotSource(count, size=size, seed=seed)
        .filter(GradientMagnitude())
        .filter(Statistics())
        .write(SnapshotWriter(output))
    )
