"""Which worker this is, and the per-worker ``setup``/``teardown`` of stages.

A stage (the source, a filter or the sink) that holds a per-worker resource (a
GPU, an open database, a model) defines ``setup(worker)`` and ``teardown()``.
Every backend calls them through :meth:`curator.Work.setup` and
:meth:`curator.Work.teardown`: once per worker and round, before the worker's
first item and after its last, on the worker's own copy of the pipeline.

Both may be bounded (``setup_timeout``/``teardown_timeout`` of a run, see
:class:`curator.running.policy.Policy`). Backends that declare ``lifecycle_timeouts``
report a setup past its limit as the ``SetupTimeout`` failure of the items its
worker took (:func:`setup_timed_out`), and a teardown past its limit with a
warning (:func:`teardown_abandoned`), so every backend says it the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from curator.model.errors import TeardownError, UsageError
from curator.model.outcome import ErrorInfo, ErrorKind, Outcome, Status
from curator.model.pipeline import Pipeline
from curator.model.plan import defines_hooks
from curator.model.record import FrozenRecord

Announce = Callable[[str, str], None]
"""Told ``(hook, stage)`` just before a stage's ``setup`` or ``teardown`` is called,
so that whoever watches the time can name the stage that overran."""


class WorkerInfo(FrozenRecord):
    """Who runs the items: handed to stages' ``setup(worker)`` and to initializers.

    Attributes
    ----------
    slot
        ``0 .. jobs-1``: stable for the run, and kept by a worker that replaces
        a crashed one (so ``CUDA_VISIBLE_DEVICES={slot}`` stays right).
    backend
        The backend's name.
    jobs
        How many workers the run has.
    pid, host
        The worker's process and machine.
    """

    _fields = ("slot", "backend", "jobs", "pid", "host")
    __slots__ = _fields
    slot: int
    backend: str
    jobs: int
    pid: int
    host: str

    def __init__(
        self, slot: int, backend: str, jobs: int, pid: int | None = None, host: str | None = None
    ) -> None:
        self._set(
            slot,
            backend,
            jobs,
            os.getpid() if pid is None else pid,
            _host_name() if host is None else host,
        )


def _host_name() -> str:
    import socket  # where the workers fork, multiprocessing has it loaded; in process, not yet

    return socket.gethostname()


def stages(pipeline: Pipeline[Any]) -> Iterator[object]:
    """The pipeline's stages in order: source, filters, sink."""
    yield pipeline.source
    yield from pipeline.filters
    if pipeline.sink is not None:
        yield pipeline.sink


def has_hooks(pipeline: Pipeline[Any]) -> bool:
    """Whether a stage of ``pipeline`` defines ``setup`` or ``teardown``."""
    return any(defines_hooks(stage) for stage in stages(pipeline))


def set_up(
    pipeline: Pipeline[Any], worker: WorkerInfo, announce: Announce | None = None
) -> list[object]:
    """Call ``setup(worker)`` on every stage that has one; return the stages set up.

    A stage that defines only ``teardown()`` (it opens what it needs lazily, in
    its first item) counts as set up once every ``setup`` succeeded:
    :func:`tear_down` calls it after the worker's items, never in the cleanup
    of a failed setup (it opened nothing yet).
    ``announce`` is told ``("setup", stage name)`` before each call.

    Raises
    ------
    UsageError
        Naming the stage whose ``setup`` raised; the stages already set up
        are torn down first.
    """
    done: list[object] = []
    lazy: set[int] = set()  # positions in ``done`` of the stages with teardown() only
    for stage in stages(pipeline):
        hook = getattr(stage, "setup", None)
        if not callable(hook):
            if callable(getattr(stage, "teardown", None)):
                lazy.add(len(done))
                done.append(stage)
            continue
        if announce is not None:
            announce("setup", stage_name(stage))
        try:
            hook(worker)
        except Exception as exc:
            also = ""
            try:
                tear_down([kept for at, kept in enumerate(done) if at not in lazy])
            except TeardownError as cleanup:  # the setup's error is what to fix first
                also = f"; then, tearing down the stages set up before it: {cleanup}"
            raise UsageError(
                f"{stage_name(stage)}.setup(worker) raised {type(exc).__name__}: {exc} "
                f"(worker {worker.slot} of {worker.backend!r}){also}"
            ) from exc
        done.append(stage)
    return done


def tear_down(stages_set_up: list[object], announce: Announce | None = None) -> None:
    """Call ``teardown()`` on ``stages_set_up``, last first, each even if another raised.

    ``announce`` is told ``("teardown", stage name)`` before each call.

    Raises
    ------
    TeardownError
        Naming every stage whose ``teardown`` raised.
    """
    problems = []
    for stage in reversed(stages_set_up):
        hook = getattr(stage, "teardown", None)
        if not callable(hook):
            continue
        if announce is not None:
            announce("teardown", stage_name(stage))
        try:
            hook()
        except Exception as exc:
            problems.append(f"{stage_name(stage)}.teardown() raised {type(exc).__name__}: {exc}")
    if problems:
        raise TeardownError("; ".join(problems))


def stage_name(stage: object) -> str:
    """How messages name a stage: its class (or function) name."""
    return getattr(stage, "__qualname__", None) or type(stage).__qualname__


def hook_call(stage: str | None, hook: str) -> str:
    """``Model.setup(worker)``, ``Model.teardown()``, or ``a stage's setup(worker)``."""
    call = "setup(worker)" if hook == "setup" else f"{hook}()"
    return f"{stage}.{call}" if stage else f"a stage's {call}"


def setup_timed_out(
    indices: Sequence[int], stage: str | None, limit: float, worker: str, fate: str, attempt: int
) -> list[Outcome]:
    """The ``failed`` outcomes of ``indices``, taken by a worker whose setup overran.

    Parameters
    ----------
    indices
        The items the worker had taken; none of them ran.
    stage
        The stage whose ``setup`` was running (``None``: not known).
    limit
        The setup limit in seconds.
    worker
        The worker's id (``process-1``).
    fate
        What became of the worker, in words (``"it was killed and replaced"``).
    attempt
        The round's attempt number.
    """
    what = hook_call(stage, "setup")
    now = time.time()
    return [
        Outcome(
            index,
            Status.FAILED,
            error=ErrorInfo(
                type=ErrorKind.SETUP_TIMEOUT.value,
                message=f"{what} did not finish within the setup limit of {limit:g} s on "
                f"worker {worker}; {fate}. Item {index} never ran (the limit is "
                "setup_timeout, --setup-timeout)",
            ),
            worker=worker,
            started=now,
            finished=now,
            attempt=attempt,
        )
        for index in indices
    ]


def teardown_abandoned(stage: str | None, limit: float, worker: str, fate: str) -> str:
    """Warn that a worker's teardown overran and was given up; return the warning's text."""
    what = hook_call(stage, "teardown")
    message = (
        f"{what} did not finish within the teardown limit of {limit:g} s on worker {worker}; "
        f"{fate}. Every outcome of the run is recorded (the limit is teardown_timeout, "
        "--teardown-timeout)"
    )
    import logging  # here: a worker starts without it (see curator.observing.capture_logging)

    logging.getLogger("curator").warning("%s", message)
    return message
