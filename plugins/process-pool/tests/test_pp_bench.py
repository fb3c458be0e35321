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


NOT_SHIPPED = """
from curator import Sink
from curator.testing.probes import Numbers


class CopiedNotShipped(Sink):
    # Copied for the bench, but no process can be sent it: the pool refuses the pipeline.
    def __call__(self, items, index):
        return sum(items)

    def use_scratch(self, folder):
        pass

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("CopiedNotShipped cannot be pickled")


pipeline = Numbers(8).write(CopiedNotShipped())
"""


def test_a_pool_that_cannot_take_the_pipeline_is_left_out_and_the_rest_measured(
    tmp_path: Path,
) -> None:
    """One backend's refusal ended the whole bench with no table (a hostile user found it)."""
    (tmp_path / "targets.py").write_text(NOT_SHIPPED)

    def bench(*backends: str) -> subprocess.CompletedProcess[str]:
        chosen = [arg for name in backends for arg in ("-b", name)]
        return subprocess.run(
            [sys.executable, "-m", "curator", "bench", "targets.py:pipeline", "--sample", "4",
             *chosen, "-j", "2", "--json"],
            capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=300,
            check=False,
        )  # fmt: skip

    proc = bench("sequential", "process-pool", "thread-pool")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [row["backend"] for row in report["configurations"]] == ["sequential", "thread-pool"]
    assert report["recommended"]["backend"] in ("sequential", "thread-pool")
    (left_out,) = report["not_measured"]
    assert left_out["backend"] == "process-pool"
    assert "CopiedNotShipped cannot be pickled" in left_out["reason"]
    assert "not measured: process-pool (" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Nothing at all measured: the reasons are the error.
    alone = bench("process-pool")
    assert alone.returncode == 2, alone.stderr
    assert "curator: error: measuring process-pool -j 2" in alone.stderr
    assert "CopiedNotShipped cannot be pickled" in alone.stderr


def test_options_for_the_pool_reach_its_runs_and_a_chunk_size_given_is_kept(
    tmp_path: Path,
) -> None:
    def bench(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "curator", "bench", "curator.examples.snapshots:pipeline",
             "--sample", "8", "-b", "process-pool", "-j", "2", "-o", "chunksize=3", "-o",
             "start_method=spawn", *extra],
            capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=300,
            check=False,
        )  # fmt: skip

    proc = bench("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(row["jobs"], row["chunksize"]) for row in report["configurations"]] == [(2, 3)]
    assert report["options"] == {"chunksize": "3", "start_method": "spawn"}
    table = bench()
    assert table.returncode == 0, table.stderr
    # Each option once in the command to run, the chunk size as given.
    assert "-j 2 -o chunksize=3 -o start_method=spawn  (about" in table.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "curator", "bench", "curator.examples.snapshots:pipeline",
         "-b", "process-pool", "-j", "2", "-o", "start_method=teleport"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=300,
        check=False,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "option 'start_method' of backend 'process-pool' must be" in refused.stderr
    assert "got 'teleport'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert list(tmp_path.iterdir()) == []
