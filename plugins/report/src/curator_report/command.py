"""``curator report [CHECKPOINT | TARGET] [--html FILE] [--json]``: a run, from its checkpoint."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from curator import Registry
from curator.cli.plugin_commands import Commands, add_checkpoint_argument


def add_parser(commands: Commands) -> None:
    """Add the ``report`` subcommand."""
    parser = commands.add_parser(
        "report",
        help="summarize a run from its checkpoint; --html writes a page with plots",
        description=(
            "Read a checkpoint (also one a run is still writing) and show the run: counts, "
            "time per stage, slowest and most memory-hungry items, failures. --html FILE writes "
            "a self-contained page (no network needed) with a per-worker timeline, throughput "
            "over time and a duration histogram. Without CHECKPOINT, the most recently written "
            "checkpoint in .curator/ is read (newer files that are not checkpoints are "
            "passed over, each named in a warning)."
        ),
    )
    add_checkpoint_argument(parser)
    parser.add_argument("--html", metavar="FILE", help="write the report as an HTML page")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(handler=report_command)


def report_command(registry: Registry, args: argparse.Namespace) -> int:
    """Build the report of one checkpoint and write it in the asked-for forms."""
    from curator import UsageError
    from curator.cli.plugin_commands import checkpoint_of, print_json, print_text
    from curator_report.model import build

    if args.html is not None and not args.html.strip():
        raise UsageError("--html needs a file name, got an empty one (leave it out for the text)")
    path = checkpoint_of(args, "report")
    report = build(path)
    if args.html:
        from curator_report.html import render

        target = Path(args.html)
        try:
            target.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the report to {target}: {exc}") from None
    if args.json:
        print_json(report.to_json())
    elif args.html:
        print_text(f"wrote {args.html}: {report.recorded:,} items of {path}")
    else:
        _print(report)
    return 0


def _print(report: Any) -> None:
    from curator.cli.plugin_commands import print_fields, print_table, print_text
    from curator.model.measures import format_bytes

    counts = ", ".join(f"{n:,} {status.replace('_', ' ')}" for status, n in report.counts.items())
    rate = report.items_per_second
    fields = [
        ("checkpoint", f"{report.checkpoint} ({report.state})"),
        ("items", f"{report.recorded:,} of {report.total:,}: {counts or 'none yet'}"),
        ("running time", f"{_duration(report.seconds)} ({rate:,.1f} items/s)"),
    ]
    if report.idle_seconds > 0:
        idle = _duration(report.idle_seconds)
        fields.append(("idle between runs", f"{idle} (not in the running time)"))
    fields.append(("workers", str(len(report.lanes))))
    print_fields(report.pipeline, fields)
    if report.stages:
        print_table(
            "time per stage",
            ["stage", "total s", "mean s", "p95 s", "max s"],
            [
                [s.stage, f"{s.total:.3f}", f"{s.mean:.4f}", f"{s.p95:.4f}", f"{s.max:.4f}"]
                for s in report.stages
            ],
        )
    if report.slowest:
        print_table(
            "slowest items",
            ["index", "status", "worker", "seconds", "peak RSS"],
            [
                [str(i.index), i.status, i.worker, f"{i.seconds:.3f}", format_bytes(i.rss_peak)]
                for i in report.slowest[:10]
            ],
        )
    where = shlex.quote(str(report.checkpoint))  # a path with spaces, pasted into a shell
    if report.failures_total:
        print_text(f"{report.failures_total:,} failed: curator status {where} --failed")
    print_text(f"plots: curator report {where} --html report.html")


def _duration(seconds: float) -> str:
    """``0.42 s`` under a minute (a short run is not ``0:00``), else ``1:02:03``."""
    from curator.observing.reporters.summary import format_duration

    return f"{seconds:.2f} s" if seconds < 60 else format_duration(seconds)
