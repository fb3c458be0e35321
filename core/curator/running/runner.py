"""The runner behind ``curator.run``: validate a run completely, then hand it to the run loop.

The core owns everything but execution: index validation, ``jobs``
resolution, option checking, policies, checkpointing, ordering of results and
the event hooks. Backends only execute, so all backends behave the same.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from curator.backends.backend import Backend, normalize_name
from curator.backends.sequential import SequentialBackend
from curator.checkpoint.plugin import NAME as CHECKPOINT_PLUGIN
from curator.checkpoint.plugin import asks_for_one
from curator.checkpoint.settings import RunSettings, plain_options, record_indices
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline, check_runnable
from curator.model.plan import StagePlan
from curator.model.result import RunInfo, RunResult
from curator.model.selection import resolve_indices
from curator.observing.features import CoreFeature, ItemFeature
from curator.observing.metrics import metric_sampling
from curator.observing.reporter import Reporter
from curator.plugin_host.options import NoOptions, build_options, check_mapping
from curator.plugin_host.registry import Registry, default_registry
from curator.running.choosing import ReporterSpec, item_features, reporter_names, resolve_reporters
from curator.running.fitting import fit_backend
from curator.running.groups import KeepTogether
from curator.running.loop import RunLoop
from curator.running.policy import OnError, Policy
from curator.running.session import Session

_run_ids = itertools.count(1)


def run(
    pipeline: Pipeline[Any],
    *,
    backend: str = "sequential",
    jobs: int | None = None,
    indices: Iterable[int] | None = None,
    options: Mapping[str, Any] | None = None,
    on_error: OnError = "raise",
    max_failures: int | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    retry_backoff: float = 2.0,
    timeout: float | None = None,
    checkpoint: str | os.PathLike[str] | bool | None = None,
    resume: bool = False,
    grace: float = 30.0,
    setup_timeout: float | None = None,
    teardown_timeout: float | None = None,
    metrics: bool | Literal["all"] = True,
    capture: bool = True,
    reporter: ReporterSpec = "auto",
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    session: Session | None = None,
) -> RunResult:
    """Run ``pipeline`` over ``indices`` on a backend and return every outcome.

    Parameters
    ----------
    pipeline
        A pipeline with a sink (``source.filter(f).write(sink)``).
    backend
        A registered backend name; ``_`` and ``-`` are interchangeable.
    jobs
        Items at once. ``None`` (the default): all the CPUs this process may
        use on a parallel backend (its affinity mask), one on a backend that
        runs one item at a time. ``1`` on a parallel backend runs in this
        process, one after another (stateful stages keep their state in
        ``pipeline``); a backend that runs one item at a time always runs its
        own way. ``N`` workers; ``-1`` all CPUs, ``-2`` all but one. ``0`` is
        an error.
    indices
        Which indices to run, in the order results are returned; ``None`` for all.
    options
        Backend options, validated against the backend's schema.
    on_error
        ``"raise"``: stop at the first item that fails (after its retries) and
        raise :class:`~curator.model.errors.TaskFailedError`; ``"continue"``: run
        every item and report failures in the result.
    max_failures
        Stop once this many items have failed (after their retries).
    retries
        Try failed, crashed and timed-out items again, up to this many times.
    retry_delay, retry_backoff
        Seconds before the first retry round, and the factor by which each
        later round waits longer.
    timeout
        Seconds an item may run before it is stopped and reported ``timed_out``.
        Only backends that declare the ``timeouts`` capability accept it.
    checkpoint
        Record every outcome in a checkpoint: ``True`` for
        ``.curator/<fingerprint>.sqlite``, or a file or folder path.
    resume
        Skip the indices the checkpoint records as done (they are never sent
        to a worker and come back as ``skipped`` with their outputs). Implies
        ``checkpoint=True`` when no checkpoint is given. The checkpoint must
        belong to a pipeline with the same fingerprint: the same stages with
        the same parameters (see :mod:`curator.checkpoint.fingerprint`; edits to the
        stages' code are not detected).
    grace
        Seconds running items get to finish after the first Ctrl-C.
    setup_timeout, teardown_timeout
        Seconds a worker's stages may take in ``setup(worker)`` and in
        ``teardown()``. A setup past its limit fails the items that worker
        took (error type ``SetupTimeout``) and the run goes on without it; a
        teardown past its limit is abandoned with a warning naming the stage
        and the worker, and the run ends with every outcome recorded. Left
        out: ``max(60, 10 * timeout)`` when ``timeout`` is given, else no
        limit; ``0``: no limit. Backends that declare the
        ``lifecycle_timeouts`` capability accept them.
    metrics
        Measure items where they run: seconds per stage, CPU time, peak
        memory, GPU memory when a GPU library is in use (see
        :class:`curator.Metrics`). On by default, with quick items sampled:
        once a streak of items took under a millisecond each, one in 32 is
        measured in full (then fewer, down to one in 256, while the streak
        lasts); an item that runs long or fails is always read
        (its stage split only when it was sampled), and a worker goes back
        to measuring every item once memory grows by 16 MiB, or long items
        use over 20% of its time in CPU, while items run unmeasured (see
        :mod:`curator.observing.metrics`). ``"all"`` measures every item in
        full (about 3 µs per item; ``benchmarks/README.md``).
    capture
        Capture what each item writes to stdout, stderr and logging where it
        runs (see :mod:`curator.observing.capture`): it travels on the outcome
        (``Outcome.output``), into the checkpoint (``curator logs INDEX``)
        and to the reporters instead of the terminal. On by default.
    reporter
        A reporter name, a :class:`~curator.Reporter` instance, a list of
        them, or ``None`` for no reporting. ``"auto"`` picks ``rich`` when
        stderr is an interactive terminal (and ``CI`` is not set), else ``log``.
    reporter_options
        Options per reporter name, e.g. ``{"json": {"file": "events.jsonl"}}``.
    registry
        Where to look names up (default: the installed plugins).
    session
        Run on this :class:`curator.Session`'s backend, whose workers stay up
        between runs (``Session.run`` passes it; with it, ``backend``,
        ``jobs``, ``options`` and ``registry`` must be the session's).

    Returns
    -------
    RunResult
        One outcome per requested index, in the requested order.

    Raises
    ------
    UsageError
        For bad input, before the run starts.
    TaskFailedError
        When the failure budget is used up; it carries the partial result.
    RunInterrupted
        On Ctrl-C or SIGTERM, after the backend has shut down and every
        finished outcome was recorded; it carries the partial result.
    """
    policy = Policy(
        on_error, max_failures, retries, retry_delay, retry_backoff, timeout, grace,
        setup_timeout, teardown_timeout,
    )  # fmt: skip
    request = RunRequest(
        backend, jobs, indices, options, policy, checkpoint, resume, reporter,
        reporter_options, metrics, capture,
    )  # fmt: skip
    return plan_run(pipeline, request, registry, session).execute()


@dataclass(frozen=True)
class RunRequest:
    """What a run is asked to do: one description, built by ``run``, ``stream`` and the CLI.

    The fields are the arguments of :func:`run` (the failure rules gathered in
    a :class:`~curator.running.policy.Policy`); ``target`` is the ``curator run``
    TARGET, recorded with the other settings in the checkpoint so that
    ``curator run TARGET --resume`` can repeat the run; ``keep=False`` keeps
    only failed outcomes in the result (a streamed run). :func:`plan_run`
    checks it and records it in the checkpoint as
    :class:`~curator.checkpoint.settings.RunSettings`.
    """

    backend: str = "sequential"
    jobs: int | None = None
    indices: Iterable[int] | None = None
    options: Mapping[str, Any] | None = None
    policy: Policy = field(default_factory=Policy)
    checkpoint: str | os.PathLike[str] | bool | None = None
    resume: bool = False
    reporter: ReporterSpec = "auto"
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None
    metrics: bool | Literal["all"] = True
    capture: bool = True
    target: str | None = None
    keep: bool = True

    def __post_init__(self) -> None:
        check_mapping(self.options, "options")
        check_mapping(self.reporter_options, "reporter_options")
        for name, given in (self.reporter_options or {}).items():
            check_mapping(given, f"reporter_options[{name!r}]")


@dataclass(frozen=True)
class CheckedRun:
    """A run request that passed every check, before anything was opened or started.

    What :func:`check_run` found out: the pipeline as it runs, the backend and
    its options, the job count, the reporters and features. ``curator run
    --dry-run`` stops here; :func:`plan_run` goes on to open the checkpoint.
    """

    runnable: Pipeline[Any]
    plan: StagePlan
    selected: Sequence[int]
    name: str
    backend_cls: type[Backend]
    backend_options: Any
    jobs: int
    in_process: bool
    together: KeepTogether | None
    reporters: list[Reporter]
    features: tuple[ItemFeature, ...]
    measuring: bool | str
    capturing: bool
    registry: Registry


def check_run(
    pipeline: Pipeline[Any],
    request: RunRequest,
    registry: Registry | None = None,
    *,
    start_early: bool = False,
) -> CheckedRun:
    """Check everything about a run without opening, creating or starting anything.

    ``start_early``: a run that is going to start (not a dry run) lets its
    backend begin a slow start as soon as it is known (see
    :meth:`curator.Backend.start_early`), while the rest is checked.

    Raises
    ------
    UsageError
        For any bad input.
    """
    backend, jobs, indices, options = (
        request.backend, request.jobs, request.indices, request.options
    )  # fmt: skip
    check_switch("resume", request.resume)
    check_switch("capture", request.capture)
    runnable = check_runnable(pipeline)
    plan = StagePlan.of(runnable)
    if not isinstance(backend, str):
        raise UsageError(f"backend must be a name, got {type(backend).__name__}")
    selected = resolve_indices(indices, len(runnable))
    registry = registry if registry is not None else default_registry()
    backend_cls = registry.backend(backend)
    name = normalize_name(backend)
    backend_options = build_options(backend_cls.Options, options, owner=f"backend {name!r}")
    n_jobs, in_process, together = fit_backend(
        registry, name, backend_cls.capabilities, jobs, options, request.policy, runnable,
        selected, plan,
    )  # fmt: skip
    if start_early and not in_process and len(selected):  # indices=[] starts nothing
        backend_cls.start_early(backend_options, n_jobs)
    reporters = resolve_reporters(request.reporter, registry, request.reporter_options)
    features, measuring, capturing = _features(registry, request.metrics, request.capture)
    _check_checkpoint(runnable, request, registry)
    return CheckedRun(
        runnable, plan, selected, name, backend_cls, backend_options, n_jobs, in_process,
        together, reporters, features, measuring, capturing, registry,
    )  # fmt: skip


def plan_run(
    pipeline: Pipeline[Any],
    request: RunRequest,
    registry: Registry | None = None,
    session: Session | None = None,
) -> RunLoop:
    """Validate everything about a run and return its loop, without starting the run.

    The checkpoint (if any) is opened and locked here, so that a busy or
    foreign one is refused before the run starts. The one thing that may
    begin here is the backend's early start (:meth:`curator.Backend.start_early`),
    which needs no stopping.

    Raises
    ------
    UsageError
        For any bad input; the run has not started.
    """
    # The pipeline first, then the plugins; the backend's slow start overlaps the rest.
    checked = check_run(pipeline, request, registry, start_early=True)
    runnable, plan, selected = checked.runnable, checked.plan, checked.selected
    policy = request.policy
    checkpoint = _checkpoint_of(request)
    store = None
    if asks_for_one(checkpoint):
        # sqlite3, hashlib and the store's modules load only for a run that keeps a checkpoint.
        from curator.checkpoint.opening import open_store

        store = open_store(runnable, checkpoint)
    info = RunInfo(
        run_id=f"{os.getpid()}-{next(_run_ids)}",
        backend=checked.name,
        jobs=checked.jobs,
        indices=selected if isinstance(selected, range) else tuple(selected),
        pipeline=repr(runnable),
        on_error=policy.on_error,
        in_process=checked.in_process,
        stages=plan.names,
        metrics=bool(checked.measuring),
        capture=checked.capturing,
        checkpoint=str(store.path) if store is not None else None,
    )
    make_backend = _backend_factory(checked, session)
    return RunLoop(
        info,
        runnable,
        make_backend,
        checked.registry.host.event_relay(checked.reporters),
        policy,
        store=store,
        resume=request.resume,
        settings=_settings(request, checked.name, selected, len(runnable)),
        keep=request.keep,
        hand_back=session.release if session is not None else None,
        groups=checked.together,
        features=checked.features,
        plan=plan,
        measure_all=checked.measuring == "all",
    )


def new_backend(checked: CheckedRun) -> Backend:
    """A fresh instance of the backend the run was checked for (sequential when in process)."""
    if checked.in_process:
        return SequentialBackend(NoOptions(), 1)
    return checked.backend_cls(checked.backend_options, checked.jobs)


def _backend_factory(checked: CheckedRun, session: Session | None) -> Callable[[], Backend]:
    """How the run gets its backend instance when it starts (a session's warm one, if given)."""

    def make_backend() -> Backend:
        return new_backend(checked)

    if session is None:
        return make_backend

    def session_backend() -> Backend:
        # In process too (jobs=1): a session runs one run at a time, however it runs.
        return session.claim(make_backend)

    return session_backend


def check_switch(name: str, value: object) -> None:
    """Refuse a switch that is not ``True`` or ``False`` (``resume="false"`` would be true).

    Raises
    ------
    UsageError
        Naming the argument and the value given.
    """
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False, got {value!r}")


def _features(
    registry: Registry, metrics: bool | str, capture: bool
) -> tuple[tuple[ItemFeature, ...], bool | str, bool]:
    """The run's per-item features of plugins, and whether it measures and captures."""
    features = item_features(registry)
    # Capture and metrics are built-in features: disabled by name, they are off for the run.
    builtin = {f.name for f in features if isinstance(f, CoreFeature)}
    plugins = tuple(f for f in features if not isinstance(f, CoreFeature))
    try:
        metric_sampling(metrics)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    measuring = metrics if metrics and "metrics" in builtin else False
    return plugins, measuring, bool(capture) and "capture" in builtin


def _checkpoint_of(request: RunRequest) -> str | os.PathLike[str] | bool | None:
    """The run's ``checkpoint=``: a resume without one takes the default."""
    checkpoint = request.checkpoint
    if request.resume and checkpoint in (None, False):
        return True
    return checkpoint


def _check_checkpoint(runnable: Pipeline[Any], request: RunRequest, registry: Registry) -> None:
    """Refuse a checkpoint the plugins cannot keep, or a resume of an unfingerprintable pipeline."""
    if asks_for_one(_checkpoint_of(request)) and registry.host.switched_off(CHECKPOINT_PLUGIN):
        raise UsageError(
            "a checkpoint (checkpoint=, --checkpoint, --resume) needs the built-in plugin "
            f"{CHECKPOINT_PLUGIN}, which is disabled (CURATOR_DISABLE_PLUGINS)"
        )
    if request.resume:
        from curator.checkpoint.fingerprint import check_fingerprintable  # hashlib: on resume only

        check_fingerprintable(runnable)


def _settings(request: RunRequest, name: str, selected: Sequence[int], size: int) -> RunSettings:
    """What the checkpoint records of ``request`` for a later ``--resume`` to repeat."""
    policy, reporter = request.policy, request.reporter
    recorded, unrecorded = plain_options(request.options)
    spec, too_long = record_indices(selected, size)
    return RunSettings(
        target=request.target,
        backend=name,
        jobs=request.jobs,
        indices=spec,
        options=recorded,
        on_error=policy.on_error,
        max_failures=policy.max_failures,
        retries=policy.retries,
        retry_delay=policy.retry_delay,
        retry_backoff=policy.retry_backoff,
        timeout=policy.timeout,
        grace=policy.grace,
        setup_timeout=policy.setup_timeout,
        teardown_timeout=policy.teardown_timeout,
        metrics=request.metrics if request.metrics == "all" else bool(request.metrics),
        capture=bool(request.capture),
        reporter=tuple(reporter_names(reporter)) if reporter is not None else ("none",),
        reporter_options={
            normalize_name(name): plain_options(given)[0]
            for name, given in (request.reporter_options or {}).items()
        },
        unrecorded=unrecorded + too_long,
    )


_IN_OPENING = frozenset({"checkpoint_path", "open_store", "default_store_path"})


def __getattr__(name: str) -> Any:
    # Their home until a run without a checkpoint stopped loading the checkpoint's modules.
    if name in _IN_OPENING:
        from curator.checkpoint import opening

        return getattr(opening, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
