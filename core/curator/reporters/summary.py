"""Minimal reporters: a plain end-of-run summary, and silence."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from curator.hookspecs import hookimpl
from curator.options import option
from curator.outcome import Status
from curator.reporter import Reporter
from curator.result import RunInfo, RunResult

MAX_LISTED_FAILURES = 10


@dataclass(frozen=True)
class SummaryOptions:
    """Options of the ``summary`` reporter."""

    stream: Any = option(None, help="a text stream to write to (default: standard error)")


class SummaryReporter(Reporter):
    """Print one summary when the run ends: counts, wall time, throughput, failures."""

    name = "summary"
    description = "A plain summary on stderr when the run ends (counts, time, failures)."
    Options = SummaryOptions

    @hookimpl
    def curator_run_finish(self, run: RunInfo, result: RunResult) -> None:
        """Write the summary."""
        stream = self.options.stream or sys.stderr
        stream.write(format_summary(result) + "\n")
        stream.flush()


class NoneReporter(Reporter):
    """Report nothing."""

    name = "none"
    description = "No output."


def format_summary(result: RunResult) -> str:
    """The summary text of a run, a few lines long."""
    counts = [f"{result.count(Status.OK)} ok"]
    for status in (
        Status.FAILED,
        Status.CRASHED,
        Status.TIMED_OUT,
        Status.SKIPPED,
        Status.CANCELLED,
    ):
        if result.count(status):
            counts.append(f"{result.count(status)} {status.value.replace('_', ' ')}")
    run = result.run
    verb = "interrupted after" if result.interrupted else "in"
    lines = [
        f"curator: {run.total} items: {', '.join(counts)} {verb} {result.seconds:.2f} s "
        f"({result.items_per_second:,.1f} items/s, {run.backend}, jobs={run.jobs})"
    ]
    failures = result.failures
    for outcome in failures[:MAX_LISTED_FAILURES]:
        error = outcome.error
        what = f"{error.type}: {error.message}" if error else ""
        lines.append(f"  item {outcome.index} {outcome.status.value}: {what}".rstrip())
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(failures) - MAX_LISTED_FAILURES} more failures")
    return "\n".join(lines)
