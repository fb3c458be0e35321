"""What ``curator status`` prints: a folder's checkpoints, one checkpoint, its failures."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path
from typing import Any

from curator.checkpoint.catalog import (
    CheckpointReport,
    Unreadable,
    check_readable,
    failure_json,
    listing,
    read,
    read_item,
)
from curator.checkpoint.file import NotACheckpoint
from curator.checkpoint.latest import StoredOutcome
from curator.checkpoint.parameters import variants
from curator.checkpoint.store import DEFAULT_DIR, resolve_path
from curator.cli.exitcodes import ExitCode
from curator.cli.output import print_fields, print_json, print_table, print_text, warn
from curator.model.errors import UsageError
from curator.model.outcome import Status
from curator.observing.reporters.summary import MAX_LISTED_FAILURES
from curator.plugin_host.registry import Registry


def show_status(args: argparse.Namespace, registry: Registry | None = None) -> ExitCode:
    """List the checkpoints of a folder, or describe one checkpoint.

    With the run's ``registry``, a checkpoint whose runs went to a batch
    backend also shows what jobs of a killed run finished that the
    checkpoint does not hold yet (a ``--resume`` adopts it).
    """
    folder, path = locate(args.what)
    if path is None:
        assert folder is not None
        if args.index is not None or args.failed:
            raise UsageError(
                "--index and --failed need one checkpoint: curator status CHECKPOINT|TARGET ..."
            )
        return _list(folder, args)
    if args.index is not None:
        return _show_item(path, args.index, args)
    report = read(path)
    if args.failed:
        return _show_failures(report, args)
    return _show(report, args, registry)


def locate(what: str | None) -> tuple[Path | None, Path | None]:
    """``(folder, None)`` to list a folder, ``(None, file)`` to show one checkpoint."""
    if what is None:
        return Path(DEFAULT_DIR), None
    if not what:  # Path("") is the current folder: an unset variable, not a choice
        raise UsageError("the checkpoint or TARGET given is empty: name one, or leave it out")
    given = Path(what)
    if given.is_dir():
        return given, None
    if given.exists() or ":" not in what:
        path = resolve_path(what)
        assert path is not None
        return None, path
    from curator.checkpoint.opening import checkpoint_path
    from curator.cli.output import stdout_to_stderr
    from curator.cli.target import load_target

    with stdout_to_stderr():  # what the module prints is not the command's output (--json)
        pipeline = load_target(what)
    path = checkpoint_path(pipeline, True)
    assert path is not None
    from curator.checkpoint.file import holds_checkpoint

    if not holds_checkpoint(path):
        from curator.cli.remembered import same_class_lines

        lines = same_class_lines(pipeline, path.parent)
        raise UsageError(
            f"no checkpoint of {what} at {path} (it is recorded by a run of exactly this "
            "configuration)" + "".join(f"\n  {line}" for line in lines)
        )
    return None, path


def one_checkpoint(what: str | None, command: str) -> Path:
    """The checkpoint a command that reads one was given (a file or a TARGET), else the newest.

    ``command`` is its usage (``logs INDEX``), for the message when there is none.
    """
    if what is None:
        return newest(command)
    folder, path = locate(what)
    if path is not None:
        return path
    assert folder is not None
    found = []
    for candidate in sorted(folder.glob("*.sqlite")):
        try:
            check_readable(candidate)
        except NotACheckpoint:
            continue
        found.append(candidate)
    if len(found) == 1:  # what --checkpoint FOLDER made: its one checkpoint
        return found[0]
    names = "".join(f"\n  {shlex.quote(str(p))}" for p in found)
    raise UsageError(
        f"{what} is a folder of {len(found)} checkpoints: name one"
        + (f" of them:{names}" if found else " (it holds none)")
    )


def newest(command: str) -> Path:
    """The most recently written checkpoint in ``.curator/``, for commands that default to it.

    ``command`` is the usage shown if there is none (``logs INDEX``). Newer
    files that are no checkpoint at all are passed over, each named on stderr
    with the reason; a newer checkpoint that cannot be read (damaged, of a
    later curator) is an error, not a reason to show an older run.
    """
    passed_over: list[str] = []
    for path in sorted(Path(DEFAULT_DIR).glob("*.sqlite"), key=_written, reverse=True):
        try:
            check_readable(path)
        except NotACheckpoint as exc:
            passed_over.append(str(exc))
            continue
        for reason in passed_over:
            warn(f"passed over a newer file: {reason}")
        return path
    why = "".join(f"\n  {reason}" for reason in passed_over)
    raise UsageError(
        f"no checkpoint in {DEFAULT_DIR}/: name one (curator {command} CHECKPOINT){why}"
    )


def _written(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed since the listing: tried last, and then said to be missing
        return 0.0


def _list(folder: Path, args: argparse.Namespace) -> ExitCode:
    if not folder.is_dir():
        if args.json:
            print_json([])
            return ExitCode.OK
        raise UsageError(f"no checkpoint in {folder}/ (runs record one unless --no-checkpoint)")
    found = listing(folder)
    reports = [entry for entry in found if isinstance(entry, CheckpointReport)]
    unreadable = [entry for entry in found if isinstance(entry, Unreadable)]
    described = variants(reports)
    if args.json:
        rows = [_summary_json(r, described[r.path]) for r in reports]
        print_json(rows + [entry.to_json() for entry in unreadable])
        return ExitCode.OK
    if not found:
        raise UsageError(f"no checkpoint in {folder}/ (runs record one unless --no-checkpoint)")
    print_table(
        f"checkpoints in {folder}",
        ["checkpoint", "pipeline", "parameters", "done", "failed", "last run", "state"],
        [
            [
                r.path.name,
                r.pipeline,
                described[r.path],
                f"{r.done}/{r.total}",
                str(r.failed),
                _when(r),
                r.state,
            ]
            for r in reports
        ]
        + [
            [u.path.name, "-", "-", "-", "-", "-", "damaged" if u.damaged else "unreadable"]
            for u in unreadable
        ],
    )
    for entry in unreadable:
        print_text(f"{entry.path.name}: {entry.problem}")
    print_text("details: curator status CHECKPOINT (or the TARGET you ran)")
    return ExitCode.OK


def _summary_json(report: CheckpointReport, variant: str) -> dict[str, Any]:
    last = report.runs[-1] if report.runs else None
    return {
        "checkpoint": str(report.path),
        "pipeline": report.pipeline,
        "variant": variant,
        "total": report.total,
        "done": report.done,
        "failed": report.failed,
        "counts": report.counts,
        "state": report.state,
        "last_run": last.to_json() if last is not None else None,
    }


def _when(report: CheckpointReport) -> str:
    if not report.runs:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(report.runs[-1].started))


def _show(
    report: CheckpointReport, args: argparse.Namespace, registry: Registry | None = None
) -> ExitCode:
    data = report.to_json()
    settings = report.settings
    data["settings"] = settings.to_json() if settings is not None else None
    outside = _jobs_outside(report, registry)
    if outside is not None:
        data["jobs_outside"] = outside
    if args.json:
        print_json(data)
        return ExitCode.OK
    last = report.runs[-1] if report.runs else None
    when = "-"
    if last is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.started))
        when += f" on {last.backend} (jobs={last.jobs}), {last.seconds:.2f} s"
        when += f", {last.items_per_second:,.1f} items/s" if last.items_per_second else ""
    counts = ", ".join(f"{n} {Status(status).label}" for status, n in data["counts"].items())
    fields = [
        ("pipeline", report.pipeline),
        ("state", report.state),
        ("items", str(report.total)),
        ("recorded", counts or "-"),
        ("not recorded", str(data["not_recorded"])),
        ("runs", str(len(report.runs))),
        ("last run", when),
    ]
    if settings is not None:
        # Quoted to be pasted into a shell: a target, a path or an option value may hold spaces.
        words = [settings.target or "TARGET", *settings.flags()]
        command = "curator run " + shlex.join(words)
        fields.append(("settings", command))
    fields += [(f"  {key}", value) for key, value in report.parameters.items() if "." in key]
    if outside is not None and outside["rounds"]:
        fields.append((
            "jobs outside",
            f"{outside['finished']} items finished by jobs of {outside['rounds']} round(s) "
            f"whose run ended without them, in {outside['folder']}: --resume adopts them",
        ))  # fmt: skip
    print_fields(f"checkpoint {report.path}", fields)
    failures = report.failures
    if failures:
        print_table(
            f"failed items ({len(failures)})",
            ["index", "status", "attempt", "worker", "error"],
            [
                [
                    str(f.index),
                    Status(f.status).label,
                    str(f.attempt),
                    f.worker,
                    _error_line(f),
                ]
                for f in failures[:MAX_LISTED_FAILURES]
            ],
        )
        more = len(failures) - MAX_LISTED_FAILURES
        listed = f"{more} more, and " if more > 0 else ""
        where = shlex.quote(str(report.path))
        print_text(f"{listed}full tracebacks: curator status {where} --failed (or --index N)")
    return ExitCode.OK


def _jobs_outside(report: CheckpointReport, registry: Registry | None) -> dict[str, Any] | None:
    """What jobs of a killed batch run of this checkpoint finished that it does not hold.

    ``None`` unless the checkpoint's runs went to a batch backend (whose jobs
    outlive the run's process) and its job folder is known.
    """
    settings = report.settings
    if settings is None or registry is None:
        return None
    from curator.cli.remembered import batch_job_folder

    folder = batch_job_folder(registry, settings)
    if folder is None:
        return None
    from curator.backends.batch.adoption import not_adopted
    from curator.checkpoint.latest import read_codes

    rounds, finished = not_adopted(os.path.abspath(folder), str(report.path.resolve()))
    latest = read_codes(report.path, report.fingerprint) if finished else None
    if latest is not None:  # what the run recorded before it died is no news
        finished = {i for i in finished if latest.status(i) != Status.OK.value}
    return {"folder": folder, "rounds": rounds, "finished": len(finished)}


def _error_line(stored: StoredOutcome) -> str:
    return stored.error.headline() if stored.error else ""


def _show_item(path: Path, index: int, args: argparse.Namespace) -> ExitCode:
    stored = read_item(path, index, f"--index {index}")
    if args.json:
        print_json(failure_json(stored, traceback=True) if stored else {"index": index})
        return ExitCode.OK
    if stored is None:
        print_text(f"item {index}: not recorded (it never finished in a run of this checkpoint)")
        return ExitCode.OK
    _print_record(stored)
    return ExitCode.OK


def _show_failures(report: CheckpointReport, args: argparse.Namespace) -> ExitCode:
    failures = report.failures
    if args.json:
        print_json([failure_json(f, traceback=True) for f in failures])
        return ExitCode.OK
    if not failures:
        print_text(f"no failed item in {report.path}")
    for stored in failures:
        _print_record(stored)
    return ExitCode.OK


def _print_record(stored: StoredOutcome) -> None:
    fields = [
        ("status", Status(stored.status).label),
        ("attempt", str(stored.attempt)),
        ("worker", stored.worker),
        ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stored.started))),
        ("seconds", f"{stored.finished - stored.started:.3f}"),
    ]
    if stored.error is not None:
        fields.append(("error", _error_line(stored)))
        if stored.error.exit_code is not None:
            fields.append(("exit code", str(stored.error.exit_code)))
    print_fields(f"item {stored.index}", fields)
    if stored.error is not None and stored.error.traceback:
        print_text(stored.error.details())
