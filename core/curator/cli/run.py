"""``curator run TARGET``: run a pipeline from the command line.

Only the parser lives here; what the command does is imported when it runs
(:mod:`curator.cli.launch`), so that other commands do not pay for it.
"""

from __future__ import annotations

import argparse
from typing import Any

from curator.cli.exitcodes import ExitCode
from curator.plugin_host.registry import Registry


def add_parser(
    commands: Any, registry: Registry | None = None, *, plugin_flags: bool = True
) -> None:
    """Add the ``run`` subcommand; with ``plugin_flags``, the flags ``registry``'s plugins declare.

    Those flags need every backend's and reporter's class imported.
    """
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
        "-b", "--backend", help="backend name (default: sequential); see `curator backends list`"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        help=(
            "items at once: N workers, -1 all CPUs, -2 all but one; 1 runs in this process "
            "unless the backend runs one item at a time its own way (default: every CPU this "
            "process may use on a parallel backend, else 1)"
        ),
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
        metavar="KEY=VALUE",
        help="a backend option (repeatable); see `curator backends show NAME`",
    )
    policy = parser.add_argument_group(
        "failures and retries",
        "With --resume, every setting left out is taken from the checkpoint's last run.",
    )
    policy.add_argument(
        "--keep-going",
        action=argparse.BooleanOptionalAction,
        help="run every item even when some fail (default: stop at the first failure)",
    )
    policy.add_argument(
        "--max-failures", type=int, metavar="N", help="stop once N items have failed"
    )
    policy.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="try failed, crashed and timed-out items again, up to N times (default: 0)",
    )
    policy.add_argument(
        "--retry-delay", type=float, metavar="S", help="seconds before retrying (default: 0)"
    )
    policy.add_argument(
        "--retry-backoff",
        type=float,
        metavar="F",
        help="each retry round waits F times longer (default: 2)",
    )
    policy.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="stop an item after S seconds (backends that can, e.g. process-pool; 0: no "
        "limit, which also drops one --resume would reuse)",
    )
    policy.add_argument(
        "--setup-timeout",
        type=float,
        metavar="S",
        help="a worker's stages may take S seconds in setup(worker): past it, the items that "
        "worker took fail (SetupTimeout) and the run goes on without it (default: "
        "max(60, 10 x --timeout) with --timeout, else no limit; 0: no limit)",
    )
    policy.add_argument(
        "--teardown-timeout",
        type=float,
        metavar="S",
        help="a worker's stages may take S seconds in teardown(): past it, the teardown is "
        "abandoned with a warning and the run ends, every outcome recorded (default: as "
        "--setup-timeout)",
    )
    policy.add_argument(
        "--grace",
        type=float,
        metavar="S",
        help="after Ctrl-C, wait up to S seconds for running items (default: 30)",
    )
    policy.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        help="measure items: seconds per stage, CPU time, peak memory (default: on, quick "
        "items sampled; --no-metrics saves the rest)",
    )
    policy.add_argument(
        "--all-metrics",
        dest="metrics",
        action="store_const",
        const="all",
        help="measure every item in full, quick ones too (about 3 µs per item)",
    )
    policy.add_argument(
        "--capture",
        action=argparse.BooleanOptionalAction,
        help="capture what each item prints (stdout, stderr, logging) into its record and the "
        "reporters; read it back with `curator logs INDEX` (default: on)",
    )
    store = parser.add_argument_group("checkpoint and resume")
    store.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="checkpoint file, or a folder to hold FOLDER/checkpoint.sqlite (a path without a "
        "suffix that does not exist is a folder), made with any missing folders "
        "(default: .curator/<pipeline fingerprint>.sqlite)",
    )
    store.add_argument("--no-checkpoint", action="store_true", help="record nothing on disk")
    store.add_argument(
        "--resume",
        action="store_true",
        help="skip items the checkpoint records as done and rerun the rest, with the last "
        "run's settings for every flag not given",
    )
    store.add_argument(
        "--dry-run",
        action="store_true",
        help="check the run as it would start (bad flags exit 2 as they would), print what "
        "would run (backend, jobs and settings; done, failed, interrupted, pending, to run) "
        "and run nothing",
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
        metavar="NAME.KEY=VALUE",
        help="an option of a selected reporter (repeatable), e.g. json.file=events.jsonl",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the run summary as one JSON object on stdout, and nothing else: what the "
        "pipeline and its items write to stdout goes to stderr",
    )
    parser.set_defaults(handler=run_command)
    if registry is not None and plugin_flags:
        from curator.cli.option_flags import add_option_flags

        add_option_flags(parser, registry)


def run_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Load the target, run it and report; the exit code says how it went."""
    from curator.cli.launch import launch

    return launch(registry, args)
