"""``curator status [CHECKPOINT | FOLDER | TARGET]``: what the checkpoints hold.

Only the parser lives here: the views (and SQLite) are imported when the
command runs, so that ``curator backends list`` does not pay for them.
"""

from __future__ import annotations

import argparse
from typing import Any

from curator.cli.exitcodes import ExitCode
from curator.plugin_host.registry import Registry


def add_parser(commands: Any) -> None:
    """Add the ``status`` subcommand."""
    parser = commands.add_parser(
        "status",
        help="list checkpoints, or show what one holds",
        description=(
            "Without an argument, list every checkpoint in .curator/ (pipeline, the parameters "
            "that tell variants apart, counts, last run, state). With a checkpoint file or a "
            "TARGET (as given to `curator run`), show its counts, failures, runs and the "
            "settings a --resume would reuse."
        ),
    )
    parser.add_argument(
        "what",
        metavar="CHECKPOINT|FOLDER|TARGET",
        nargs="?",
        help="a checkpoint file, a folder of them (default: .curator/), or a pipeline TARGET",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--index", type=int, metavar="N", help="show item N's record with its full traceback"
    )
    shown.add_argument(
        "--failed", action="store_true", help="show every failed item with its full traceback"
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(handler=status_command)


def add_one_checkpoint(parser: argparse.ArgumentParser) -> None:
    """The optional ``CHECKPOINT|TARGET`` argument of commands that read one checkpoint."""
    parser.add_argument(
        "what",
        metavar="CHECKPOINT|TARGET",
        nargs="?",
        help="a checkpoint file or the pipeline TARGET (default: the newest in .curator/)",
    )


def status_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """List the checkpoints of a folder, or describe one checkpoint."""
    from curator.cli.status_views import show_status

    return show_status(args, registry)
