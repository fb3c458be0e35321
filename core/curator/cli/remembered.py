"""What ``curator run`` remembers: the last run's settings, and what a checkpoint already holds.

- ``--resume`` reuses the settings recorded by the checkpoint's last run for
  every flag not given again, and says so in one line.
- A rerun without ``--resume`` over a checkpoint that holds finished items
  says how many, and how to skip them.
- ``--resume`` with nothing to resume says it starts fresh, and names
  checkpoints of the same pipeline class with what differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curator.backends.backend import normalize_name
from curator.checkpoint.settings import RunSettings
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline
from curator.plugin_host.registry import Registry

MAX_SIMILAR = 3
"""Checkpoints of the same pipeline class named at most."""
MAX_DIFFERENCES = 3
"""Differing parameters named per checkpoint."""


PLAIN_FLAGS = (
    "backend", "jobs", "indices", "max_failures", "retries", "retry_delay", "retry_backoff",
    "timeout", "grace", "setup_timeout", "teardown_timeout",
)  # fmt: skip
"""Flags whose value is the setting as given (``None`` when left out)."""


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line gives explicitly (flags left out are absent)."""
    from curator.cli.launch import parse_options, parse_reporter_options

    given: dict[str, Any] = {"target": args.target}
    for name in PLAIN_FLAGS:
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.keep_going is not None:
        given["on_error"] = "continue" if args.keep_going else "raise"
    for switch in ("metrics", "capture"):
        if getattr(args, switch) is not None:
            given[switch] = getattr(args, switch)
    if args.option:
        given["options"] = parse_options(args.option)
    for dest, flag in getattr(args, "option_flags", {}).items():  # a backend's own flags
        value = getattr(args, dest)
        if value is None:
            continue
        options = given.get("options", {})
        if flag.option in options:  # as -o twice: which one was meant is not ours to guess
            raise UsageError(
                f"option {flag.option!r} is given twice (-o {flag.option}=... and {flag.flag})"
            )
        given["options"] = {**options, flag.option: value}
    if args.reporter:
        given["reporter"] = tuple(args.reporter)
    if args.reporter_option:
        given["reporter_options"] = parse_reporter_options(args.reporter_option)
    for dest, (reporter, name) in getattr(args, "reporter_flags", {}).items():
        value = getattr(args, dest)
        if value is None:
            continue
        options = given.setdefault("reporter_options", {}).setdefault(reporter, {})
        if name in options:
            raise UsageError(f"reporter option {reporter}.{name} is given twice (and by its flag)")
        options[name] = value
    return given


BACKEND_SETTINGS = ("jobs", "options")
"""Settings sized for one backend: a resume with another backend does not reuse them.

``-o`` options are the backend's own; ``-j`` is sized for its kind of worker
(32 threads for I/O are not 32 processes, and a sequential backend takes no
``-j``), so the other backend starts from its default (every CPU it may use
on a parallel backend, one item at a time otherwise) unless ``-j`` is given.
"""


def merge(
    given: dict[str, Any], stored: RunSettings | None
) -> tuple[RunSettings, list[str], list[str], list[str]]:
    """The run's settings: given flags, else the stored ones, else the defaults.

    Returns the settings, the names of the stored ones reused, the flags of
    the stored ones left out because another backend is given (see
    :data:`BACKEND_SETTINGS`), and the lines saying which stored ones a flag
    given now replaces without naming them (see :func:`_failure_mode_given`).
    """
    if stored is None:
        return RunSettings(**given), [], [], []
    base, replaced = _failure_mode_given(given, stored)
    dropped: list[str] = []
    if "backend" in given and normalize_name(given["backend"]) != stored.backend:
        forgotten = dataclasses.replace(
            stored,
            jobs=None if "jobs" in given else stored.jobs,
            options={k: v for k, v in stored.options.items() if k not in given.get("options", {})},
        )
        dropped = forgotten.flags(list(BACKEND_SETTINGS))
        base = dataclasses.replace(base, jobs=RunSettings().jobs, options={})
    if "reporter" in given:  # the recorded options of the reporters still chosen stay
        chosen = {normalize_name(name) for name in given["reporter"]}
        kept = {name: o for name, o in base.reporter_options.items() if name in chosen}
        base = dataclasses.replace(base, reporter_options=kept)
    if "options" in given:
        given = {**given, "options": {**base.options, **given["options"]}}
    if "reporter_options" in given:  # by reporter and key, as -o merges by key
        combined = {name: dict(kept) for name, kept in base.reporter_options.items()}
        for name, options in given["reporter_options"].items():
            combined[name] = {**combined.get(name, {}), **options}
        given = {**given, "reporter_options": combined}
    merged = dataclasses.replace(base, **given)
    defaults = RunSettings()
    reused = [
        field.name
        for field in dataclasses.fields(RunSettings)
        if field.name not in given
        and field.name not in ("target", "unrecorded")
        and getattr(merged, field.name) != getattr(defaults, field.name)
    ]
    return merged, reused, dropped, replaced


