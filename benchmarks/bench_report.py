"""Reading a large checkpoint (issues 15 and 25): ``curator report``, ``status``, ``logs``, resume.

Usage::

    python benchmarks/bench_report.py [--items 1000000] [--jobs 2] [--keep DIR] [--only report|reading]

Runs ``--items`` no-op items on process-pool into a fresh checkpoint (with
metrics; 0.1% of them fail and print, so the failure list is full), then
times each command in a new process, as a user runs it, with its CPU time
and peak RSS (``wait4``; the resume's CPU time includes its workers'):

- ``report``: ``curator report`` (the terminal summary), ``--json`` and
  ``--html`` (and the HTML file's size). Target: at most 10 s for a million items.
- ``reading``: ``curator status CHECKPOINT``, ``curator status`` of the folder,
  ``curator logs N`` of one item, ``curator run --resume --dry-run`` and a
  ``--resume`` that skips every done item (on a copy of the checkpoint; it
  runs the 0.1% failed items again). Target: ``logs N`` well under a second,
  all of them in bounded memory.

``--keep DIR`` keeps the checkpoint there (and reuses it when present). The
pipeline is ``bench_report:target`` (``CURATOR_BENCH_ITEMS`` items), so the
commands name it as a TARGET.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from curator import Pipeline, Sink, run
from curator.testing.probes import Numbers

HERE = Path(__file__).resolve().parent
ITEMS_ENV = "CURATOR_BENCH_ITEMS"


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


def target() -> Pipeline[int]:
    """The benchmark's pipeline as a TARGET: ``CURATOR_BENCH_ITEMS`` items."""
    return pipeline(int(os.environ[ITEMS_ENV]))


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """``command`` in a new process: seconds, CPU seconds, peak RSS in MiB, exit code."""
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - began, cpu, usage.ru_maxrss / 1024, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--only", choices=("report", "reading"))
    args = parser.parse_args()
    folder = (args.keep or Path(tempfile.mkdtemp(prefix="curator-bench-report-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / f"report-{args.items}.sqlite"
    env = dict(os.environ, **{ITEMS_ENV: str(args.items)})
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    if not store.exists():
        import bench_report  # the classes of a module, not __main__: TARGET names it

        began = time.perf_counter()
        run(bench_report.pipeline(args.items), backend="process-pool", jobs=args.jobs,
            checkpoint=store, on_error="continue", reporter=None)  # fmt: skip
        print(f"made {store} ({args.items:,} items): {time.perf_counter() - began:.1f} s, "
              f"{store.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    curator = [sys.executable, "-m", "curator"]
    html = folder / "report.html"
    resumed = folder / "resumed" / store.name
    commands = {
        "report": [
            ("curator report", ["report", str(store)]),
            ("curator report --json", ["report", str(store), "--json"]),
            ("curator report --html", ["report", str(store), "--html", str(html)]),
        ],
        "reading": [
            ("curator status CHECKPOINT", ["status", str(store)]),
            ("curator status --json (folder)", ["status", str(folder), "--json"]),
            (f"curator logs {args.items // 2 + 999}", ["logs", str(args.items // 2 + 999), str(store)]),
            ("curator run --resume --dry-run",
             ["run", "bench_report:target", "--resume", "--dry-run", "--checkpoint", str(store)]),
            ("curator run --resume (skips all done)",
             ["run", "bench_report:target", "--resume", "--reporter", "none",
              "--checkpoint", str(resumed)]),
        ],
    }  # fmt: skip
    print(f"{'command':40} {'seconds':>8} {'CPU s':>7} {'peak RSS MiB':>13}")
    for part, listed in commands.items():
        if args.only not in (None, part):
            continue
        for label, command in listed:
            if command[-1] == str(resumed):
                resumed.parent.mkdir(exist_ok=True)
                shutil.copyfile(store, resumed)
            seconds, cpu, rss, code = timed([*curator, *command], folder, env)
            exit_code = f"  (exit {code})" if code else ""
            print(f"{label:40} {seconds:8.2f} {cpu:7.2f} {rss:13.0f}{exit_code}")
    if html.exists():
        print(f"HTML file: {html.stat().st_size / 1024:.0f} KiB")
    shutil.rmtree(folder / "resumed", ignore_errors=True)
    if args.keep is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
