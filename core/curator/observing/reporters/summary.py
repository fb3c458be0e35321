"""Minimal reporters: a plain end-of-run summary, and silence."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from curator.model.measures import StageSummary
from curator.model.outcome import Status
from curator.model.result import RunInfo, RunResult
from curator.observing.reporter import Reporter, check_stream
from curator.plugin_host.hookspecs import hookimpl
from curator.plugin_host.options import option

MAX_LISTED_FAILURES = 10


@dataclass(frozen=True)
class SummaryOptions:
    """Options of the ``summary`` reporter."""

    stream: Any = option(None, help="a text stream to write to (default: standard error)")

    def __post_init__(self) -> None:
        check_stream(self.stream)


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


def format_duration(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03`` style, or ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def slowest(result: RunResult, count: int = 5) -> list[tuple[float, int]]:
    """The ``count`` longest items that ran, as ``(seconds, index)``, slowest first."""
    return [(o.duration, o.index) for o in result.slowest(count)]


COUNTED = (
    Status.OK,
    Status.FAILED,
    Status.CRASHED,
    Status.TIMED_OUT,
    Status.INTERRUPTED,
    Status.SKIPPED,
    Status.CANCELLED,
)
"""The order statuses are counted in a summary."""


def count_parts(result: RunResult) -> list[tuple[Status, str]]:
    """``(status, "3 failed")`` for each status the run has (``ok`` always)."""
    return [
        (status, f"{result.count(status)} {status.label}")
        for status in COUNTED
        if status is Status.OK or result.count(status)
    ]


def headline(result: RunResult, prefix: str = "curator: ") -> str:
    """The summary's first line: counts, time, throughput, backend."""
    run = result.run
    counts = ", ".join(text for _, text in count_parts(result))
    how = "; interrupted after" if result.interrupted else " in"
    return (
        f"{prefix}{run.total} items: {counts}{how} {result.seconds:.2f} s "
        f"({result.items_per_second:,.1f} items/s, {run.where})"
    )


def failure_lines(result: RunResult) -> list[str]:
    """One line per failed item (the first :data:`MAX_LISTED_FAILURES`), then how many more."""
    failures = result.failures
    lines = []
    for outcome in failures[:MAX_LISTED_FAILURES]:
        error = outcome.error
        what = error.headline() if error else ""
        lines.append(f"  item {outcome.index} {outcome.status.label}: {what}".rstrip())
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(failures) - MAX_LISTED_FAILURES} more failures")
    return lines


def stage_line(result: RunResult, stages: list[StageSummary] | None = None) -> str | None:
    """Where the items' time went, stage by stage, or ``None`` when nothing was measured.

    ``  time per stage: Snapshots (source) 1.20 s (10%), Normalize 9.80 s (82%), ...``,
    and over how many items when quick ones were sampled. ``stages`` is
    ``result.stage_summary()`` when the caller has it already.
    """
    stages = result.stage_summary() if stages is None else stages
    total = sum(stage.total for stage in stages)
    if not stages or total <= 0:
        return None
    parts = [f"{s.stage} {s.total:.2f} s ({100 * s.total / total:.0f}%)" for s in stages]
    line = "  time per stage: " + ", ".join(parts)
    ran = result.count(Status.OK) + result.count(Status.FAILED)
    if stages[0].items < ran:  # quick items were sampled (see curator.observing.metrics)
        line += f" (over the {stages[0].items:,} of {ran:,} items measured by stage)"
    return line


def format_summary(
    result: RunResult, prefix: str = "curator: ", stages: list[StageSummary] | None = None
) -> str:
    """The summary text of a run, a few lines long; ``prefix`` starts the first one."""
    per_stage = stage_line(result, stages)
    return "\n".join(
        [headline(result, prefix), *([per_stage] if per_stage else []), *failure_lines(result)]
    )