def _failure_mode_given(
    given: dict[str, Any], stored: RunSettings
) -> tuple[RunSettings, list[str]]:
    """Forget the stored ``--max-failures`` when ``--keep-going``/``--no-keep-going`` is given.

    A failure budget overrides the failure mode (see
    :class:`~curator.running.policy.Policy`): reused under ``--keep-going``,
    the last run's ``--max-failures 2`` would stop the resume at two failures
    again, so the hint "--resume --keep-going" after such a stop would never
    get past them. The mode given now is the user's word on failures; a
    budget given with it stays.
    """
    if "on_error" not in given or "max_failures" in given or stored.max_failures is None:
        return stored, []
    mode = "--keep-going" if given["on_error"] == "continue" else "--no-keep-going"
    line = f"not reused: --max-failures {stored.max_failures} ({mode} given now)"
    return dataclasses.replace(stored, max_failures=None), [line]


def say(message: str) -> None:
    """One ``curator:`` line on stderr."""
    sys.stderr.write(f"curator: {message}\n")


def reuse_lines(
    settings: RunSettings,
    reused: list[str],
    given: dict[str, Any],
    dropped: Sequence[str] = (),
    before: str = "",
) -> list[str]:
    """What a resume reuses of the recorded settings, and what it does not.

    ``dropped`` are the flags of the last run's backend ``before`` that a
    resume with another backend leaves out (see :func:`merge`).
    """
    lines = []
    if settings.unrecorded:
        listed = ", ".join(settings.unrecorded)
        lines.append(
            f"the last run's {listed} could not be recorded (a Python object, or a selection "
            "too long): give them again if they matter"
        )
    # -o and --reporter-option merge by key: the recorded keys not given now are reused.
    kept: dict[str, Any] = {
        "options": _not_given(settings.options, given.get("options") or {}),
        "reporter_options": {
            name: left
            for name, recorded in settings.reporter_options.items()
            if (left := _not_given(recorded, given.get("reporter_options", {}).get(name) or {}))
        },
    }
    kept = {name: value for name, value in kept.items() if name in given and value}
    if reused or kept:
        now = [name for name in given if name != "target"]
        as_given = RunSettings(**given).flags(now)  # the merged -o would show the kept keys too
        overridden = f"; given now: {' '.join(as_given)}" if now else ""
        reused_flags = settings.flags(reused) + dataclasses.replace(RunSettings(), **kept).flags(
            list(kept)
        )
        lines.append(f"resuming with the last run's settings: {' '.join(reused_flags)}{overridden}")
    if dropped:
        lines.append(
            f"not reused with -b {settings.backend}: {' '.join(dropped)} (the last run's "
            f"{before} settings; give them again to keep them)"
        )
    return lines


