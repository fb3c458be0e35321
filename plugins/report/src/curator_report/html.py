"""The HTML writer of a :class:`~curator_report.model.RunReport`: one self-contained file.

Everything is inline (styles, charts as SVG, no script, no font or image to
fetch), so the file opens anywhere, offline, and can be mailed or attached to
a ticket. Hovering a bar or a rectangle shows its numbers (SVG ``<title>``).
The time axes are running time: where a checkpoint's runs were apart (an
interrupted run, a resume hours later) a narrow band marks the idle gap, and
a dashed line where each later run starts.
"""

from __future__ import annotations

import html
import json
import math
import shlex
import time
from collections.abc import Iterable, Sequence

from curator import StageSummary, Status
from curator.model.measures import format_bytes
from curator.observing.reporters.summary import format_duration
from curator_report.model import ItemLine, Lane, RunReport

WIDTH = 960
"""Width of the charts, in CSS pixels."""
LANE_HEIGHT = 16
LABEL_WIDTH = 110
MARKS_HEIGHT = 14
"""Room above a chart for the names of runs, when there are several."""
FAILURE_WIDTH = 4.0
"""The narrowest a failed item is drawn, in pixels, so that a quick failure is seen."""
_FAILED = frozenset(status.value for status in Status if status.is_failure)
COLOURS = {
    "ok": "#3a9a5b",
    "failed": "#d9534f",
    "crashed": "#8e44ad",
    "timed_out": "#e67e22",
    "interrupted": "#7f8c8d",
    "skipped": "#95a5a6",
    "cancelled": "#bdc3c7",
}
BUSY = "#2e86c1"

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #666; margin-top: 0; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.card b { display: block; font-size: 18px; }
table { border-collapse: collapse; width: 100%; margin-top: 6px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
details { border: 1px solid #eee; border-radius: 4px; margin: 6px 0; padding: 4px 8px; }
summary { cursor: pointer; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
.legend span { display: inline-block; margin-right: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.none { color: #888; }
"""


def render(report: RunReport) -> str:
    """The whole HTML page of ``report``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>curator report: {_e(report.pipeline)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(report.pipeline)}</h1>",
        f'<p class="sub">{_e(report.checkpoint)} &middot; {_e(report.state)} &middot; '
        f"report made {_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(report.generated)))}"
        "</p>",
        _cards(report),
        '<h2 id="timeline">Workers over time</h2>',
        _timeline(report),
        '<h2 id="throughput">Throughput</h2>',
        _throughput(report),
        '<h2 id="durations">Item durations</h2>',
        _durations(report),
        '<h2 id="stages">Time per stage</h2>',
        _stages(report.stages),
        '<h2 id="slowest">Slowest items</h2>',
        _items(report.slowest, memory=False),
        '<h2 id="memory">Most memory-hungry items</h2>',
        _items(report.hungriest, memory=True),
        f'<h2 id="failures">Failures ({report.failures_total})</h2>',
        _failures(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds(value: float) -> str:
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 60 else format_duration(value)


def _cards(report: RunReport) -> str:
    idle = [("idle between runs", format_duration(report.idle_seconds))]
    cards = [
        ("items", f"{report.recorded:,} / {report.total:,}"),
        *((status.replace("_", " "), f"{n:,}") for status, n in report.counts.items()),
        ("running time", _seconds(report.seconds)),
        *(idle if report.idle_seconds > 0 else []),
        ("throughput", f"{report.items_per_second:,.1f} items/s"),
        ("workers", str(len(report.lanes))),
        ("runs", str(report.runs)),
    ]
    inner = "".join(f'<div class="card">{_e(k)}<b>{_e(v)}</b></div>' for k, v in cards)
    return f'<div class="cards" id="summary">{inner}</div>'


def _axis(seconds: float, top: int, height: int) -> str:
    """Time ticks under a chart ``height`` high that spans ``seconds``."""
    if seconds <= 0:
        return ""
    step = _nice_step(seconds / 8)
    span = WIDTH - LABEL_WIDTH
    ticks = []
    tick = 0.0
    while tick <= seconds + 1e-9:
        x = LABEL_WIDTH + span * tick / seconds
        ticks.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{top + height + 12}" text-anchor="middle">'
            f"{_e(_tick(tick, step))}</text>"
        )
        tick += step
    return "".join(ticks)


def _marks_top(report: RunReport) -> int:
    """Room above a chart for the runs' names: only when it shows more than one run."""
    return MARKS_HEIGHT if len(report.spans) > 1 else 0


def _run_marks(report: RunReport, top: int, height: int) -> str:
    """Each later run's start (dashed), and a band where time passed with no run going."""
    if len(report.spans) < 2 or report.seconds <= 0:
        return ""
    scale = (WIDTH - LABEL_WIDTH) / report.seconds
    marks = []
    for span in report.spans[1:]:
        x = LABEL_WIDTH + span.start * scale
        label = f"run {span.run}"
        if span.idle_before > 0:
            idle = f"idle {format_duration(span.idle_before)}"
            label = f"{idle}, then {label}"
            marks.append(
                f'<g class="gap"><rect x="{x - 3:.1f}" y="{top}" width="6" height="{height}" '
                f'fill="#f4f4f4" stroke="#999" stroke-dasharray="2,2"/>'
                f"<title>{_e(idle)} before run {span.run} (left out of the time axis)</title></g>"
            )
        marks.append(
            f'<g class="run-start"><line x1="{x:.1f}" y1="{top - MARKS_HEIGHT + 2}" '
            f'x2="{x:.1f}" y2="{top + height}" stroke="#555" stroke-dasharray="4,3"/>'
            f'<text x="{x + 4:.1f}" y="{top - 3}">{_e(label)}</text></g>'
        )
    return "".join(marks)


def _tick(at: float, step: float) -> str:
    if step < 1:
        return f"{at:.1f} s"
    return f"{at:.0f} s" if step < 60 else format_duration(at)


def _nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _timeline(report: RunReport) -> str:
    if not report.lanes:
        return '<p class="none">No item has run yet.</p>'
    span = WIDTH - LABEL_WIDTH
    scale = span / report.seconds if report.seconds > 0 else 0.0
    top = _marks_top(report)
    height = LANE_HEIGHT * len(report.lanes)
    rows = [_axis(report.seconds, top, height)]
    for number, lane in enumerate(report.lanes):
        y = top + number * LANE_HEIGHT
        shapes = (
            _lane_items(lane.items, y, scale)
            if report.drawn
            else _lane_busy(lane, y, report) + _lane_items(lane.failed, y, scale)
        )
        rows.append(
            f'<g class="lane" data-worker="{_e(lane.worker)}">'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + LANE_HEIGHT - 4}" text-anchor="end">'
            f"{_e(lane.worker)}</text>{shapes}</g>"
        )
    rows.append(_run_marks(report, top, height))
    if report.drawn:
        shown = sorted({status for lane in report.lanes for _, _, status in lane.items})
        legend = "".join(
            f'<span><i style="background:{COLOURS.get(s, "#999")}"></i>{_e(s)}</span>'
            for s in shown
        )
        note = "one rectangle per item"
    else:
        lane_busy = report.lanes[0].busy
        shown = sorted({status for lane in report.lanes for _, _, status in lane.failed})
        legend = f'<span><i style="background:{BUSY}"></i>busy share of each time slice</span>'
        legend += "".join(
            f'<span><i style="background:{COLOURS.get(s, "#999")}"></i>{_e(s)}</span>'
            for s in shown
        )
        note = (
            f"{report.recorded:,} items: each worker's busy share of "
            f"{len(lane_busy)} time slices ({_seconds(report.bin_seconds)} each)"
        )
    total = top + height + 18
    return (
        f'<svg id="timeline-chart" width="{WIDTH}" height="{total}" '
        f'viewBox="0 0 {WIDTH} {total}" role="img" aria-label="worker timeline">'
        + "".join(rows)
        + f'</svg><p class="legend">{legend} <span class="none">{_e(note)}</span></p>'
    )


def _lane_items(items: list[tuple[float, float, str]], y: int, scale: float) -> str:
    """One rectangle per item; failures drawn last (on top), never narrower than a mark."""
    shapes, failed = [], []
    for begin, end, status in items:
        title = f"{status}, {_seconds(end - begin)} from {format_duration(begin)}"
        x, width = LABEL_WIDTH + begin * scale, max((end - begin) * scale, 1.0)
        if status in _FAILED:
            width = max(width, FAILURE_WIDTH)
            x = min(x, WIDTH - width)
        rect = (
            f'<rect x="{x:.1f}" y="{y + 2}" width="{width:.1f}" height="{LANE_HEIGHT - 4}" '
            f'fill="{COLOURS.get(status, "#999")}"'
        )
        if status in _FAILED:
            failed.append(f'{rect} class="failed" stroke="#5a1a18" stroke-width="0.6">'
                          f"<title>{_e(title)}</title></rect>")  # fmt: skip
        else:
            shapes.append(f"{rect}><title>{_e(title)}</title></rect>")
    return "".join(shapes + failed)


def _lane_busy(lane: Lane, y: int, report: RunReport) -> str:
    width = (WIDTH - LABEL_WIDTH) / len(lane.busy)
    shapes = []
    for slot, share in enumerate(lane.busy):
        if share <= 0:
            continue
        title = f"{share:.0%} busy from {format_duration(slot * report.bin_seconds)}"
        shapes.append(
            f'<rect x="{LABEL_WIDTH + slot * width:.1f}" y="{y + 2}" width="{width + 0.3:.1f}" '
            f'height="{LANE_HEIGHT - 4}" fill="{BUSY}" fill-opacity="{max(share, 0.05):.2f}">'
            f"<title>{_e(title)}</title></rect>"
        )
    return "".join(shapes)


def _throughput(report: RunReport) -> str:
    rates = report.throughput
    top = max(rates, default=0.0)
    if top <= 0:
        return '<p class="none">No item has finished yet.</p>'
    height, span = 120, WIDTH - LABEL_WIDTH
    above = _marks_top(report)
    step = span / len(rates)
    points = " ".join(
        f"{LABEL_WIDTH + (k + 0.5) * step:.1f},{above + height - height * rate / top:.1f}"
        for k, rate in enumerate(rates)
    )
    return (
        f'<svg id="throughput-chart" width="{WIDTH}" height="{above + height + 18}" role="img" '
        f'aria-label="items finished per second">{_axis(report.seconds, above, height)}'
        f'<text x="{LABEL_WIDTH - 6}" y="{above + 10}" text-anchor="end">{top:,.1f}/s</text>'
        f'<text x="{LABEL_WIDTH - 6}" y="{above + height}" text-anchor="end">0</text>'
        f'<polyline points="{points}" fill="none" stroke="{BUSY}" stroke-width="1.5"/>'
        f"{_run_marks(report, above, height)}</svg>"
    )


def _durations(report: RunReport) -> str:
    bars = report.durations
    if not bars:
        return '<p class="none">No item has finished yet.</p>'
    height, span = 120, WIDTH - LABEL_WIDTH
    most = max(count for _, _, count in bars) or 1
    width = span / len(bars)
    shapes = []
    for k, (low, high, count) in enumerate(bars):
        tall = height * count / most
        shapes.append(
            f'<rect x="{LABEL_WIDTH + k * width:.1f}" y="{height - tall:.1f}" '
            f'width="{max(width - 1, 1):.1f}" height="{tall:.1f}" fill="{BUSY}">'
            f"<title>{count:,} items of {_e(_seconds(low))} to {_e(_seconds(high))}</title></rect>"
        )
    low, high = bars[0][0], bars[-1][1]
    return (
        f'<svg id="durations-chart" width="{WIDTH}" height="{height + 18}" role="img" '
        f'aria-label="histogram of item durations">{"".join(shapes)}'
        f'<text x="{LABEL_WIDTH}" y="{height + 14}">{_e(_seconds(low))}</text>'
        f'<text x="{WIDTH}" y="{height + 14}" text-anchor="end">{_e(_seconds(high))} '
        "(logarithmic)</text>"
        f'<text x="{LABEL_WIDTH - 6}" y="10" text-anchor="end">{most:,}</text></svg>'
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    def cell(tag: str, k: int, text: str) -> str:
        return f"<{tag}{' class=n' if k in numeric else ''}>{_e(text)}</{tag}>"

    cells = "".join(cell("th", k, h) for k, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", k, v) for k, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _stages(stages: list[StageSummary]) -> str:
    if not stages:
        return '<p class="none">No metrics recorded (the run had --no-metrics, or none ran).</p>'
    everything = sum(s.total for s in stages) or 1.0
    rows = [
        (s.stage, _seconds(s.total), f"{s.total / everything:.0%}", _seconds(s.mean),
         _seconds(s.p50), _seconds(s.p95), _seconds(s.max))
        for s in stages
    ]  # fmt: skip
    head = ("stage", "total", "share", "mean", "p50", "p95", "max")
    return _table(head, rows, {1, 2, 3, 4, 5, 6})


def _items(items: list[ItemLine], memory: bool) -> str:
    if not items:
        what = "memory metrics" if memory else "finished items"
        return f'<p class="none">No {what} recorded.</p>'
    head = ["index", "status", "worker", "seconds", "peak RSS", "RSS growth"]
    rows = [
        (str(i.index), i.status.replace("_", " "), i.worker, _seconds(i.seconds),
         format_bytes(i.rss_peak), format_bytes(i.rss_growth))
        for i in items
    ]  # fmt: skip
    return _table(head, rows, {0, 3, 4, 5})


def _failures(report: RunReport) -> str:
    if not report.failures:
        return '<p class="none">None.</p>'
    blocks = []
    for item in report.failures:
        error = item.error or {}
        head = (
            f"item {item.index}: {item.status.replace('_', ' ')} on {item.worker} "
            f"(attempt {item.attempt}): {error.get('type', '')}: {error.get('message', '')}"
        )
        body = ""
        if error.get("traceback"):
            body += f"<pre>{_e(error['traceback'])}</pre>"
        if item.output:
            dropped = item.output.get("dropped", 0)
            note = f" ({dropped:,} earlier characters dropped)" if dropped else ""
            body += f"<p>What it printed{note}:</p><pre>{_e(item.output.get('text', ''))}</pre>"
        if item.extras:
            lines = "\n".join(
                f"{name}: {json.dumps(data, sort_keys=True)}" for name, data in item.extras.items()
            )
            body += f"<p>Recorded by plugins:</p><pre>{_e(lines)}</pre>"
        blocks.append(f'<details class="failure"><summary>{_e(head)}</summary>{body}</details>')
    more = report.failures_total - len(report.failures)
    if more > 0:
        blocks.append(
            f'<p class="none">{more:,} more: curator status '
            f"{_e(shlex.quote(str(report.checkpoint)))} --failed</p>"
        )
    return "".join(blocks)
