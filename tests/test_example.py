from __future__ import annotations

import json
from pathlib import Path

from core_support import curator, subprocess_env

from curator import run
from curator.examples.snapshots import pipeline


def test_the_example_writes_one_json_and_one_image_per_snapshot(tmp_path: Path) -> None:
    result = run(
        pipeline(count=6, output=str(tmp_path / "out"), size=24), backend="thread-pool", jobs=2
    )
    assert result.ok
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    snapshots = [f"snapshot_{i:05d}.{ext}" for i in range(6) for ext in ("json", "pgm")]
    assert files == ["dataset-statistics.json", *snapshots]
    assert result.outputs[2] == [
        str(tmp_path / "out" / "snapshot_00002.json"),
        str(tmp_path / "out" / "snapshot_00002.pgm"),
    ]
    meta = json.loads((tmp_path / "out" / "snapshot_00002.json").read_text())
    assert meta["index"] == 2
    assert set(meta["stats"]) == {"field", "gradient"}
    stats = meta["stats"]["field"]
    assert stats["min"] <= stats["mean"] <= stats["max"]
    assert stats["std"] > 0
    image = (tmp_path / "out" / "snapshot_00002.pgm").read_bytes()
    assert image.startswith(b"P5 24 24 255\n")
    assert len(image) == len(b"P5 24 24 255\n") + 24 * 24


def test_the_example_is_deterministic_across_backends(tmp_path: Path) -> None:
    run(pipeline(count=4, output=str(tmp_path / "a"), size=16), reporter=None)
    run(
        pipeline(count=4, output=str(tmp_path / "b"), size=16),
        backend="thread-pool",
        jobs=2,
        reporter=None,
    )
    for i in range(4):
        name = f"snapshot_{i:05d}.json"
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_the_example_pipeline_runs_on_the_thread_pool(tmp_path: Path) -> None:
    proc = curator(
        "run",
        "curator.examples.snapshots:pipeline",
        "--backend",
        "thread-pool",
        "--jobs",
        "2",
        cwd=tmp_path,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "curator: 200 items: 200 ok" in proc.stderr
    assert len(list((tmp_path / "curator-example-output").iterdir())) == 401


def test_the_example_writes_dataset_statistics_merged_over_every_snapshot(
    tmp_path: Path,
) -> None:
    """The merged dataset-wide moments equal the statistics of all values pooled."""
    run(pipeline(count=5, output=str(tmp_path / "out"), size=16), backend="thread-pool", jobs=2)
    written = json.loads((tmp_path / "out" / "dataset-statistics.json").read_text())
    source = pipeline(count=5, output=str(tmp_path / "unused"), size=16).source
    pooled = [v for i in range(5) for snap in source[i] for v in snap.values]
    mean = sum(pooled) / len(pooled)
    std = (sum((v - mean) ** 2 for v in pooled) / len(pooled)) ** 0.5
    field = written["field"]
    assert field["count"] == 5 * 16 * 16
    assert abs(field["mean"] - mean) < 1e-12
    assert abs(field["std"] - std) < 1e-12
    assert (field["min"], field["max"]) == (min(pooled), max(pooled))
    assert set(written) == {"field", "gradient"}
