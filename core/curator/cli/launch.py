"""What ``curator run`` does: settings from flags and checkpoint, notices, the run, the hint."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curator.backends.backend import normalize_name
from curator.checkpoint.settings import RunSettings
from curator.cli.blame import blame_a_failing_backend, blame_the_backend
from curator.cli.exitcodes import ExitCode
from curator.cli.output import (
    command_stdout,
    error,
    print_json,
    reserve_stdout,
    stdout_to_stderr,
)
from curator.cli.remembered import (
    given_settings,
    jobs_left_running,
    merge,
    nothing_to_resume,
    reuse_lines,
    say,
    stored_settings,
)
from curator.cli.target import load_target
from curator.model.errors import (
    BackendContractError,
    CuratorError,
    PluginError,
    RunInterrupted,
    StateMergeError,
    TaskFailedError,
    TeardownError,
    UsageError,
)
from curator.model.outcome import Status
from curator.model.pipeline import Pipeline
from curator.model.result import RunResult
from curator.model.selection import parse_indices
from curator.plugin_host.registry import Registry
from curator.running.policy import Policy

if TYPE_CHECKING:
    from curator.running.runner import RunRequest


RESUMING = (
    "resuming: items the checkpoint records as done are skipped. It matches "
    "the pipeline's stages and parameters; edits to their code are not detected "
    "(after such an edit, start over with a new --checkpoint)"
)
"""Said when a run resumes a checkpoint (what is and is not checked)."""


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
        # The value may hold dots (json.file=events.jsonl): the name is before the key's.
        setting, equals, given = pair.partition("=")
        name, dot, field = setting.partition(".")
        if not dot or not name.strip():
            raise UsageError(
                f"invalid reporter option {pair!r}: expected NAME.KEY=VALUE, the reporter's "
                "name first (json.file=events.jsonl)"
            )
        for key, value in parse_options([f"{field}{equals}{given}"]).items():
            per_reporter = options.setdefault(normalize_name(name), {})
            if key in per_reporter:
                raise UsageError(f"reporter option {name}.{key} is given twice")
            per_reporter[key] = value
    return options


def _check_remembered_timeout(registry: Registry, backend: str, timeout: float) -> None:
    """A timeout ``--resume`` took from the checkpoint, on a backend that cannot stop items."""
    if not registry.backend(backend).capabilities.timeouts:
        raise UsageError(
            f"the checkpoint's run used --timeout {timeout:g}, and backend "
            f"{normalize_name(backend)!r} cannot stop a running item; give --timeout 0 to "
            "resume without an item timeout"
        )


def launch(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Load the target, run it and report; the exit code says how it went.

    With ``--json``, or the ``json`` reporter writing its events to stdout,
    stdout carries the JSON and nothing else: what the run writes to stdout
    goes to stderr (see :func:`reserve_stdout`). What the target's module
    prints while it is imported goes to stderr in any case.
    """
    with contextlib.ExitStack() as reserved:
        if args.json:
            reserved.enter_context(reserve_stdout())
        return _launch(registry, args, reserved)


