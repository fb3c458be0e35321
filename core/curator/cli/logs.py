"""``curator logs INDEX [CHECKPOINT | TARGET]``: what an item printed, its traceback, extras."""

from __future__ import annotations

import argparse
import json
from typing import Any

from curator.cli.exitcodes import ExitCode
from curator.cli.status import add_one_checkpoint
from curator.plugin_host.registry import Registry


def add_parser(commands: Any) -> None:
    """Add the ``logs`` subcommand."""
    parser = commands.add_parser(
        "logs",
        help="print what an item wrote (stdout, stderr, logging) and its traceback",
        description=(
            "Print the output captured while item INDEX last ran (the last 64 KiB of it; none "
            "is kept for an item that crashed, timed out or was interrupted) and, if it "
            "failed, its traceback, from a checkpoint. Without CHECKPOINT, the most "
            "recently written checkpoint in .curator/ is read (newer files that are not "
            "checkpoints are passed over, each named in a warning)."
        ),
    )
    parser.add_argument("index", type=int, metavar="INDEX", help="the item")
    add_one_checkpoint(parser)
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(handler=logs_command)


NOT_KEPT = {
    "crashed": "crashed (its worker died)",
    "timed_out": "timed out",
    "interrupted": "was interrupted",
}
"""Statuses whose item's output curator does not keep: its worker was stopped mid-item."""


def _no_output(status: str) -> str:
    """Why the record of an item that ended with ``status`` holds no output."""
    if status in NOT_KEPT:
        return (
            f"(no output kept: curator does not keep what an item printed when it "
            f"{NOT_KEPT[status]})"
        )
    return "(it printed nothing, or the run did not capture output)"


def logs_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Print one item's captured output and traceback."""
    from curator.checkpoint.catalog import read_item
    from curator.cli.output import print_json, print_text
    from curator.cli.status_views import one_checkpoint
    from curator.model.outcome import Status
    from curator.model.printable import printable

    path = one_checkpoint(args.what, "logs INDEX")
    index = args.index
    stored = read_item(path, index, f"item {index}")
    if args.json:
        print_json(
            {
                "checkpoint": str(path),
                "index": index,
                "status": None if stored is None else stored.status,
                "attempt": None if stored is None else stored.attempt,
                "worker": None if stored is None else stored.worker,
                "output": None
                if stored is None or stored.output is None
                else stored.output.to_json(),
                "error": None if stored is None or stored.error is None else stored.error.to_json(),
                "extras": None if stored is None else stored.extras,
            }
        )
        return ExitCode.OK
    if stored is None:
        print_text(f"item {index}: not recorded in {path} (it never finished in a run)")
        return ExitCode.OK
    head = f"item {index}: {Status(stored.status).label}, attempt {stored.attempt}"
    print_text(f"{head}, on {stored.worker} ({path})")
    if stored.output is None:
        print_text(_no_output(stored.status))
    else:
        print_text("\n".join(stored.output.lines()))
    error = stored.error
    if error is not None:
        print_text(error.details())
    for name, data in (stored.extras or {}).items():
        # A plugin's per-item data (see curator.observing.features), as JSON on one line.
        print_text(printable(f"{name}: {json.dumps(data, sort_keys=True)}"))
    return ExitCode.OK
