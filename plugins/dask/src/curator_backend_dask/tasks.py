"""What runs on the Dask workers (importable there, with no dependency on the parent)."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

from curator import Outcome, Work, WorkerInfo
from curator.backends.lifecycle import Announce, setup_timed_out

_SET_UP: dict[tuple[str, str], Work] = {}
"""The works loaded (and set up) in this process, by run and worker address, until teardown.

Each worker loads the scattered, pickled work once per run and keeps its copy:
Dask's active memory manager drops a scattered replica a worker no longer
needs, and a worker's death can lose the last one (the parent then scatters it
again, under a new key), so the scattered data is no handle on the copy a
worker set up. Several workers may share a process: the address tells them apart.
"""

_STOPPED: set[str] = set()
"""Runs whose parent asked to stop: their tasks start no further item."""

SETUP_FATE = (
    "Dask cannot stop a task's thread: the setup was abandoned in its thread, and this "
    "worker's next task sets up a fresh copy"
)
HOOK_POLL_SECONDS = 0.05


class CannotLoadWork(Exception):
    """A worker could not unpickle the run's work: a module the pipeline needs is missing there."""


def run_chunk(
    shipped: bytes,
    indices: list[int],
    topic: str,
    token: int,
    slots: dict[str, int],
    jobs: int,
    setup_timeout: float | None = None,
    end_at_failure: bool = False,
) -> list[Outcome]:
    """Run ``indices`` in order on this worker and return their outcomes.

    ``topic`` names the run. Before the first item, ``token`` and this
    worker's address are logged to the scheduler under ``topic`` and
    acknowledged; after the last, the end is logged on the worker's ordered
    stream to the scheduler, so the scheduler knows of it before it knows
    the result. If this worker dies, the parent can tell a chunk that was
    running (it holds the culprit) from one that only waited in the worker's
    queue and from one that had finished. Once the parent asks the run to
    stop (:func:`stop`), no further item starts: the outcomes of those that
    ran come back, the others have none. With ``end_at_failure`` the chunk
    also ends after its first item that fails, so that the parent counts the
    failure at once (the rest of the chunk goes out again).

    ``shipped`` is the work as :func:`curator.backends.shipping.pickle_work` made it;
    each worker loads it once per run (a worker that cannot raises
    :class:`CannotLoadWork`, naming itself and the cause). The stages'
    ``setup(worker)`` runs before this worker's first item of the run (on the
    worker's own copy, shared by its tasks); ``slots`` maps
    worker addresses to slots (a worker that joined later gets the next one).
    With ``setup_timeout``, the setup runs in a thread of its own for at most
    that long; past it, the chunk's items fail ``SetupTimeout``.
    """
    from distributed import get_client, get_worker

    dask_worker = get_worker()
    address = dask_worker.address
    get_client().log_event(topic, {"token": token, "worker": address})
    outcomes: list[Outcome] = []
    if topic not in _STOPPED:  # a stopped run sets nothing up
        worker = f"dask-{os.getpid()}"
        info = WorkerInfo(slots.get(address, len(slots)), "dask", jobs)
        work = _SET_UP.get((topic, address)) or _load(shipped, address)
        mine, stage = _set_up(work, (topic, address), info, setup_timeout)
        if mine is None:
            assert setup_timeout is not None
            fate = SETUP_FATE
            outcomes = setup_timed_out(indices, stage, setup_timeout, worker, fate, work.attempt)
        else:
            for index in indices:
                if topic in _STOPPED:
                    break
                outcome = mine(index, worker)
                outcomes.append(outcome)
                if end_at_failure and outcome.status.is_failure:
                    break
    # Through the client, which waits for the scheduler to have it: the worker's own
    # log_event is batched, and a worker that dies at its next item (a crash) would lose
    # it, and with it the proof that this chunk was done, not the one that crashed.
    get_client().log_event(topic, {"token": token, "done": True})
    return outcomes