def _launch(
    registry: Registry, args: argparse.Namespace, reserved: contextlib.ExitStack
) -> ExitCode:
    from curator.checkpoint.plugin import NAME as CHECKPOINT_PLUGIN
    from curator.checkpoint.plugin import asks_for_one
    from curator.running.runner import check_run, plan_run

    checkpoint, default = _checkpoint_asked(registry, args)
    given = given_settings(args)
    # Before the settings are known: a --resume may take the json reporter from the
    # checkpoint, and then stdout must hold its events only.
    with stdout_to_stderr():
        pipeline = load_target(args.target)
    path = None
    if asks_for_one(checkpoint):
        # SQLite and the checkpoint's modules: not for a run with --no-checkpoint.
        from curator.checkpoint.opening import checkpoint_path

        path = checkpoint_path(pipeline, checkpoint)
    settings, notices, resuming = _remembered(registry, pipeline, path, given, args)
    if not default and not args.no_checkpoint:
        notices = [
            *notices,
            f"no checkpoint: the built-in plugin {CHECKPOINT_PLUGIN} is disabled "
            "(CURATOR_DISABLE_PLUGINS), so this run records nothing on disk",
        ]
    _check_stdout(args, settings)
    _check_option_flags(registry, args, settings)
    if not args.json and _events_on_stdout(settings):
        from curator.observing.reporters.jsonlines import events_to_stdout

        reserved.enter_context(reserve_stdout())
        reserved.enter_context(events_to_stdout(command_stdout()))
    if settings.timeout and "timeout" not in given and settings.backend is not None:
        _check_remembered_timeout(registry, settings.backend, settings.timeout)
    indices = None if settings.indices is None else parse_indices(settings.indices, len(pipeline))
    if args.dry_run:
        # The run's own checks, then its checkpoint's (another pipeline's, busy): a dry
        # run refuses what the run would refuse before it starts.
        checked = check_run(pipeline, _request(settings, indices, checkpoint, args), registry)
        for line in notices:
            say(line)
        from curator.cli.dry_run import dry_run

        return dry_run(pipeline, path, checked, args, settings)
    try:
        request = _request(settings, indices, checkpoint, args)
        with warnings.catch_warnings():  # said as a notice (_remembered), not as Python's
            if path is not None:
                from curator.checkpoint.meta import EarlierFingerprintWarning

                warnings.filterwarnings("ignore", category=EarlierFingerprintWarning)
            loop = plan_run(pipeline, request, registry)
        for line in notices:  # once the run is known to be valid
            say(line)
        if resuming:
            say(RESUMING)
        result = loop.execute()
    except BackendContractError as exc:
        if exc.result is not None:  # it broke as it closed: every outcome is recorded
            _emit(args, exc.result)
        blame_the_backend(registry, settings.backend, exc)
        raise
    except TaskFailedError as exc:
        error(str(exc))
        _resume_hint(args, exc.result)
        _keep_going_hint(args, exc.result, exc.index, settings.max_failures)
        _emit(args, exc.result, stopped_at=exc.index)
        return ExitCode.TASKS_FAILED
    except StateMergeError as exc:  # the stage's code failed; every outcome is recorded
        error(str(exc))
        if exc.result is not None:
            _emit(args, exc.result)
        return ExitCode.TASKS_FAILED
    except TeardownError as exc:  # after the items: every outcome is recorded
        if exc.result is None:
            raise
        error(str(exc))
        _emit(args, exc.result)
        return ExitCode.TASKS_FAILED
    except RunInterrupted as exc:  # asked for (Ctrl-C, SIGTERM): not an error
        result = exc.result
        cause = exc.__cause__
        if isinstance(cause, SAID_AT_THE_END):  # how the run ended, before the stop
            error(str(cause))
        _resume_hint(args, result, "terminated" if exc.terminated else "interrupted")
        stopped_at = None
        if isinstance(cause, TaskFailedError):  # it had stopped at a failure: as it says then
            stopped_at = cause.index
            _keep_going_hint(args, result, cause.index, settings.max_failures)
        _emit(args, result, stopped_at=stopped_at)
        return ExitCode.TERMINATED if exc.terminated else ExitCode.INTERRUPTED
    except CuratorError:
        raise
    except Exception as exc:
        blame_a_failing_backend(registry, settings.backend, exc)
        raise
    _emit(args, result)
    if not result.ok:
        _resume_hint(args, result)
    return ExitCode.OK if result.ok else ExitCode.TASKS_FAILED


def _check_stdout(args: argparse.Namespace, settings: RunSettings) -> None:
    """Refuse ``--json`` with the ``json`` reporter writing to stdout too."""
    if (
        args.json
        and "json" in {normalize_name(r) for r in settings.reporter}
        and not settings.reporter_options.get("json", {}).get("file")
    ):
        raise UsageError(
            "--json and the json reporter would both write to stdout; "
            "send the events to a file with --reporter-option json.file=PATH"
        )


