"""``curator bench TARGET``: measure a pipeline on each installed backend and recommend one."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from curator.cli.exitcodes import ExitCode
from curator.cli.output import (
    error,
    print_json,
    print_table,
    print_text,
    reserve_stdout,
    warn,
)
from curator.cli.target import load_target
from curator.model.errors import UsageError
from curator.model.measures import format_bytes
from curator.observing.reporters.summary import format_duration
from curator.plugin_host.registry import Registry

COLUMNS = (
    "backend", "jobs", "chunksize", "items/s", "item (median)", "overhead/item", "start-up",
    "wind-down", "worker peak RSS", "speedup", "estimated total",
)  # fmt: skip


def add_parser(commands: Any) -> None:
    """Add the ``bench`` subcommand."""
    parser = commands.add_parser(
        "bench",
        help="measure a pipeline on each installed backend and recommend one",
        description="Run a sample of the pipeline's items on each installed backend, at a "
        "few job counts and chunk sizes, and recommend the fastest for the whole run. "
        "Nothing is checkpointed; files the stages write go to a scratch folder.",
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="package.module:attr or path/to/file.py:attr, as for curator run",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=32,
        metavar="N",
        help="items to run per configuration, spread over the pipeline (default: 32)",
    )
    parser.add_argument(
        "-b",
        "--backend",
        action="append",
        metavar="NAME",
        help="measure this backend only (repeat for several; default: every installed one)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_job_counts,
        metavar="N[,N...]",
        help="job counts for parallel backends, -1 for every CPU (default: 2 and every CPU)",
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="[BACKEND:]KEY=VALUE",
        help="a backend option for the backends named with -b, or for BACKEND only (repeatable)",
    )
    parser.add_argument(
        "--scratch",
        metavar="DIR",
        help="where the sampled items write their files, and a batch backend's jobs keep theirs "
        "(default: a temporary folder, removed; in the working directory when a batch "
        "backend is measured)",
    )
    parser.add_argument(
        "--allow-writes",
        action="store_true",
        help="run stages that curator cannot point at the scratch folder anyway",
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(handler=bench_command)


def _job_counts(text: str) -> list[int]:
    """``2,4,8``; as ``curator run -j`` reads them, ``-1`` is every CPU, ``-2`` all but one."""
    from curator.model.selection import resolve_jobs

    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected job counts like 2,4,8, got {text!r}") from None
    try:
        return [resolve_jobs(count) for count in counts]
    except UsageError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (in -j {text})") from None


def _scoped(options: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``-o`` options for every backend named, and those for one (``NAME:KEY``), by name."""
    from curator.backends.backend import normalize_name

    common: dict[str, str] = {}
    own: dict[str, dict[str, str]] = {}
    for key, value in options.items():
        backend, scoped, name = key.rpartition(":")
        if not scoped:
            common[key] = value
            continue
        if not backend.strip() or not name.strip():
            raise UsageError(f"invalid option {key}={value!r}: expected BACKEND:KEY=VALUE")
        backend, name = normalize_name(backend.strip()), name.strip()
        given = own.setdefault(backend, {})
        if name in given:  # process_pool:k and process-pool:k
            raise UsageError(f"option {name!r} of backend {backend!r} is given twice")
        given[name] = value
    return common, own


