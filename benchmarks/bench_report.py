"""The run report (issue 15): how long ``curator report`` takes on a large checkpoint.

Usage::

    python benchmarks/bench_report.py [--items 1000000] [--jobs 2] [--keep DIR]

Runs ``--items`` no-op items on process-pool into a fresh checkpoint (with
metrics; 0.1% of them fail and print, so the failure list is full), then
times, each in a new process as a user runs them: ``curator report`` (the
terminal summary), ``curator report --json`` and ``curator report --html``,
and reports the HTML file's size. Target: at most 10 s for a million items.
``--keep DIR`` keeps the checkpoint there (and reuses it when present).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from curator import Pipeline, Sink, run
from curator.testing.probes import Numbers


class MostlyQuiet(Sink[int]):
    """Returns its index; one item in a thousand prints a line and fails."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index % 1000 == 999:
            print(f"item {index}: something is off")
            raise ValueError(f"item {index} fails")
        return [str(index)]


def pipeline(count: int) -> Pipeline[int]:
    """``count`` no-op items, one in a thousand failing."""
    return Numbers(count).write(MostlyQuiet())


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Seconds ``command`` took in a new process, and its standard output."""
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - began, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="curator-bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / f"report-{args.items}.sqlite"
    if not store.exists():
        began = time.perf_counter()
        run(pipeline(args.items), backend="process-pool", jobs=args.jobs, checkpoint=store,
            on_error="continue", reporter=None)  # fmt: skip
        print(f"made {store} ({args.items:,} items): {time.perf_counter() - began:.1f} s, "
              f"{store.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    curator = [sys.executable, "-m", "curator", "report", str(store)]
    html = folder / "report.html"
    for label, command in (
        ("curator report", curator),
        ("curator report --json", [*curator, "--json"]),
        ("curator report --html", [*curator, "--html", str(html)]),
    ):
        seconds, _ = timed(command, folder)
        print(f"{label:24} {seconds:6.2f} s")
    print(f"HTML file: {html.stat().st_size / 1024:.0f} KiB")
    if args.keep is None:
        for path in folder.iterdir():
            os.remove(path)
        folder.rmdir()


if __name__ == "__main__":
    main()
