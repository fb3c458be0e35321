"""``curator status [CHECKPOINT]``: what a checkpoint holds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from curator.cli.exitcodes import ExitCode
from curator.cli.output import print_fields, print_json, print_table
from curator.errors import UsageError
from curator.registry import Registry
from curator.store import DEFAULT_DIR, report, resolve_path

MAX_LISTED_FAILURES = 20


def add_parser(commands: Any) -> None:
    """Add the ``status`` subcommand."""
    parser = commands.add_parser(
        "status",
        help="show what a checkpoint holds",
        description="Counts per status, failed items with their errors, and past runs.",
    )
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        nargs="?",
        help="checkpoint file or folder (default: the newest one in .curator/)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(handler=status_command)


def find_checkpoint(given: str | None) -> Path:
    """The checkpoint to show: the given one, or the newest in ``.curator/``."""
    if given:
        path = resolve_path(given)
        assert path is not None
        if path.is_dir() or not path.exists():
            newest = _newest(Path(given)) if Path(given).is_dir() else None
            if newest is not None:
                return newest
        return path
    newest = _newest(Path(DEFAULT_DIR))
    if newest is None:
        raise UsageError(
            f"no checkpoint in {DEFAULT_DIR}/ (runs record one unless --no-checkpoint); "
            "name one: curator status PATH"
        )
    return newest


def _newest(folder: Path) -> Path | None:
    stores = sorted(folder.glob("*.sqlite"), key=lambda p: p.stat().st_mtime)
    return stores[-1] if stores else None


def status_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Show a checkpoint's counts, failures and runs."""
    data = report(find_checkpoint(args.checkpoint)).to_json()
    if args.json:
        print_json(data)
        return ExitCode.OK
    last = data["last_run"]
    when = "-"
    if last is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["started"]))
        rate = last["items_per_second"]
        when += f" on {last['backend']} (jobs={last['jobs']}), {last['seconds']:.2f} s"
        when += f", {rate:,.1f} items/s" if rate else ""
        when += ", interrupted" if last["interrupted"] else ""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(data["counts"].items())) or "-"
    print_fields(
        f"checkpoint {data['checkpoint']}",
        [
            ("pipeline", data["pipeline"]),
            ("items", str(data["total"])),
            ("recorded", counts),
            ("not recorded", str(data["not_recorded"])),
            ("runs", str(data["runs"])),
            ("last run", when),
        ],
    )
    failures = data["failures"]
    if failures:
        print_table(
            f"failed items ({len(failures)})",
            ["index", "status", "attempt", "worker", "error"],
            [
                [
                    str(f["index"]),
                    f["status"],
                    str(f["attempt"]),
                    f["worker"],
                    f"{f['error_type']}: {f['message']}",
                ]
                for f in failures[:MAX_LISTED_FAILURES]
            ],
        )
    return ExitCode.OK
