"""``curator run --dry-run``: what a run would do, checked as the run checks it; nothing runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curator.checkpoint.settings import RunSettings
from curator.cli.exitcodes import ExitCode
from curator.cli.output import print_fields, print_json
from curator.model.pipeline import Pipeline

if TYPE_CHECKING:
    from curator.running.runner import CheckedRun

WOULD_STOP = (
    "so the run would stop at once (choose another with --checkpoint PATH, or run with "
    "--no-checkpoint)"
)


def dry_run(
    pipeline: Pipeline[Any],
    path: Path | None,
    checked: CheckedRun,
    args: argparse.Namespace,
    settings: RunSettings,
) -> ExitCode:
    """Print what a run (with ``--resume``: a resumed run) would do, and do nothing."""
    from curator.backends.work import Work
    from curator.checkpoint.file import writing_problem
    from curator.checkpoint.fingerprint import identify
    from curator.checkpoint.latest import Latest, read_codes
    from curator.checkpoint.runlock import check_not_in_use
    from curator.checkpoint.stored_states import check_signatures
    from curator.running.runner import new_backend

    jobs = checked.jobs
    requested = checked.selected
    # What the run's backend would refuse before the run starts: asked of the system (a
    # cluster's partition, its limits), and of the work (a pipeline that cannot be
    # pickled or copied). Neither starts anything.
    backend = new_backend(checked)
    try:
        backend.check()
        work = Work(
            checked.runnable, 1, False, checked.measuring, checked.capturing,
            checked.features, checked.plan,
        )  # fmt: skip
        backend.prepare(work)
    finally:
        backend.close()
    # Told, not refused: reading a checkpoint needs no write access (the plan of
    # someone else's run), but the run itself would stop at once.
    cannot_write = writing_problem(path) if path is not None else None
    # What the run refuses when it opens the checkpoint: another pipeline's, a busy one.
    _, today, earlier = identify(pipeline)
    stored = read_codes(path, today, lambda: earlier) if path is not None else None
    if path is not None:
        check_not_in_use(path)
    if args.resume and stored is not None and path is not None:
        # What the resume would load must be the user's own, or it refuses.
        check_signatures(path, stored, bool(checked.plan.accumulating))
    split = (stored if args.resume and stored else Latest(len(pipeline), Path())).plan(requested)
    to_run = split.to_run
    summary: dict[str, Any] = {
        "checkpoint": str(path) if path is not None else None,
        "backend": checked.name,
        "jobs": jobs,
        "requested": len(requested),
        "done": split.done,
        "failed": split.failed,
        "interrupted": split.interrupted,
        "pending": split.pending,
        "to_run": to_run,
        "failed_indices": split.failed_indices,
        "settings": settings.to_json(),
        "cannot_write": cannot_write,
    }
    if args.json:
        print_json(summary)
    else:
        print_fields(
            "dry run: nothing was run",
            [
                ("checkpoint", str(path) if path is not None else "(none)"),
                ("backend", f"{summary['backend']}, jobs={jobs}"),
                ("settings", " ".join(settings.flags()) or "(the defaults)"),
                ("requested", str(summary["requested"])),
                ("done (skipped)", str(summary["done"])),
                ("failed (run again)", str(summary["failed"])),
                ("interrupted (run again)", str(summary["interrupted"])),
                ("pending", str(summary["pending"])),
                ("to run", str(to_run)),
                *([("warning", f"{cannot_write}, {WOULD_STOP}")] if cannot_write else []),
            ],
        )
    return ExitCode.OK
