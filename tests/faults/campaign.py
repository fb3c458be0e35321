"""What the fault campaign's tests share: seeds and counts, runs of the CLI, the invariants.

``FAULT_SEED`` picks the seed (default 1) and ``FAULT_SCALE`` multiplies the
number of runs (default 1). The figures are printed when the session ends and,
with ``FAULT_REPORT=path``, written there as JSON (see ``conftest.py``).

A fault class whose fix has not landed yet is listed in :data:`PENDING` with its
issue: a violation of it is counted (``pending 25.2`` in the figures), the run
goes on to the next, and the test ends as an expected failure naming the issue
and the first violation. A pending issue that no run violated is named at the
end ("pending but not seen"), and one checked at least :data:`SEEMS_FIXED_AFTER`
times (:data:`RARE` for a rare race) without a violation fails the session: its
fix has landed, so take it out of :data:`PENDING` and let the campaign hold it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from curator.checkpoint.store import read_latest
from curator.testing.processes import child_env, running

HERE = Path(__file__).parent
SEED = int(os.environ.get("FAULT_SEED", "1"))
SCALE = float(os.environ.get("FAULT_SCALE", "1"))
ORPHAN_SECONDS = 2.0
RUN_DEADLINE = 120.0
LOCAL = ["sequential", "thread-pool", "process-pool"]
"""The backends most runs cycle through; a share of each fault's runs go to ``dask``."""

PENDING: dict[str, str] = {}
"""Issue number -> the fault class whose fix has not landed yet."""

FIGURES: Counter[str] = Counter()
"""Counts over the whole session: runs, faults by kind, lost, duplicated, ..."""

FIRST_SEEN: dict[str, str] = {}
"""Pending issue -> its first violation in the session."""

CHECKED: Counter[str] = Counter()
"""Pending issue -> how many times the session checked it."""

SEEMS_FIXED_AFTER = 3

RARE: dict[str, int] = {}
"""Pending issues that show in few of the runs checking them: clean checks before they count
as fixed (a race hit by 1 run in 40, checked 16 times a campaign, needed 200)."""


def seems_fixed(issue: str) -> bool:
    """Whether ``issue`` was checked often enough, never violated, to count as fixed."""
    return issue not in FIRST_SEEN and CHECKED[issue] >= RARE.get(issue, SEEMS_FIXED_AFTER)


"""A pending issue checked this often and never violated fails the session: enable it."""

# Runs per fault kind at FAULT_SCALE=1, and how many of them run on dask: a dask run
# starts a LocalCluster (a scheduler and two worker processes, each importing
# distributed: seconds of CPU), so dask gets a small fixed share.
RUNS = {"crash": 40, "unpicklable": 24, "kill": 32, "sigint": 32, "concurrent": 16,
        "corrupt": 20, "bytes": 8, "hung": 8}  # fmt: skip
DASK_RUNS = {"crash": 3, "unpicklable": 2, "kill": 3, "sigint": 3, "concurrent": 1, "bytes": 1,
             "hung": 2}  # fmt: skip


LIMIT_FLAGS = ("--setup-timeout", "2", "--teardown-timeout", "2")
"""The bounds on a stage's setup/teardown in the hung-hook runs (their resumes reuse them)."""


def count(kind: str) -> int:
    """How many runs of fault ``kind`` the campaign makes."""
    return max(1, round(SCALE * RUNS[kind]))


def backends(kind: str, local: Iterable[str] = LOCAL) -> list[str]:
    """The backend of each run of fault ``kind``: ``local`` in turn, dask's share spread evenly."""
    runs = count(kind)
    on_dask = min(runs, max(1, round(SCALE * DASK_RUNS[kind]))) if kind in DASK_RUNS else 0
    every = runs / on_dask if on_dask else 0
    dask_at = {int(every * n + every - 1) for n in range(on_dask)}
    names = list(local)
    chosen, turn = [], 0
    for number in range(runs):
        if number in dask_at:
            chosen.append("dask")
        else:
            chosen.append(names[turn % len(names)])
            turn += 1
    return chosen


def runs(kind: str, local: Iterable[str] = LOCAL) -> Iterator[tuple[int, str]]:
    """Number and backend of each run of fault ``kind``; the time of each counts to its backend."""
    for number, backend in enumerate(backends(kind, local)):
        began = time.monotonic()
        try:
            yield number, backend
        finally:
            FIGURES[f"seconds on {backend}"] += time.monotonic() - began