def _load(shipped: bytes, address: str) -> Work:
    try:
        work: Work = pickle.loads(shipped)
    except Exception as exc:
        raise CannotLoadWork(f"{address}: {type(exc).__name__}: {exc}") from None
    return work


def _set_up(
    work: Work, key: tuple[str, str], info: WorkerInfo, limit: float | None
) -> tuple[Work | None, str | None]:
    """The worker's own copy of ``work``, set up (``None`` and the stage: past ``limit``)."""
    if limit is None:
        mine = _SET_UP.setdefault(key, work)
        mine.setup(info)
        return mine, None
    if key not in _SET_UP:
        # A copy: a setup abandoned in its thread keeps its copy, and the scattered
        # one stays clean for this worker's next try.
        _SET_UP[key] = copy.deepcopy(work)
    mine = _SET_UP[key]
    if not mine.is_set_up:
        hook = _Hook(lambda announce: mine.setup(info, announce))
        if not hook.finished.wait(limit):
            del _SET_UP[key]
            return None, hook.stage
        if hook.error is not None:
            raise hook.error
    return mine, None


class _Hook:
    """A stage hook called in a daemon thread of its own (Dask cannot stop a task's thread)."""

    def __init__(self, hook: Callable[[Announce], None]) -> None:
        self.finished = threading.Event()
        self.stage: str | None = None
        """The stage whose hook was called last."""
        self.error: BaseException | None = None
        threading.Thread(target=self._call, args=(hook,), name="curator-hook", daemon=True).start()

    def _call(self, hook: Callable[[Announce], None]) -> None:
        try:
            hook(self._announce)
        except BaseException as exc:  # handed to the waiting side
            self.error = exc
        finally:
            self.finished.set()

    def _announce(self, hook: str, stage: str) -> None:
        self.stage = stage


def stop(dask_worker: Any, topic: str) -> None:
    """Let the tasks of run ``topic`` on this worker start no further item."""
    _STOPPED.add(topic)


async def tear_down(
    dask_worker: Any, topic: str, limit: float | None = None
) -> tuple[str, str | None] | None:
    """Tear down this worker's copy of the work of run ``topic``.

    Run on every worker with ``client.run`` when the run's items are done; a
    worker that ran none of them has nothing to tear down. The teardown runs
    in a thread of its own, so the worker's event loop stays responsive, for
    ``limit`` seconds at most. Returns ``None`` when it went well,
    ``("failed", error)`` when it raised, ``("abandoned", stage)`` when it
    ran past the limit (it goes on in its thread).
    """
    _STOPPED.discard(topic)
    work = _SET_UP.pop((topic, dask_worker.address), None)
    if work is None:
        return None
    hook = _Hook(work.teardown)
    waited = 0.0
    while not hook.finished.is_set() and (limit is None or waited < limit):
        await asyncio.sleep(HOOK_POLL_SECONDS)
        waited += HOOK_POLL_SECONDS
    if not hook.finished.is_set():
        return "abandoned", hook.stage
    if hook.error is None:
        return None
    if not isinstance(hook.error, Exception):
        raise hook.error
    return "failed", f"{type(hook.error).__name__}: {hook.error}"


def dask_setup(worker: Any) -> None:
    """Preloaded into each worker process of the LocalCluster curator starts.

    Ctrl-C in a terminal reaches every process of the foreground group, these
    workers too. The run's process decides what stops (its grace period lets
    running items finish), so the workers ignore it, as the process pool's do.

    A run that stops (a hard stop, a stream left early) closes the cluster
    with items still running: each worker then warned, on the run's stderr,
    that a task's "Async instruction ... ended with CancelledError". That is
    the stop the user asked for, said already by curator, so it is dropped.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").addFilter(_not_cancelled_by_the_stop)


def _not_cancelled_by_the_stop(record: logging.LogRecord) -> bool:
    """Whether ``record`` is another warning than a task cancelled as the cluster closed."""
    return "ended with CancelledError" not in record.getMessage()
