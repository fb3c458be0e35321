"""``curator run TARGET``: run a pipeline from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from curator.backend import normalize_name
from curator.cli.exitcodes import ExitCode
from curator.cli.output import error, print_json
from curator.cli.target import load_target
from curator.errors import RunInterrupted, TaskFailedError, UsageError
from curator.registry import Registry
from curator.result import RunResult
from curator.run import run
from curator.selection import parse_indices


def add_parser(commands: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = commands.add_parser(
        "run",
        help="run a pipeline",
        description="Run the pipeline named by TARGET on a backend.",
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="package.module:attr or path/to/file.py:attr, naming a Pipeline or a "
        "zero-argument callable that returns one",
    )
    parser.add_argument(
        "-b", "--backend", default="sequential", help="backend name (default: sequential)"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="items at once: 1 in-process, N workers, -1 all CPUs, -2 all but one (default: 1)",
    )
    parser.add_argument(
        "--indices",
        metavar="SPEC",
        help="which indices to run: 0:100, 3,5,9, 0:100:2, or a comma-separated mix (default: all)",
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend option (repeatable); see `curator backends show NAME`",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every item even when some fail (default: stop at the first failure)",
    )
    parser.add_argument(
        "--reporter",
        action="append",
        metavar="NAME",
        help="reporter name (repeatable; default: auto); see `curator reporters list`",
    )
    parser.add_argument(
        "--reporter-option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="an option of a selected reporter (repeatable), e.g. json.file=events.jsonl",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run summary as one JSON object on stdout"
    )
    parser.set_defaults(handler=run_command)


def parse_options(pairs: list[str]) -> dict[str, str]:
    """Turn ``["k=v", ...]`` into a dict; values stay strings for the schema to convert."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"invalid option {pair!r}: expected KEY=VALUE")
        if key in options:
            raise UsageError(f"option {key!r} is given twice")
        options[key] = value
    return options


def parse_reporter_options(pairs: list[str]) -> dict[str, dict[str, str]]:
    """Turn ``["json.file=x", ...]`` into ``{"json": {"file": "x"}}``."""
    options: dict[str, dict[str, str]] = {}
    for pair in pairs:
        name, dot, rest = pair.partition(".")
        if not dot or not name.strip():
            raise UsageError(f"invalid reporter option {pair!r}: expected NAME.KEY=VALUE")
        for key, value in parse_options([rest]).items():
            per_reporter = options.setdefault(normalize_name(name), {})
            if key in per_reporter:
                raise UsageError(f"reporter option {name}.{key} is given twice")
            per_reporter[key] = value
    return options


def run_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Load the target, run it and report; the exit code says how it went."""
    options = parse_options(args.option)
    reporters = args.reporter or ["auto"]
    reporter_options = parse_reporter_options(args.reporter_option)
    if (
        args.json
        and "json" in {normalize_name(r) for r in reporters}
        and not reporter_options.get("json", {}).get("file")
    ):
        raise UsageError(
            "--json and the json reporter would both write to stdout; "
            "send the events to a file with --reporter-option json.file=PATH"
        )
    pipeline = load_target(args.target)
    indices = None if args.indices is None else parse_indices(args.indices, len(pipeline))
    try:
        result = run(
            pipeline,
            backend=args.backend,
            jobs=args.jobs,
            indices=indices,
            options=options,
            on_error="continue" if args.keep_going else "raise",
            reporter=reporters,
            reporter_options=reporter_options,
            registry=registry,
        )
    except TaskFailedError as exc:
        error(str(exc))
        _emit(args, exc.result, stopped_at=exc.index)
        return ExitCode.TASKS_FAILED
    except RunInterrupted as exc:
        error("interrupted")
        _emit(args, exc.result)
        return ExitCode.INTERRUPTED
    _emit(args, result)
    return ExitCode.OK if result.ok else ExitCode.TASKS_FAILED


def _emit(args: argparse.Namespace, result: RunResult, stopped_at: int | None = None) -> None:
    if args.json:
        summary = result.summary()
        summary["stopped_at"] = stopped_at
        print_json(summary)
    sys.stdout.flush()