def _check_option_flags(
    registry: Registry, args: argparse.Namespace, settings: RunSettings
) -> None:
    """Refuse a backend's flag (``--memory-limit``) for a backend that does not take it.

    The user typed the flag, not ``-o memory_limit``: the message names the
    flag and the backends that declare it, not an unknown option.
    """
    flags = getattr(args, "option_flags", {})  # none parsed: a line without plugins' flags
    given = [flag for dest, flag in flags.items() if getattr(args, dest) is not None]
    if not given:
        return
    backend = normalize_name(settings.backend)
    entry = registry.backends.get(backend)
    if entry is None or entry.cls is None:
        return  # an unknown or broken backend: its own error says so
    takes = {field.name for field in dataclasses.fields(entry.cls.Options)}
    for flag in given:
        if flag.option in takes:
            continue
        declared = ", ".join(flag.backends)
        noun = "backend" if len(flag.backends) == 1 else "backends"
        raise UsageError(
            f"{flag.flag} is an option of {noun} {declared}; backend {backend!r} does not "
            f"take it (choose one that does with -b)"
        )


def _events_on_stdout(settings: RunSettings) -> bool:
    """Whether the run's ``json`` reporter writes its events to stdout (its default)."""
    options = settings.reporter_options.get("json", {})
    return (
        "json" in {normalize_name(r) for r in settings.reporter}
        and not options.get("file")
        and options.get("stream") is None
    )


def _checkpoint_asked(registry: Registry, args: argparse.Namespace) -> tuple[str | bool, bool]:
    """The run's ``checkpoint=`` from the flags, and whether runs record one by default."""
    from curator.checkpoint.plugin import NAME as CHECKPOINT_PLUGIN

    if args.checkpoint == "":  # an unset variable in a script: not the default checkpoint
        raise UsageError(
            "--checkpoint needs a path, got an empty one (leave the flag out for the default)"
        )
    if args.no_checkpoint and (args.checkpoint or args.resume):
        raise UsageError("--no-checkpoint cannot be combined with --checkpoint or --resume")
    # The default checkpoint is the built-in plugin's: switched off, a run records nothing.
    default = not registry.host.switched_off(CHECKPOINT_PLUGIN)
    if not default and (args.checkpoint or args.resume):
        raise UsageError(
            f"--checkpoint and --resume need the built-in plugin {CHECKPOINT_PLUGIN}, which is "
            "disabled (CURATOR_DISABLE_PLUGINS)"
        )
    return (False if args.no_checkpoint else (args.checkpoint or default)), default


def _request(
    settings: RunSettings,
    indices: Sequence[int] | None,
    checkpoint: str | bool,
    args: argparse.Namespace,
) -> RunRequest:
    """The run the command line asks for: the flags merged with what the checkpoint remembers."""
    from curator.running.runner import RunRequest  # sqlite3... when running

    return RunRequest(
        backend=settings.backend,
        jobs=settings.jobs,
        indices=indices,
        options=settings.options,
        policy=Policy(
            settings.on_error,  # type: ignore[arg-type]  # checked when recorded
            settings.max_failures,
            settings.retries,
            settings.retry_delay,
            settings.retry_backoff,
            settings.timeout or None,  # --timeout 0: no limit (drops a remembered one)
            settings.grace,
            settings.setup_timeout,
            settings.teardown_timeout,
        ),
        checkpoint=checkpoint,
        resume=args.resume,
        metrics="all" if settings.metrics == "all" else bool(settings.metrics),
        capture=settings.capture,
        reporter=list(settings.reporter),
        reporter_options=settings.reporter_options,
        target=args.target,
    )