def record(what: str, faults: int, items: int = 0, runs: int = 1) -> None:
    """Count fault runs in the figures; ``what`` (the fault and backend) counts ``faults``."""
    FIGURES["runs"] += runs
    FIGURES["faults"] += faults
    FIGURES["items"] += items
    FIGURES[what] += faults


def rng(kind: str) -> random.Random:
    """The random source of fault ``kind``: one per kind, so kinds do not shift each other."""
    return random.Random(f"{SEED}-{kind}")


def jobs(backend: str) -> str:
    """Workers for ``backend`` (the sequential backend runs one item at a time)."""
    return "1" if backend == "sequential" else "2"


class Pending:
    """One test's violations of pending fault classes (see the module's docstring)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, str]] = {}

    def check(self, issue: str, holds: bool, message: str) -> bool:
        """Whether the invariant ``holds``; if not, fail unless ``issue`` is pending."""
        CHECKED[issue] += 1
        if holds:
            return True
        if issue not in PENDING:
            raise AssertionError(f"{message} (issue {issue})")
        FIGURES[f"pending {issue}"] += 1
        FIRST_SEEN.setdefault(issue, message)
        times, first = self.seen.get(issue, (0, message))
        self.seen[issue] = (times + 1, first)
        return False

    def settle(self) -> None:
        """End the test as an expected failure if a pending fault class showed."""
        if self.seen:
            pytest.xfail(
                "; ".join(
                    f"issue {issue} not fixed yet ({PENDING[issue]}): {times} violations, "
                    f"the first: {first}"
                    for issue, (times, first) in sorted(self.seen.items())
                )
            )


# -- runs of the CLI ------------------------------------------------------------------------


def env(
    markers: Path, tag: str, items: int, slow: float, stages: str = "", hang: str = ""
) -> dict[str, str]:
    """The environment of a CLI run of ``fault_target:pipeline``; stage files beside ``markers``."""
    folder = markers.parent
    return child_env(
        HERE,
        FAULT_MARKERS=str(markers),
        FAULT_TAG=tag,
        FAULT_ITEMS=str(items),
        FAULT_SLOW=str(slow),
        FAULT_STAGES=stages,
        FAULT_SHARDS=str(folder / "rows.txt"),
        FAULT_TALLY=str(folder / "tally.json"),
        FAULT_HANG=hang,
    )


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``curator run fault_target:pipeline ARGS --json``."""
    return subprocess.Popen(
        [sys.executable, "-m", "curator", "run", "fault_target:pipeline", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def finish(proc: subprocess.Popen[str], what: str) -> tuple[str, str]:
    """Wait for a run (never beyond :data:`RUN_DEADLINE`); its stdout and stderr."""
    try:
        return proc.communicate(timeout=RUN_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        FIGURES["hangs"] += 1
        raise AssertionError(f"{what}: the run hung ({RUN_DEADLINE} s)\n{err[-2000:]}") from None


def summary_of(out: str, err: str, code: int, what: str) -> dict[str, Any]:
    """The JSON summary a ``--json`` run printed on stdout (a failure if there is none)."""
    try:
        return cast(dict[str, Any], json.loads(out))
    except json.JSONDecodeError:
        raise AssertionError(
            f"{what}: exit {code} without the JSON summary on stdout ({out[:200]!r})\n"
            f"stderr: {err[-2000:]}"
        ) from None


def check_no_orphans(pids: set[int], what: str) -> None:
    """No process of ``pids`` is alive :data:`ORPHAN_SECONDS` after the run ended."""
    ended = time.monotonic()
    while any(running(p) for p in pids) and time.monotonic() - ended < ORPHAN_SECONDS:
        time.sleep(0.02)
    left = sorted(p for p in pids if running(p))
    FIGURES["orphans"] += len(left)
    assert not left, f"{what}: processes alive {ORPHAN_SECONDS} s after the run ended: {left}"


def marked(markers: Path, tag: str) -> Counter[int]:
    """Completed executions per index of the runs tagged ``tag``."""
    return Counter(int(p.name.split(".")[1]) for p in markers.glob(f"{tag}.*"))


def wait_for_markers(proc: subprocess.Popen[str], markers: Path, count: int) -> None:
    """Wait until ``count`` executions completed (or the run ended)."""
    deadline = time.monotonic() + 60
    while len(list(markers.iterdir())) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.005)


def done(checkpoint: Path) -> set[int]:
    """The indices the checkpoint records as done."""
    return {i for i, s in read_latest(checkpoint).items() if s.done}


def folders(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A run's folder and its markers folder inside."""
    folder = tmp_path / name
    markers = folder / "markers"
    markers.mkdir(parents=True)
    return folder, markers


def resume_and_check(
    checkpoint: Path, markers: Path, items: int, backend: str, stages: str, what: str
) -> None:
    """Resume after a fault: nothing recorded is invented, redone or lost."""
    recorded = done(checkpoint)
    invented = recorded - set(marked(markers, "first"))
    FIGURES["lost"] += len(invented)
    assert not invented, f"{what}: recorded as done but never ran: {sorted(invented)[:10]}"
    proc = start(
        ["-b", backend, "-j", jobs(backend), "--checkpoint", str(checkpoint), "--resume"],
        env(markers, "second", items, 0.0, stages),
        markers.parent,
    )
    out, err = finish(proc, what)
    assert proc.returncode == 0, f"{what}: resume exited {proc.returncode}\n{err[-2000:]}"
    summary = summary_of(out, err, proc.returncode, what)
    finished = summary["ok"] + summary["skipped"]
    FIGURES["lost"] += items - finished
    assert finished == items, f"{what}: resume finished {finished} of {items}"
    again = recorded & set(marked(markers, "second"))
    FIGURES["duplicated"] += len(again)
    assert not again, f"{what}: done items ran again on resume: {sorted(again)[:10]}"
    FIGURES["items"] += items


# -- stage state: each ok item's contribution exactly once ----------------------------------


def exactly_once(got: Iterable[int], ok: Iterable[int]) -> dict[str, list[int]]:
    """What is wrong with merged contributions ``got`` for the ``ok`` items (empty if nothing).

    Keys: ``counted twice``, ``lost``, ``never ok`` (an item not ok contributed).
    """
    counts, expected = Counter(got), set(ok)
    FIGURES["duplicated contributions"] += sum(n - 1 for n in counts.values())
    found = {
        "counted twice": sorted(i for i, n in counts.items() if n > 1),
        "lost": sorted(expected - set(counts)),
        "never ok": sorted(set(counts) - expected),
    }
    FIGURES["lost contributions"] += len(found["lost"])
    FIGURES["contributions of items not ok"] += len(found["never ok"])
    return {problem: items for problem, items in found.items() if items}


def _say(problems: dict[str, list[int]]) -> str:
    return "; ".join(f"{p}: {len(items)} items (e.g. {items[:5]})" for p, items in problems.items())


AFTER_DEATHS = {"counted twice": "25.2", "lost": "25.2"}
"""Shard problems after crashes, kills and resumes, and their issue (for :func:`check_stages`;
fixed: the campaign fails a run that shows one, naming the issue)."""


def check_stages(
    pending: Pending, stages: str, tally: list[int] | None, rows: list[int] | None,
    ok: Iterable[int], what: str, shard_issues: Mapping[str, str] = AFTER_DEATHS,
) -> None:  # fmt: skip
    """The merged state of each style in ``stages`` holds each ``ok`` item exactly once.

    ``tally``: the reset/state/merge stage's merged indices; ``rows``: the
    shard-style stage's merged rows. ``shard_issues``: the shard problems (keys of
    :func:`exactly_once`) whose fix is pending, and the issue of each.
    """
    ok = list(ok)
    if "tally" in stages:
        assert tally is not None, f"{what}: the accumulating stage left no merged state"
        problems = exactly_once(tally, ok)
        assert not problems, f"{what}: reset/state/merge state: {_say(problems)}"
        FIGURES["exact merges (reset/state/merge)"] += 1
    if "shards" in stages:
        assert rows is not None, f"{what}: the shards were never merged"
        problems = exactly_once(rows, ok)
        strict = {p: items for p, items in problems.items() if p not in shard_issues}
        assert not strict, f"{what}: shard rows: {_say(strict)}"
        held = True
        for issue in sorted(set(shard_issues.values())):
            found = {p: items for p, items in problems.items() if shard_issues.get(p) == issue}
            held &= pending.check(issue, not found, f"{what}: shard rows: {_say(found)}")
        FIGURES["exact merges (flush/merge shards)"] += held


def stage_files(folder: Path) -> tuple[list[int] | None, list[int] | None]:
    """The merged tally and shard rows a CLI run left in ``folder`` (None where absent)."""
    tally_file, rows_file = folder / "tally.json", folder / "rows.txt"
    tally = json.loads(tally_file.read_text()) if tally_file.exists() else None
    rows = [int(r) for r in rows_file.read_text().split()] if rows_file.exists() else None
    return tally, rows
