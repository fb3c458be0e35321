"""``curator.Session``: one backend, and its workers, kept warm across runs.

Each ``curator.run`` starts its backend's workers and stops them at the end.
A notebook that runs many small selections, or a script that runs several
pipelines, pays that start-up every time. A session starts the workers at its
first run and keeps them until it closes; every run still sends its own work,
environment variables, ``sys.path`` and working directory, and a worker that
finds a module it imported changed on disk is replaced, so warm workers are
as fresh as new ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from curator.backends.backend import Backend, normalize_name
from curator.model.errors import SessionBusyError, UsageError
from curator.model.selection import resolve_jobs
from curator.plugin_host.options import build_options
from curator.plugin_host.registry import Registry, default_registry

if TYPE_CHECKING:
    from curator.model.pipeline import Pipeline
    from curator.model.result import RunResult
    from curator.running.streaming import RunStream

FIXED = ("backend", "jobs", "options", "registry", "session")
"""Arguments of ``run`` that a session fixes when it opens."""


class Session:
    """Run many runs, one after another, on one backend whose workers stay up between them.

    ::

        with curator.Session(backend="process-pool", jobs=4) as session:
            first = session.run(pipeline, indices=range(100))
            for outcome in session.stream(other, on_error="continue"):
                ...

    Parameters
    ----------
    backend, jobs, options, registry
        As for :func:`curator.run`, checked here; every run of the session
        uses them.

    A session runs one run at a time: a run (or a stream, from its first
    outcome until it is exhausted or closed) holds the workers, and another
    run that starts meanwhile, from another thread or inside a stream's
    loop, raises :class:`~curator.model.errors.SessionBusyError` before it runs
    anything. Runs that must go on at the same time each need a session.

    Raises
    ------
    UsageError
        For an unknown backend or bad options, before anything starts.
    """

    def __init__(
        self,
        backend: str = "sequential",
        jobs: int | None = None,
        options: Mapping[str, Any] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        backend_cls = self.registry.backend(backend)
        self.backend = normalize_name(backend)
        build_options(backend_cls.Options, options, owner=f"backend {self.backend!r}")
        if jobs is not None:
            resolve_jobs(jobs)  # checked here, as the backend and its options are
        self.jobs = jobs
        self.options = dict(options or {})
        self._shared: Backend | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._running: str | None = None
        """The name of the thread whose run holds the backend, while one does."""

    def claim(self, make: Callable[[], Backend]) -> Backend:
        """The session's backend for one run, made by ``make`` at the first (used by the core).

        The run hands it back with :meth:`release` when it ends.

        Raises
        ------
        SessionBusyError
            While another run of the session goes on.
        UsageError
            Once the session is closed.
        """
        with self._lock:
            if self._closed:
                raise UsageError("this session is closed; open a new curator.Session")
            if self._running is not None:
                raise SessionBusyError(
                    f"this session's workers are busy with a run started in thread "
                    f"{self._running!r}: a curator.Session runs one run at a time. Wait for "
                    "that run to end (a stream ends when it is exhausted or closed), or open "
                    "one Session per run that must go on at the same time"
                )
            if self._shared is None:
                self._shared = make()
            self._running = threading.current_thread().name
            return self._shared

    def release(self, backend: Backend) -> None:
        """Take back the backend of a run that ended; close it if the session closed meanwhile."""
        with self._lock:
            self._running = None
            orphaned = self._closed and self._shared is backend
            if orphaned:
                self._shared = None
        if orphaned:
            backend.close()

    def run(self, pipeline: Pipeline[Any], **arguments: Any) -> RunResult:
        """Run ``pipeline`` on the session's workers.

        Takes the arguments of :func:`curator.run` but ``backend``, ``jobs``,
        ``options`` and ``registry``, which the session fixed.
        """
        from curator.running.runner import run

        return run(pipeline, **self._arguments(arguments))

    def stream(self, pipeline: Pipeline[Any], **arguments: Any) -> RunStream:
        """Stream the outcomes of ``pipeline`` from the session's workers (see ``stream``)."""
        from curator.running.streaming import stream

        return stream(pipeline, **self._arguments(arguments))

    def _arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._closed:  # told when the run or stream is made, before the run starts
            raise UsageError("this session is closed; open a new curator.Session")
        fixed = sorted(set(arguments) & set(FIXED))
        if fixed:
            raise UsageError(
                f"a session fixes {', '.join(fixed)} when it opens; "
                "open another curator.Session for other ones"
            )
        return {
            **arguments,
            "backend": self.backend,
            "jobs": self.jobs,
            "options": self.options,
            "registry": self.registry,
            "session": self,
        }

    def close(self) -> None:
        """Stop the session's workers (idempotent).

        While a run of the session goes on (another thread's, or a stream not
        yet exhausted or closed) the workers stop when that run ends.
        """
        with self._lock:
            self._closed = True
            if self._running is not None:
                return  # release() closes it
            shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()
