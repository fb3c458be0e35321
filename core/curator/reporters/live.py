"""The ``rich`` reporter: a live view on stderr with one row per busy worker.

It implements no per-item hook: rich's refresh thread reads the run's
:class:`~curator.progress.RunProgress` a few times per second. The cost of
reporting thus does not grow with the item rate, and nothing runs in a worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curator.hookspecs import hookimpl
from curator.options import option
from curator.outcome import Status
from curator.progress import RunProgress
from curator.reporter import Reporter
from curator.reporters.summary import format_duration, slowest
from curator.result import RunResult

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

MAX_LISTED_FAILURES = 10
BAR_WIDTH = 30


@dataclass(frozen=True)
class RichOptions:
    """Options of the ``rich`` reporter."""

    delay: float = option(
        0.5, help="seconds before the live view appears (a shorter run prints only the summary)"
    )
    max_rows: int = option(8, help="worker rows shown at most (then '+N more')")
    refresh_per_second: float = option(8.0, help="how often the view is redrawn")
    console: Any = option(None, help="a rich Console to draw on (default: one on stderr)")

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        if self.refresh_per_second <= 0:
            raise ValueError("refresh_per_second must be > 0")


class RichReporter(Reporter):
    """An overall bar, a row per busy worker, and a summary when the run ends."""

    name = "rich"
    description = "Live view on stderr: overall bar, a row per busy worker, a final summary."
    requires = ("rich",)
    Options = RichOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.progress: RunProgress | None = None
        self.console: Console | None = None
        self.live: Live | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._finished = False

    @hookimpl
    def curator_run_start(self, progress: RunProgress) -> None:
        """Schedule the live view (it appears after ``delay`` seconds)."""
        from rich.console import Console

        self.progress = progress
        self.console = self.options.console or Console(stderr=True)
        # Like tqdm's `delay`: no flicker, and no drawing cost, for runs that end quickly.
        self._timer = threading.Timer(self.options.delay, self._show)
        self._timer.daemon = True
        self._timer.start()

    def _show(self) -> None:
        from rich.live import Live

        with self._lock:
            if self._finished:
                return
            self.live = Live(
                self,
                console=self.console,
                refresh_per_second=self.options.refresh_per_second,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start(refresh=True)

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        """Stop the live view (drawing its last frame) and print the summary."""
        with self._lock:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
            if self.live is not None:
                self.live.stop()
        assert self.console is not None
        self.console.print(self.summary(result))

    def __rich__(self) -> RenderableType:
        # Plain Text, no tables: the first frame of a run stays cheap to import and lay out.
        from rich.text import Text

        t = self.progress
        assert t is not None
        total = max(t.total, 1)
        filled = BAR_WIDTH * t.done // total
        percent = 100.0 * t.done / total
        view = Text()
        if t.done >= t.total:
            view.append("━" * BAR_WIDTH, style="bar.finished")
        else:
            view.append("━" * filled, style="bar.complete")
            view.append("━" * (BAR_WIDTH - filled), style="bar.back")
        view.append(
            f" {t.done}/{t.total} {percent:3.0f}%  {t.rate:,.1f} items/s  "
            f"elapsed {format_duration(t.elapsed)}  ETA {format_duration(t.eta)}"
        )
        if t.failed:
            view.append(f"  {t.failed} failed", style="red")
        rows = t.busy()
        width = max((len(worker) for worker, _, _ in rows), default=0)
        for worker, index, seconds in rows[: self.options.max_rows]:
            view.append(f"\n  {worker.ljust(width)}  item {index:<8} {seconds:6.1f} s")
        if len(rows) > self.options.max_rows:
            view.append(f"\n  +{len(rows) - self.options.max_rows} more busy")
        return view

    def summary(self, result: RunResult) -> RenderableType:
        """The end-of-run summary: counts, time, throughput, slowest and failed items."""
        from rich.console import Group
        from rich.text import Text

        run = result.run
        parts = [f"[green]{result.count(Status.OK)} ok[/green]"]
        for status in (Status.FAILED, Status.CRASHED, Status.TIMED_OUT):
            if result.count(status):
                parts.append(f"[red]{result.count(status)} {status.value.replace('_', ' ')}[/red]")
        for status in (Status.INTERRUPTED, Status.SKIPPED, Status.CANCELLED):
            if result.count(status):
                parts.append(f"{result.count(status)} {status.value}")
        verb = "[yellow]interrupted[/yellow] after" if result.interrupted else "in"
        lines: list[RenderableType] = [
            Text.from_markup(
                f"[bold]curator[/bold]: {run.total} items: {', '.join(parts)} {verb} "
                f"{result.seconds:.2f} s ({result.items_per_second:,.1f} items/s, "
                f"{run.backend}, jobs={run.jobs})"
            )
        ]
        longest = slowest(result)
        if longest and run.total > 1:
            listed = ", ".join(f"item {index} ({seconds:.2f} s)" for seconds, index in longest)
            lines.append(Text(f"  slowest: {listed}"))
        failures = result.failures
        for outcome in failures[:MAX_LISTED_FAILURES]:
            error = outcome.error
            what = f"{error.type}: {error.message}" if error else ""
            lines.append(
                Text(f"  item {outcome.index} {outcome.status.value}: {what}", style="red")
            )
        if len(failures) > MAX_LISTED_FAILURES:
            lines.append(Text(f"  ... and {len(failures) - MAX_LISTED_FAILURES} more failures"))
        return Group(*lines)
