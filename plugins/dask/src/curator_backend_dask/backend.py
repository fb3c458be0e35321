"""The ``dask`` backend: chunks of indices as futures on a distributed cluster.

The pipeline reaches the cluster once (pickled by the core, scattered to every
worker); each task carries only a chunk of indices. At most two chunks per
worker are in flight, chunks are sized from measured item times, and outcomes
stream back as chunks complete (:mod:`curator_backend_dask.chunks`). A cluster
curator did not start is never shut down: on cancel its pending futures are
cancelled and it is left running and clean.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curator import Backend, Capabilities, Event, UsageError, Work, option, uninterrupted
from curator.backends.shipping import pickle_work
from curator.backends.spawning import main_module_stays_home
from curator_backend_dask.chunks import ChunkDispatch, SchedulerLost
from curator_backend_dask.connection import (
    CONNECT_SECONDS,
    address_problem,
    close_with_loop,
    connect,
    new_with_loop,
)

LOCAL_CLUSTER_SETTINGS = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.deploy.lost-worker-timeout": "7 days",
}
"""Dask settings for the run on the LocalCluster curator starts (see ``DaskBackend._execute``)."""
LOCAL_CLUSTER_START = threading.Lock()
"""Held while a run starts its LocalCluster (see ``DaskBackend._on_cluster``)."""


class _SharedSettings:
    """The one set of :data:`LOCAL_CLUSTER_SETTINGS` the runs on LocalClusters share."""

    lock = threading.Lock()
    runs = 0
    made: Any = None


@contextlib.contextmanager
def _local_cluster_settings(dask: Any) -> Iterator[None]:
    """:data:`LOCAL_CLUSTER_SETTINGS` in Dask's config while any run on a LocalCluster lasts.

    The config is the process's: runs at once (in threads) share one set, made by
    the first to begin and undone by the last to end. Each run's own set, undone
    in any order but the reverse, would take the settings from a run still going
    and leave them in the process after the last.
    """
    with _SharedSettings.lock:
        if _SharedSettings.runs == 0:
            _SharedSettings.made = dask.config.set(LOCAL_CLUSTER_SETTINGS)
        _SharedSettings.runs += 1
    try:
        yield
    finally:
        with _SharedSettings.lock:
            _SharedSettings.runs -= 1
            if _SharedSettings.runs == 0:
                made, _SharedSettings.made = _SharedSettings.made, None
                made.__exit__(None, None, None)


@dataclass(frozen=True)
class DaskOptions:
    """Options of the ``dask`` backend."""

    address: str | None = option(
        None, help="scheduler of an existing cluster, e.g. tcp://127.0.0.1:8786"
    )
    scheduler_file: str | None = option(
        None, help="scheduler file of an existing cluster (dask-jobqueue, dask scheduler)"
    )
    chunksize: int | None = option(None, help="indices per task (default: adaptive)")
    connect_timeout: float = option(
        CONNECT_SECONDS,
        help="seconds to wait for an existing cluster's scheduler (and its scheduler file)",
    )

    def __post_init__(self) -> None:
        if self.address is not None and self.scheduler_file is not None:
            raise ValueError("give address or scheduler_file, not both")
        if self.address is not None:
            problem = address_problem(self.address)
            if problem is not None:
                raise ValueError(f"address {self.address!r} is not a scheduler address: {problem}")
        if self.scheduler_file is not None and not self.scheduler_file.strip():
            raise ValueError(
                "scheduler_file is empty; give a scheduler file, or leave it out for a LocalCluster"
            )
        if self.chunksize is not None and self.chunksize < 1:
            raise ValueError("chunksize must be at least 1")
        if not self.connect_timeout > 0:
            raise ValueError("connect_timeout must be a number of seconds above 0")


class DaskBackend(Backend):
    """Run items on a Dask cluster: an existing one, or a LocalCluster of ``jobs`` processes."""

    name = "dask"
    description = "A Dask distributed cluster: local by default, or an existing scheduler."
    requires = ("dask", "distributed")
    # A lost worker fails its task; the chunk's items are then retried one by one so
    # that only the culprit is reported crashed. Dask does not tell how the worker
    # process ended, so the kit's crash check (which wants the exit code) does not apply.
    capabilities = Capabilities(
        parallel=True,
        needs_picklable_work=True,
        cancel_running=True,
        keeps_groups=True,
        worker_lifecycle=True,
        lifecycle_timeouts=True,
    )
    Options = DaskOptions

    def __init__(self, options: Any, jobs: int) -> None:
        super().__init__(options, jobs)
        self._dispatch: ChunkDispatch | None = None
        self._shipped: dict[int, bytes] = {}

    def prepare(self, work: Work) -> None:
        """Pickle the work now: a pipeline that cannot be sent is named before the run starts."""
        self._shipped = {id(work): pickle_work(work, self.name)}

    def request_stop(self) -> None:
        """Dispatch nothing new, and tell the workers to start no further item of the run.

        Items already running finish (Dask cannot interrupt them); chunks
        waiting on the workers come back without running.
        """
        super().request_stop()
        dispatch = self._dispatch
        if dispatch is not None:
            dispatch.stop_workers()

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        """Connect (or start a LocalCluster), scatter the work, stream chunk outcomes.

        Workers never import the user's main module (what it defines reaches
        them by value, with cloudpickle, and so does a pipeline file given to
        ``curator run``), so a script needs no ``if __name__ == "__main__":``
        guard, and a cluster elsewhere needs no copy of the file.
        """
        # Dask's nanny starts (and restarts) worker processes from a thread of its own.
        with main_module_stays_home():
            yield from self._execute(work, indices)

    def _execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        import dask
        import distributed  # noqa: F401

        options: DaskOptions = self.options
        shipped = self._shipped.pop(id(work), None) or pickle_work(work, self.name)
        remote = options.address is not None or options.scheduler_file is not None
        # For the LocalCluster, the whole run: a death fails the task at once (the run
        # loop decides about retries), and a worker that died is never given up. Dask's
        # cluster closes the nanny of a worker not back within lost-worker-timeout (15 s):
        # a loaded machine restarting one that an item kills again can take longer, and
        # with every nanny closed the run would have no worker left.
        # Imported first, distributed loads its defaults into Dask's config: a set
        # made before that would, at its end, take the whole "distributed" tree away
        # with it (the process's next cluster would fail on a missing key).
        settings = contextlib.nullcontext() if remote else _local_cluster_settings(dask)
        with settings:
            yield from self._on_cluster(work, indices, shipped, remote)

    def _local_cluster(self, cluster_cls: Any) -> Any:
        """A LocalCluster of ``jobs`` single-threaded worker processes, started.

        Raises
        ------
        UsageError
            It could not start (distributed's "Cluster failed to start"): most
            often Dask's configuration names something this machine lacks.
        """
        try:
            return new_with_loop(
                cluster_cls,
                n_workers=self.jobs,
                threads_per_worker=1,
                processes=True,
                # Not None: the scheduler's HTTP server would still take port 8787
                # (and warn when a notebook's cluster or another run holds it).
                dashboard_address=":0",
                # Its dask_setup makes the workers ignore a terminal's Ctrl-C.
                preload=["curator_backend_dask.tasks"],
            )
        except RuntimeError as exc:
            cause = exc.__cause__ or exc
            raise UsageError(
                f"the Dask LocalCluster of {self.jobs} workers could not start "
                f"({type(cause).__name__}: {cause}); check Dask's configuration (DASK_* "
                "environment variables, ~/.config/dask), or give the address of a "
                "running scheduler (-o address=...)"
            ) from exc

    def _on_cluster(
        self, work: Work, indices: Sequence[int], shipped: bytes, remote: bool
    ) -> Iterator[Event]:
        from distributed import Client, LocalCluster

        options: DaskOptions = self.options
        cluster = None
        if remote:
            client = connect(
                Client,
                options.address,
                options.scheduler_file,
                lambda: self.stop_requested,
                options.connect_timeout,
            )
            if client is None:  # stopped while it waited for the scheduler file
                return
        else:
            # One start at a time in a process: two at once (runs in two threads) can
            # race in distributed's lazy imports ("module 'distributed.dashboard' has
            # no attribute 'scheduler'").
            with LOCAL_CLUSTER_START:
                cluster = self._local_cluster(LocalCluster)
                try:
                    client = new_with_loop(Client, cluster)
                except BaseException:  # the cluster is up: its workers must not outlive this
                    with uninterrupted("closing the Dask cluster"):
                        close_with_loop(cluster)
                    raise
        try:
            self._dispatch = ChunkDispatch(self, client, work, shipped, indices)
            if self.stop_requested:  # asked while the cluster started
                return
            yield from self._dispatch.run()
        except OSError as exc:  # SchedulerLost, or a call that found the scheduler gone
            if client.status == "running" and not isinstance(exc, SchedulerLost):
                raise
            where = options.address or options.scheduler_file or "the LocalCluster"
            raise UsageError(
                f"lost the Dask scheduler at {where} ({exc}); the outcomes that came back "
                "before are recorded (--resume runs the rest)"
            ) from None
        finally:
            self._dispatch = None
            # A hard stop raised inside close() would leave the cluster half-closed, and
            # distributed's exit hook waiting 10 s on it: the stop waits for the close.
            with uninterrupted("closing the Dask cluster"):
                try:
                    close_with_loop(client)
                finally:
                    if cluster is not None:
                        close_with_loop(cluster)
