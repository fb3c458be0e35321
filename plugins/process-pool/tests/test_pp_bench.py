"""``curator bench`` on the process pool: job counts and its chunk sizes (issue 27)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pp_support import subprocess_env


def test_the_pool_is_measured_with_its_chunk_sizes_and_speedups(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "curator", "bench", "curator.examples.snapshots:pipeline",
         "--sample", "8", "-b", "sequential", "-b", "process-pool", "-j", "2", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["configurations"]
    measured = [(row["backend"], row["jobs"], row["chunksize"]) for row in rows]
    # The pool's own chunk sizes: its adaptive default, one item, a quarter of a worker's share.
    assert measured == [
        ("sequential", 1, None),
        ("process-pool", 2, None),
        ("process-pool", 2, 1),
        ("process-pool", 2, 2),
    ]
    for row in rows:
        assert row["failed"] == 0
        assert row["worker_peak_rss"] > 0
        assert row["speedup"] > 0
    assert list(tmp_path.iterdir()) == []  # the samples wrote into a scratch folder