def bench_command(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """``curator bench``: the table (or JSON), then the recommendation."""
    # What the pipeline prints goes to stderr; stdout is the table's (until the process exits).
    from curator.cli.launch import parse_options  # here: `curator --help` does without it

    if args.scratch is not None and not args.scratch.strip():
        raise UsageError("--scratch needs a folder, got an empty name")
    with reserve_stdout():
        args.options, args.backend_options = _scoped(parse_options(args.option or []))
        pipeline = load_target(args.target)
        skipped: list[tuple[str, str]] = []
        if args.scratch is not None:
            rows = _measure(registry, args, pipeline, Path(args.scratch), skipped)
        else:
            with _temporary_scratch(registry, args.backend) as scratch:
                rows = _measure(registry, args, pipeline, Path(scratch), skipped)
        return _report(args, rows, len(pipeline), registry, skipped)


def _report(
    args: argparse.Namespace,
    rows: list[Any],
    total: int,
    registry: Registry,
    skipped: list[tuple[str, str]],
) -> ExitCode:
    from curator.running.bench import best, speedup_base
    from curator.running.bench_configs import not_measured

    base = speedup_base(rows)
    chosen = best(rows, total)
    left_out = [*not_measured(registry, args.backend), *skipped]
    if args.json:
        print_json(
            {
                "target": args.target,
                "items": total,
                "sample": rows[0].items,
                "options": args.options,
                "backend_options": args.backend_options,
                "configurations": [row.to_json(base, total) for row in rows],
                "recommended": None if chosen is None else chosen.to_json(base, total),
                "not_measured": [{"backend": n, "reason": why} for n, why in left_out],
            }
        )
    else:
        print_table(f"curator bench {args.target}", COLUMNS, [_row(r, base, total) for r in rows])
    for name, why in left_out:
        warn(f"not measured: {name} ({why})")
    failing = [row for row in rows if row.failed]
    for row in failing:
        error(
            f"{row.config.label}: {row.failed} of {row.items} sampled items failed "
            f"(first: {row.first_error})"
        )
    if chosen is None:
        error("no configuration ran the sample without failures: nothing to recommend")
        return ExitCode.TASKS_FAILED
    if not args.json:
        # As typed, the chosen backend's own too; the chunk size measured if none was given.
        asked = {**args.options, **args.backend_options.get(chosen.config.backend, {})}
        if chosen.config.chunksize is not None:
            asked.setdefault("chunksize", chosen.config.chunksize)
        chunk = "".join(f" -o {shlex.quote(f'{key}={value}')}" for key, value in asked.items())
        print_text(
            f"recommended: curator run {shlex.quote(args.target)} -b {chosen.config.backend} "
            f"-j {chosen.config.jobs}{chunk}  (about {_duration(chosen.estimate(total))} "
            f"for {total:,} items)"
        )
    return ExitCode.TASKS_FAILED if failing else ExitCode.OK


def _temporary_scratch(
    registry: Registry, backends: list[str] | None
) -> tempfile.TemporaryDirectory[str]:
    """The scratch folder made for the bench, removed afterwards.

    In the system's temporary folder, unless a batch backend is measured: its
    jobs run on other machines, and write there too, so the folder is made in
    the working directory, where such a backend keeps its jobs' folder by
    default (on a cluster, a shared file system).
    """
    from curator.running.bench import runs_elsewhere

    elsewhere = [name for name in backends or () if runs_elsewhere(registry, name)]
    # Left behind rather than fail the bench: a job's open file on NFS (.nfs*) cannot go yet.
    if not elsewhere:
        return tempfile.TemporaryDirectory(prefix="curator-bench-", ignore_cleanup_errors=True)
    try:
        return tempfile.TemporaryDirectory(
            prefix="curator-bench-", dir=os.path.abspath("."), ignore_cleanup_errors=True
        )
    except OSError as exc:
        raise UsageError(
            f"cannot make the scratch folder for {elsewhere[0]}'s jobs in the working "
            f"directory ({exc.strerror or exc}); give --scratch DIR on a file system the jobs "
            "reach"
        ) from None


def _measure(
    registry: Registry,
    args: argparse.Namespace,
    pipeline: Any,
    folder: Path,
    skipped: list[tuple[str, str]],
) -> list[Any]:
    from curator.running.bench import bench

    def measuring(config: Any) -> None:
        sys.stderr.write(f"curator bench: measuring {config.label}\n")

    return bench(
        pipeline, folder, sample=args.sample, backends=args.backend, jobs=args.jobs,
        allow_writes=args.allow_writes, options=args.options,
        backend_options=args.backend_options, registry=registry,
        progress=measuring,
        skipped=lambda backend, why: skipped.append((backend, why)),
    )  # fmt: skip


def _row(row: Any, base: float | None, total: int) -> list[str]:
    return [
        row.config.backend,
        str(row.config.jobs),
        "auto" if row.config.chunksize is None else str(row.config.chunksize),
        f"{row.per_second:,.1f}",
        _duration(row.item),
        _duration(row.overhead),
        _duration(row.startup),
        _duration(row.wind_down),
        format_bytes(row.worker_rss),
        "-" if base is None else f"{row.per_second / base:.2f}x",
        # Not a candidate: the recommendation passes over configurations with failures.
        f"- ({row.failed} failed)" if row.failed else _duration(row.estimate(total)),
    ]


def _duration(seconds: float) -> str:
    """``12 µs``, ``3.4 ms``, ``1.2 s``; past a minute as the reporters write it (``3:20``)."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return format_duration(seconds)
