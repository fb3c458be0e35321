"""The ``rich`` reporter: a live view on stderr with one row per busy worker.

It implements no per-item hook: rich's refresh thread reads the run's
:class:`~curator.observing.progress.RunProgress` a few times per second. The cost of
reporting thus does not grow with the item rate, and nothing runs in a worker.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curator.model.outcome import Outcome, Status
from curator.model.result import RunResult
from curator.observing.progress import RunProgress
from curator.observing.reporter import Reporter
from curator.observing.reporters.summary import (
    count_parts,
    failure_lines,
    format_duration,
    headline,
    slowest,
    stage_line,
)
from curator.plugin_host.hookspecs import hookimpl
from curator.plugin_host.options import option

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.live import Live

PANEL_SECONDS = 0.25
"""At most one output panel this often: items that all print must not flood the terminal."""
LISTED_UNSHOWN = 5
"""Items named in the line that says whose output was not shown."""
BAR_WIDTH = 30
MIN_BAR_WIDTH = 10


@dataclass(frozen=True)
class RichOptions:
    """Options of the ``rich`` reporter."""

    delay: float = option(
        0.5, help="seconds before the live view appears (a shorter run prints only the summary)"
    )
    max_rows: int = option(8, help="worker rows shown at most (then '+N more')")
    output_lines: int = option(
        20, help="lines of an item's captured output shown above the view at most (0: none)"
    )
    refresh_per_second: float = option(8.0, help="how often the view is redrawn")
    console: Any = option(None, help="a rich Console to draw on (default: one on stderr)")

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        if self.output_lines < 0:
            raise ValueError("output_lines must be >= 0")
        if self.refresh_per_second <= 0:
            raise ValueError("refresh_per_second must be > 0")
        # On the command line it would be a word, which broke the view at its first draw.
        if self.console is not None and not callable(getattr(self.console, "print", None)):
            raise ValueError(
                f"console must be a rich Console, not {self.console!r}: give it from Python"
            )


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
        self._last_panel = -PANEL_SECONDS
        self._unshown: list[int] = []

    @hookimpl
    def curator_run_start(self, progress: RunProgress) -> None:
        """Schedule the live view (it appears after ``delay`` seconds)."""
        from rich.console import Console

        self.progress = progress
        self.console = self.options.console or Console(stderr=True)
        if self.options.output_lines:
            progress.on_output(self._printed)
        if not self.console.is_terminal:
            return  # into a file or a pipe: a live view would leave frames behind; summary only
        progress.watch_workers()  # rows for the items already running when the view appears
        # Like tqdm's `delay`: no flicker, and no drawing cost, for runs that end quickly.
        self._timer = threading.Timer(self.options.delay, self._show)
        self._timer.daemon = True
        self._timer.start()

    def _printed(self, outcome: Outcome) -> None:
        """Show what an item printed in a panel above the live view (which rich keeps intact)."""
        from rich.panel import Panel
        from rich.text import Text

        assert outcome.output is not None
        assert self.console is not None
        now = time.monotonic()
        if now - self._last_panel < PANEL_SECONDS and not outcome.status.is_failure:
            self._unshown.append(outcome.index)  # said in one line with the next panel
            return
        self._last_panel = now
        self._say_unshown()
        lines = outcome.output.lines()
        shown = self.options.output_lines
        if len(lines) > shown:
            more = len(lines) - shown + 1
            lines = [*lines[: shown - 1], f"... {more} more lines{self._kept(outcome.index)}"]
        title = f"item {outcome.index} on {outcome.worker}"
        style = "red" if outcome.status.is_failure else "blue"
        body = Text("\n".join(lines))
        self.console.print(Panel(body, title=title, title_align="left", border_style=style))

    def _kept(self, index: int | str) -> str:
        """Where the rest of an item's output can be read, if anywhere.

        ``curator logs INDEX`` reads the newest checkpoint in ``.curator/``: a
        run's checkpoint elsewhere (``--checkpoint``) is named.
        """
        progress = self.progress
        if progress is None or progress.run.checkpoint is None:
            return " (not kept: the run has no checkpoint)"
        from curator.checkpoint.store import DEFAULT_DIR  # sqlite3 and more: only when asked

        checkpoint = Path(progress.run.checkpoint)
        if checkpoint.resolve().parent == Path(DEFAULT_DIR).resolve():
            return f": curator logs {index}"
        return f": curator logs {index} {shlex.quote(str(checkpoint))}"

    def _say_unshown(self) -> None:
        unshown, self._unshown = self._unshown, []
        if unshown and self.console is not None:
            named = ", ".join(map(str, unshown[:LISTED_UNSHOWN]))
            more = (
                f" and {len(unshown) - LISTED_UNSHOWN} more"
                if len(unshown) > LISTED_UNSHOWN
                else ""
            )
            self.console.print(
                f"[dim]output of items {named}{more} not shown (too many at once)"
                f"{self._kept('INDEX')}[/dim]",
                highlight=False,
            )

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
                # Lines written to stderr meanwhile (the "stopping" notice, warnings) are
                # printed above the view instead of being drawn over, leaving no stale copy.
                redirect_stderr=True,
            )
            self.live.start(refresh=True)

    @hookimpl
    def curator_run_finish(self, result: RunResult) -> None:
        """Stop the live view (drawing its last frame) and print the summary."""
        self._say_unshown()
        with self._lock:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
            if self.live is not None:
                self.live.stop()
        assert self.console is not None
        self.console.print(self.summary(result))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Plain Text, no tables: the first frame of a run stays cheap to import and lay out.
        from rich.text import Text

        t = self.progress
        assert t is not None
        width = options.max_width
        total = max(t.total, 1)
        percent = 100.0 * t.done / total
        # What matters most first; the rest goes when the line would wrap.
        parts = [f"{t.done}/{t.total} {percent:3.0f}%"]
        stopped = t.stopping and self._finished  # the last frame, drawn as the run ends
        if t.stopping:
            parts.append("stopped" if stopped else "stopping")
        else:
            parts += [f"ETA {format_duration(t.eta)}", f"{t.rate:,.1f} items/s"]
        parts.append(f"elapsed {format_duration(t.elapsed)}")
        if t.failed:
            parts.insert(1, f"{t.failed} failed")
        while len(parts) > 1 and MIN_BAR_WIDTH + 1 + len("  ".join(parts)) > width:
            parts.pop()
        text = "  ".join(parts)
        bar = max(1, min(BAR_WIDTH, width - len(text) - 1))
        filled = bar * t.done // total
        view = Text(no_wrap=True, overflow="ellipsis")
        if t.done >= t.total:
            view.append("━" * bar, style="bar.finished")
        else:
            view.append("━" * filled, style="bar.complete")
            view.append("━" * (bar - filled), style="bar.back")
        view.append(" ")
        for position, part in enumerate(parts):
            stopping = part in ("stopping", "stopped")
            style = "red" if part.endswith(" failed") else "yellow" if stopping else ""
            view.append(("  " if position else "") + part, style=style)
        rows = t.busy()
        if t.stopping and rows and not stopped:
            left = t.grace_left or 0.0
            view.append(
                f"\nstopping: no new items; waiting up to {left:.0f} s for {len(rows)} running "
                "(Ctrl-C again to stop them at once)",
                style="yellow",
            )
        width_of_worker = max((len(worker) for worker, _, _ in rows), default=0)
        for worker, index, seconds in rows[: self.options.max_rows]:
            view.append(f"\n  {worker.ljust(width_of_worker)}  item {index:<8} {seconds:6.1f} s")
        if len(rows) > self.options.max_rows:
            view.append(f"\n  +{len(rows) - self.options.max_rows} more busy")
        yield view

    def summary(self, result: RunResult) -> RenderableType:
        """The end-of-run summary (:func:`~curator.observing.reporters.summary.format_summary`).

        It adds the slowest items.
        """
        from rich.console import Group
        from rich.text import Text

        line = Text(headline(result))
        line.stylize("bold", 0, len("curator"))
        for status, text in count_parts(result):
            style = STYLES.get(status)
            if style:
                line.highlight_words([text], style)
        if result.interrupted:
            line.highlight_words(["interrupted after"], "yellow")
        lines: list[RenderableType] = [line]
        longest = slowest(result)
        if longest and result.run.total > 1:
            listed = ", ".join(f"item {index} ({seconds:.2f} s)" for seconds, index in longest)
            lines.append(Text(f"  slowest: {listed}"))
        stages = stage_line(result)
        if stages:
            lines.append(Text(stages))
        lines += [Text(text, style="red") for text in failure_lines(result)]
        return Group(*lines)


STYLES = {
    Status.OK: "green",
    Status.FAILED: "red",
    Status.CRASHED: "red",
    Status.TIMED_OUT: "red",
}
