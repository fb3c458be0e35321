"""The ``log`` reporter: plain timestamped lines at a bounded rate, for CI logs and files."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from curator.model.outcome import Outcome
from curator.model.result import RunInfo, RunResult
from curator.observing.progress import RunProgress, steps
from curator.observing.reporter import Reporter, check_stream
from curator.observing.reporters.summary import format_duration, format_summary
from curator.plugin_host.hookspecs import hookimpl
from curator.plugin_host.options import option


@dataclass(frozen=True)
class LogOptions:
    """Options of the ``log`` reporter."""

    interval: float = option(10.0, help="at least this many seconds between progress lines")
    step: float = option(0.1, help="at least this fraction of the items between progress lines")
    stream: Any = option(None, help="a text stream to write to (default: standard error)")

    def __post_init__(self) -> None:
        check_stream(self.stream)
        if self.interval < 0:
            raise ValueError("interval must be >= 0")
        if not 0 < self.step <= 1:
            raise ValueError("step must be in (0, 1]")


class LogReporter(Reporter):
    """One line when the run starts, progress lines, one line per failed item, a summary.

    A progress line is written when both at least ``step`` of the items and at
    least ``interval`` seconds have passed since the last one (so whichever is
    rarer sets the pace): a fast run of a million items writes a line every
    ten seconds, a slow one every 10%. The reporter uses the run's
    :class:`~curator.observing.progress.RunProgress` alarms rather than a per-item hook,
    so it costs nothing per item.
    """

    name = "log"
    description = "Timestamped progress lines at a bounded rate (CI logs, files)."
    Options = LogOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.progress: RunProgress | None = None
        self._next_time = 0.0

    @property
    def stream(self) -> TextIO:
        """Where lines go."""
        stream: TextIO = self.options.stream or sys.stderr
        return stream

    def _write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.stream.write(f"{stamp} curator: {text}\n")
        self.stream.flush()

    @hookimpl
    def curator_run_start(self, run: RunInfo, progress: RunProgress) -> None:
        """Write the start line and arm the first progress alarm."""
        self.progress = progress
        self._next_time = time.monotonic() + self.options.interval
        progress.on_failure(self._failed)
        progress.on_output(self._printed)
        self._arm()
        self._write(f"run started: {run.total} items on {run.where}: {run.pipeline}")

    def _arm(self) -> None:
        progress = self.progress
        assert progress is not None
        progress.call_at(progress.done + steps(progress.total, self.options.step), self._step)

    def _step(self) -> None:
        progress = self.progress
        assert progress is not None
        now = time.monotonic()
        if now >= self._next_time and progress.done < progress.total:
            self._write(self.progress_line())
            self._next_time = now + self.options.interval
        self._arm()

    def _failed(self, outcome: Outcome) -> None:
        error = outcome.error
        what = error.headline() if error else ""
        self._write(f"item {outcome.index} {outcome.status.label} on {outcome.worker}: {what}")

    def _printed(self, outcome: Outcome) -> None:
        assert outcome.output is not None
        prefix = f"[{outcome.index} {outcome.worker}]"
        for line in outcome.output.lines():
            self._write(f"{prefix} {line}")

    def progress_line(self) -> str:
        """``done/total (percent), rate, ETA, failures``."""
        p = self.progress
        assert p is not None
        percent = 100.0 * p.done / p.total if p.total else 100.0
        return (
            f"{p.done}/{p.total} ({percent:.1f}%), {p.rate:,.1f} items/s, "
            f"ETA {format_duration(p.eta)}, {p.failed} failed"
        )

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        """Write the summary."""
        self._write(format_summary(result).removeprefix("curator: "))
