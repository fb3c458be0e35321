"""The ``json`` reporter: one JSON object per line per event, for dashboards and tools.

The schema is documented in ``docs/reporters.md`` and, machine-readable, in
``docs/events.schema.json``; fields are only ever added, never renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from curator.model.outcome import Outcome, Status, TaskStart
from curator.model.result import RunInfo, RunResult
from curator.observing.reporter import Reporter, check_stream
from curator.plugin_host.hookspecs import hookimpl
from curator.plugin_host.options import option

SCHEMA_VERSION = 4
"""2 added stage names and per-item metrics (``run_start.stages``, ``task_finish.metrics``),
3 captured output (``task_finish.output``), 4 the data of per-item features
(``task_finish.extras``)."""


_STDOUT: list[TextIO] = []
"""Where standard output is for the reporter, innermost last (see :func:`events_to_stdout`)."""


@contextlib.contextmanager
def events_to_stdout(stream: TextIO) -> Iterator[None]:
    """Let ``stream`` be the reporter's standard output meanwhile, instead of ``sys.stdout``.

    ``curator run --reporter json`` keeps stdout for the events the way
    ``--json`` keeps it for the summary: what the pipeline writes to stdout
    goes to stderr, file descriptor 1 included, so ``sys.stdout`` leads there
    too; the events go to ``stream``, the real stdout.
    """
    _STDOUT.append(stream)
    try:
        yield
    finally:
        _STDOUT.remove(stream)


FLUSH_SECONDS = 0.2
"""How long an event may wait in the stream's buffer before it is written through."""


class Flusher:
    """Writes events to ``stream`` and flushes it every :data:`FLUSH_SECONDS`, from a thread.

    A tool that follows the file or reads the pipe sees each event within that
    time, a killed run loses at most that much, and a reader gone (``| head``)
    stops the run at the next event. A flush per event would cost a system
    call per event, more than the event's own line.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._pending = False
        self._failed: OSError | ValueError | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curator-json-flush", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Write ``line``; raise what the last flush met (a reader gone: BrokenPipeError)."""
        if self._failed is not None:
            raise self._failed
        with self._lock:
            self._stream.write(line)
            self._pending = True

    def _run(self) -> None:
        while not self._stopped.wait(FLUSH_SECONDS):
            if not self._pending:
                continue
            try:
                with self._lock:
                    self._pending = False
                    self._stream.flush()
            except (OSError, ValueError) as exc:  # the run's next event raises it (ValueError:
                # the stream was closed under it), in the run's thread
                self._failed = exc
                return

    def stop(self) -> None:
        """Stop the thread; raise what its last flush met."""
        self._stopped.set()
        self._thread.join()
        if self._failed is not None:
            raise self._failed


@dataclass(frozen=True)
class JsonOptions:
    """Options of the ``json`` reporter."""

    file: str | None = option(None, help="append events to this file (default: standard output)")
    stream: Any = option(None, help="a text stream to write to instead of a file")

    def __post_init__(self) -> None:
        check_stream(self.stream)
        if self.file:
            folder = os.path.dirname(os.path.abspath(self.file))
            if not os.path.isdir(folder):
                raise ValueError(f"cannot write {self.file}: the folder {folder} does not exist")
            if os.path.isdir(self.file):
                raise ValueError(f"cannot write {self.file}: it is a folder")
            if not os.access(folder, os.W_OK):
                raise ValueError(f"cannot write {self.file}: the folder {folder} is not writable")


class JsonReporter(Reporter):
    """Write ``run_start``, ``task_start``, ``task_finish`` and ``run_finish`` as JSON lines."""

    name = "json"
    description = "One JSON object per event and line (stdout or a file), for other tools."
    Options = JsonOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._stream: TextIO | None = None
        self._owned = False
        self._flusher: Flusher | None = None

    def _emit(self, record: dict[str, Any]) -> None:
        stream = self._stream
        assert stream is not None
        line = json.dumps(record, separators=(",", ":")) + "\n"
        flusher = self._flusher
        if flusher is None:
            stream.write(line)
        else:
            flusher.write(line)

    @hookimpl
    def curator_run_start(self, run: RunInfo) -> None:
        """Open the output and write ``run_start``."""
        if self.options.stream is not None:
            self._stream = self.options.stream
        elif self.options.file:
            self._stream = open(self.options.file, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = _STDOUT[-1] if _STDOUT else sys.stdout
        if self.options.stream is None:  # a stream of the caller's is theirs to flush
            self._flusher = Flusher(self._stream)
        self._emit(
            {
                "event": "run_start",
                "schema": SCHEMA_VERSION,
                "run_id": run.run_id,
                "time": time.time(),
                "total": run.total,
                "backend": run.backend,
                "jobs": run.jobs,
                "pipeline": run.pipeline,
                "stages": list(run.stages),
                "metrics": run.metrics,
            }
        )

    @hookimpl
    def curator_task_start(self, run: RunInfo, start: TaskStart) -> None:
        """Write ``task_start``."""
        self._emit(
            {
                "event": "task_start",
                "run_id": run.run_id,
                "time": start.started,
                "index": start.index,
                "worker": start.worker,
                "attempt": start.attempt,
            }
        )

    @hookimpl
    def curator_task_finish(self, run: RunInfo, outcome: Outcome) -> None:
        """Write ``task_finish``."""
        self._emit(
            {
                "event": "task_finish",
                "run_id": run.run_id,
                "time": outcome.finished,
                "seconds": outcome.finished - outcome.started,
                **outcome.to_json(),
            }
        )

    @hookimpl
    def curator_run_finish(self, run: RunInfo, result: RunResult) -> None:
        """Write ``run_finish`` and close the file."""
        try:
            self._emit(
                {
                    "event": "run_finish",
                    "run_id": run.run_id,
                    "time": result.finished,
                    "total": run.total,
                    "ok": result.count(Status.OK),
                    "failed": len(result.failures),
                    "skipped": result.count(Status.SKIPPED),
                    "cancelled": result.count(Status.CANCELLED),
                    "interrupted": result.interrupted,
                    "seconds": result.seconds,
                    "stages": [stage.to_json() for stage in result.stage_summary()],
                }
            )
        finally:  # the flusher thread and the file end with the run, whatever raised
            stream, flusher = self._stream, self._flusher
            self._stream = self._flusher = None
            if stream is not None:
                try:
                    if flusher is not None:
                        flusher.stop()
                    stream.flush()
                finally:
                    if self._owned:
                        stream.close()