def _not_given(recorded: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The options among ``recorded`` whose keys were not given now."""
    return {key: value for key, value in recorded.items() if key not in given}


def nothing_to_resume(pipeline: Pipeline[Any], path: Path, why: str) -> list[str]:
    """Lines saying that ``--resume`` starts fresh, naming look-alike checkpoints."""
    lines = [f"nothing to resume: {why}; starting fresh"]
    lines += [f"  {line}" for line in same_class_lines(pipeline, path.parent, exclude=path)]
    return lines


def same_class_lines(
    pipeline: Pipeline[Any], folder: Path, exclude: Path | None = None
) -> list[str]:
    """Lines naming checkpoints in ``folder`` of the same pipeline class, with what differs.

    A checkpoint of this very configuration (at a path other than ``exclude``,
    named by ``--checkpoint``) is named with the flag that resumes it.
    """
    from curator.checkpoint.catalog import scan
    from curator.checkpoint.fingerprint import identify
    from curator.checkpoint.parameters import differences, flatten

    if not folder.is_dir():
        return []
    try:
        description, this, mine_earlier = identify(pipeline)  # and what an earlier curator gave it
        mine = flatten(description)
    except Exception:  # a pipeline curator cannot describe: nothing to compare
        return []
    similar = [
        r for r in reversed(scan(folder)) if r.pipeline == repr(pipeline) and r.path != exclude
    ]
    lines = []
    for report in similar[:MAX_SIMILAR]:
        if report.fingerprint in (this, mine_earlier):
            lines.append(
                f"{report.path} holds this configuration ({report.done} of {report.total} "
                f"done): to resume it, give --checkpoint {shlex.quote(str(report.path))}"
            )
            continue
        changed = differences(mine, report.parameters) if report.parameters else []
        what = "; ".join(changed[:MAX_DIFFERENCES]) or "parameters not recorded"
        if len(changed) > MAX_DIFFERENCES:
            what += f"; and {len(changed) - MAX_DIFFERENCES} more"
        lines.append(
            f"{report.path} holds the same pipeline class with other parameters "
            f"({report.done} of {report.total} done): {what}"
        )
    if len(similar) > MAX_SIMILAR:
        more = len(similar) - MAX_SIMILAR
        lines.append(f"and {more} more: curator status {shlex.quote(str(folder))}")
    if any(report.fingerprint not in (this, mine_earlier) for report in similar):
        lines.append(
            "a resume reuses only results of exactly this configuration; to continue one of "
            "those, run that configuration"
        )
    return lines


def stored_settings(path: Path) -> tuple[RunSettings | None, int]:
    """The settings of the checkpoint's last run, and how many of its items are done.

    Read before the run takes the checkpoint's lock. A file that does not read
    as a checkpoint may be one that another run is creating under its lock:
    then the answer is that the checkpoint is in use (the lock's own error),
    not that it is no checkpoint. Otherwise the file is read again holding the
    lock, when no run can be writing it, and its own error stands.
    """
    from curator.checkpoint.catalog import resume_facts
    from curator.checkpoint.runlock import give_back_refused, has_lock_file, release_lock, take_lock
    from curator.checkpoint.store import wait_closed

    try:
        return resume_facts(path)
    except UsageError:
        pass
    wait_closed(path)  # a store this process closed lets go of the lock first
    made = not has_lock_file(path)
    lock = take_lock(path)  # another run holds it: "in use by another curator run"
    try:
        facts = resume_facts(path)
    except BaseException:  # refused (the user's notes.txt is no checkpoint)
        give_back_refused(lock, path, made)
        raise
    release_lock(lock)
    return facts


def batch_job_folder(registry: Registry, settings: RunSettings) -> str | None:
    """Where the jobs of a run with ``settings`` work, if its backend is a batch backend.

    ``None`` for any other backend, one whose plugin is not installed here,
    or a job folder that is not there (any more).
    """
    try:
        backend = registry.backend(settings.backend)
    except UsageError:  # its plugin is not installed here
        return None
    from curator.backends.batch.backend import BatchBackend

    if not issubclass(backend, BatchBackend):
        return None
    folder = settings.options.get("job_folder") or backend.default_job_folder()
    return folder if isinstance(folder, str) and os.path.isdir(folder) else None


def jobs_left_running(
    registry: Registry, path: Path, stored: RunSettings | None, backend: str
) -> list[str]:
    """What to say when a resume on ``backend`` leaves a killed batch run's jobs alone.

    ``stored``: the settings of the checkpoint's last run. The jobs of a batch
    backend outlive the run's process; a resume on that backend stops them and
    adopts what they did, a resume on another one does neither, and may run
    their items a second time while they still run.
    """
    if stored is None or normalize_name(stored.backend) == normalize_name(backend):
        return []
    folder = batch_job_folder(registry, stored)
    if folder is None:
        return []
    from curator.backends.batch.adoption import not_adopted

    rounds, finished = not_adopted(os.path.abspath(folder), str(path.resolve()))
    if not rounds:
        return []
    return [
        f"jobs of an earlier {stored.backend} run of this checkpoint may still be running "
        f"({rounds} round(s) in {folder}, {len(finished)} items finished there): a resume "
        f"on {backend} neither stops nor adopts them, and may run their items a second "
        f"time while they run. To adopt what they did, resume with --backend {stored.backend}"
    ]