def _remembered(
    registry: Registry,
    pipeline: Pipeline[Any],
    path: Path | None,
    given: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[RunSettings, list[str], bool]:
    """The settings of this run, what to say about the checkpoint it finds, and if it resumes."""
    if path is None:
        return merge(given, None)[0], [], False
    from curator.checkpoint.file import holds_checkpoint

    exists = holds_checkpoint(path)
    stored, done = stored_settings(path) if exists else (None, 0)
    if not args.resume:
        notices = []
        if done:
            notices.append(
                f"the checkpoint {path} holds {done} finished items of this pipeline; this "
                f"run does them again (to skip them: {_resume_command(args)})"
            )
        notices += _fingerprinted_earlier(pipeline, path) if exists else []
        return merge(given, None)[0], notices, False
    notices = []
    if not exists:
        why = f"no checkpoint of this configuration at {path}"
        notices = nothing_to_resume(pipeline, path, why)
    elif stored is None and not done:
        notices = nothing_to_resume(pipeline, path, f"the checkpoint {path} holds no finished item")
    settings, reused, dropped, replaced = merge(given, stored)
    before = stored.backend if stored is not None else ""
    resuming = not notices  # it has something to resume
    lines = reuse_lines(settings, reused, given, dropped, before)
    if resuming:
        lines += jobs_left_running(registry, path, stored, settings.backend)
        lines += _fingerprinted_earlier(pipeline, path)
    return settings, notices + lines + replaced, resuming


def _fingerprinted_earlier(pipeline: Pipeline[Any], path: Path) -> list[str]:
    """What to say when the checkpoint at ``path`` is the pipeline's by its earlier fingerprint."""
    from curator.checkpoint.fingerprint import identify
    from curator.checkpoint.meta import EARLIER_FINGERPRINT, stored_fingerprint

    stored = stored_fingerprint(path)
    _, today, earlier = identify(pipeline)
    if stored == today or stored != earlier:
        return []
    return [EARLIER_FINGERPRINT.format(path=path)]


def _resume_command(args: argparse.Namespace) -> str:
    """The command that resumes this run, quoted for a POSIX shell (paths may hold spaces)."""
    where = ["--checkpoint", args.checkpoint] if args.checkpoint else []
    return shlex.join(["curator", "run", args.target, "--resume", *where])


SAID_AT_THE_END = (TaskFailedError, StateMergeError, TeardownError, UsageError, PluginError)
"""How a run can end that the user must hear of, even when a stop was asked for meanwhile."""


def _resume_hint(args: argparse.Namespace, result: RunResult, why: str = "") -> None:
    """Where the run stands and how to finish it; ``why`` it stopped, if it was asked to."""
    done = result.count(Status.OK) + result.count(Status.SKIPPED)
    stopped = f"{why}; " if why else ""
    if result.checkpoint is None:
        if why and done >= result.run.total:  # stopped as it recorded its end
            say(f"{stopped}all {done} items are done")
        elif why:
            say(f"{stopped}{done} of {result.run.total} items are done (no checkpoint: a rerun "
                "starts over)")  # fmt: skip
        return
    from curator.checkpoint.catalog import done_among

    # A run over an existing checkpoint (no --resume) leaves earlier runs' items done
    # too: the resume it suggests skips those as well.
    with contextlib.suppress(UsageError):
        done = done_among(result.checkpoint, result.run.indices)
    if done >= result.run.total:  # stopped as it recorded its end: nothing is left
        say(f"{stopped}all {done} items are done and recorded in {result.checkpoint}")
        return
    say(
        f"{stopped}{done} of {result.run.total} items are done and recorded in "
        f"{result.checkpoint}; to finish the rest with the same settings: {_resume_command(args)}"
    )


def _keep_going_hint(
    args: argparse.Namespace, result: RunResult, index: int, max_failures: int | None
) -> None:
    """After a stop at a failure: what stopped the run, and how to run what never ran.

    ``max_failures`` is the run's failure budget, if it had one: then the run
    stopped at the failure that used it up (``index``), not at the first.
    The suggested ``--keep-going`` replaces a remembered budget (see
    :func:`curator.cli.remembered.merge`), so the command runs past failures.
    """
    never_ran = result.count(Status.CANCELLED)
    if result.checkpoint is None or not never_ran:
        return
    items = "item" if never_ran == 1 else "items"
    if max_failures is not None and max_failures > 1:
        stopped = f"after {max_failures} failures (the last: item {index})"
    else:
        stopped = f"at the first failure (item {index})"
    say(
        f"the run stopped {stopped}, so {never_ran} {items} never ran; to run them past "
        f"failures: {_resume_command(args)} --keep-going"
    )


def _emit(args: argparse.Namespace, result: RunResult, stopped_at: int | None = None) -> None:
    if args.json:
        summary = result.summary()
        summary["stopped_at"] = stopped_at
        print_json(summary)
    # What items wrote past capture goes out before the command's last words. An item may
    # have closed or replaced sys.stdout (--no-capture): the command's own output is elsewhere.
    with contextlib.suppress(ValueError, OSError, AttributeError):
        sys.stdout.flush()
