"""The unit of work a backend executes: one pipeline index in, one Outcome out."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from curator.backends.lifecycle import Announce, WorkerInfo, set_up, tear_down
from curator.model import pickling
from curator.model.captured import Captured
from curator.model.errors import HardStop
from curator.model.measures import Metrics
from curator.model.outcome import ErrorInfo, ErrorKind, Outcome, Status, TaskStart
from curator.model.pipeline import Pipeline
from curator.model.plan import StagePlan
from curator.model.shards import WorkerShards
from curator.model.state import Contributed, reset_all, states_of
from curator.observing import capture
from curator.observing.capture import Buffer
from curator.observing.features import (
    FeatureError,
    ItemFeature,
    begin_features,
    end_quietly,
    run_features,
)
from curator.observing.metrics import Meter, metric_sampling


class Work:
    """Turns an index into an :class:`~curator.model.outcome.Outcome`; never raises for an item.

    A backend receives one ``Work`` per run. It is picklable when the pipeline
    is, and is meant to be sent to each worker once (an initializer, a
    broadcast) and then called for many indices.

    Parameters
    ----------
    pipeline
        The pipeline to run; it must have a sink.
    attempt
        Which try this is (1 for the first); outcomes and start records carry it.
    check_results
        Pickle each result once where it is made, with the checkpoint's own
        pickler (:func:`curator.model.pickling.dumps`), so that a result that
        cannot travel to the parent or be stored in the checkpoint fails its
        own item (type ``UnpicklableResult``, or ``UnpicklableState`` for a
        stage's partial) instead of losing others. The core sets it when
        results cross a process boundary or are checkpointed, unless the
        backend converts such failures itself (``Capabilities.checks_results``).
        In a worker process, classes and functions that came by value from
        the user's ``__main__`` count as the run's own (its process has them);
        a value only cloudpickle could take (an object of a class defined in
        a function) fails, since the checkpoint could not store it.
    metrics
        Measure items (see :mod:`curator.observing.metrics`): outcomes made here
        carry :class:`~curator.observing.metrics.Metrics`, and :attr:`measured` holds
        the row of the item :meth:`run_index` ran last (``None`` when it was
        not measured). ``True`` samples quick items (one in
        :data:`~curator.observing.metrics.SAMPLE_EVERY`, once a streak of
        them ran, widening to one in 256 while they stay quick; an item that
        runs long or fails is always read, see
        :class:`~curator.observing.metrics.Meter`), ``"all"`` measures every
        item in full.
    capture
        Capture what each item writes to stdout, stderr and logging (see
        :mod:`curator.observing.capture`) while it runs:
        outcomes made here carry it as ``output``, and :attr:`captured`
        holds that of the item :meth:`run_index` ran last.
    features
        The run's per-item features (see :mod:`curator.observing.features`), called
        around each item: outcomes made here carry their data as ``extras``,
        and :attr:`extras` holds that of the item :meth:`run_index` ran last.
    """

    __slots__ = (
        "_capturing",
        "_in_row",
        "_plain",
        "_set_up",
        "accumulating",
        "attempt",
        "capture",
        "captured",
        "check_results",
        "extras",
        "features",
        "home",
        "measured",
        "meter",
        "pipeline",
        "plan",
        "sharding",
    )

    def __init__(
        self,
        pipeline: Pipeline[Any],
        attempt: int = 1,
        check_results: bool = False,
        metrics: bool | str = True,
        capture: bool = True,
        features: tuple[ItemFeature, ...] = (),
        plan: StagePlan | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.plan = plan if plan is not None else StagePlan.of(pipeline)
        """The run's stage plan (see :mod:`curator.model.plan`), made once per run."""
        self.features = features
        self.extras: dict[str, Any] | None = None
        """What the features recorded for the item :meth:`run_index` ran last (``None``: nothing).

        Backends that ship results in columns send it along (see
        :attr:`curator.Successes.extras`); outcomes made by calling the work
        carry it already."""
        self.capture = capture
        self._capturing = False
        self._in_row: Buffer | None = None
        self.captured: Captured | None = None
        """What the item :meth:`run_index` ran last printed (``None``: nothing, or no capture)."""
        self.attempt = attempt
        self.check_results = check_results
        self.meter = Meter(pipeline, metric_sampling(metrics)) if metrics else None
        self.measured: tuple[float, ...] | None = None
        """The metrics row of the item :meth:`run_index` ran last (``None`` without metrics).

        An item the meter sampled out has the all-``NaN`` row
        :attr:`Meter.nothing <curator.observing.metrics.Meter.nothing>`, the
        same object every time: a backend may send it like any row, or
        leave it out (``if work.measured is not work.meter.nothing``). Backends
        that ship results in columns send it along (see
        :class:`curator.Successes`); outcomes made by calling the work carry
        it as :class:`~curator.observing.metrics.Metrics` already."""
        self.home = os.getpid()
        """The run's process: results made elsewhere travel back to it."""
        self._set_up: list[object] | None = None
        self.accumulating = self.plan.accumulating
        """The stages whose state merges back (see :mod:`curator.model.state`)."""
        self.sharding = _shards_of(self.plan)
        """The stages that write a shard file per item (see :mod:`curator.model.shards`)."""
        self._plain = self._is_plain()

    def __call__(self, index: int, worker: str = "main", attempt: int | None = None) -> Outcome:
        """Run ``index`` and describe how it ended.

        Whatever the item raises, :class:`KeyboardInterrupt` and
        :class:`SystemExit` included, becomes a ``failed`` outcome carrying
        the formatted traceback, the same on every backend. Only
        :class:`~curator.model.errors.HardStop`, which curator's own signal handling
        raises in the main thread, propagates: it stops the run, not the item.
        """
        if attempt is None:
            attempt = self.attempt
        started = time.time()
        # Not through run_index: threads sharing one work each keep their own results.
        ok, payload, finished, row, output, extras = self._run(index, started)
        metrics = None if row is None else Metrics.from_row(row)
        if ok:
            return Outcome(
                index, Status.OK, payload, None, worker, started, finished, attempt, metrics,
                output, extras,
            )  # fmt: skip
        return Outcome(
            index, Status.FAILED, None, payload, worker, started, finished, attempt, metrics,
            output, extras,
        )  # fmt: skip

    def run_index(self, index: int, started: float) -> tuple[bool, Any, float]:
        """Run ``index`` as calling the work does, and say how it ended in compact form.

        For backends that ship results in bulk and build outcomes elsewhere:
        no :class:`~curator.model.outcome.Outcome` is made here.

        Parameters
        ----------
        index
            The item to run.
        started
            When the caller took the item on (its :func:`time.time`).

        Returns
        -------
        tuple
            ``(True, value, finished)`` when the sink returned, or
            ``(False, error, finished)`` with an :class:`~curator.model.outcome.ErrorInfo`.
            :attr:`measured`, :attr:`captured` and :attr:`extras` then hold
            the item's metrics row, output and features' data.
        """
        meter = self.meter
        in_row = self._in_row
        if in_row is not None and (meter is None or meter.skip > 0):
            # What most items of a long run take: the pipeline's call, in one frame,
            # with the buffer in_a_row() keeps open (an item that is measured, or has
            # more around it, takes _run itself).
            if meter is not None:
                meter.skip -= 1
            row = None
            try:
                value = self.pipeline[index]
            except HardStop:
                raise
            except BaseException as exc:
                ok, payload, finished, row = self._failed(
                    ErrorInfo.from_exception(exc), started, None
                )
            else:
                ok, payload, finished = True, value, time.time()
                if meter is not None and finished - started >= meter.quick:
                    row = meter.ended(None, finished - started, True)
            self.captured = in_row.take() if in_row.size else None
            self.extras = None
        else:
            ok, payload, finished, row, self.captured, self.extras = self._run(index, started)
        self.measured = row if row is not None or meter is None else meter.nothing
        return ok, payload, finished

    def in_a_row(self) -> InARow:
        """A block in which the calling thread runs items with :meth:`run_index`, and only that.

        For backends whose worker runs many items one after another in one
        thread (a process's chunk loop): within the block, the item's output
        buffer is opened once, not around each item, and what the thread
        writes counts toward the item that runs next, so nothing but items
        may write from it. Only the thread that entered may call
        :meth:`run_index` inside the block. A stream an item replaces for good
        is caught at the next block, not the next item. The work runs the
        same without the block, at a fraction of a microsecond more per item
        (see :mod:`curator.observing.capture`).
        """
        return InARow(self)

    def _run(self, index: int, started: float) -> tuple[
        bool, Any, float, tuple[float, ...] | None, Captured | None, dict[str, Any] | None
    ]:  # fmt: skip
        """:meth:`run_index`, with the item's metrics row, output and extras returned."""
        buffer = capture.begin() if self.capture else None
        extras = None
        try:
            if self.features:
                ok, payload, finished, row, extras = self._featured(index, started)
            else:
                ok, payload, finished, row = self._attempt(index, started)
        finally:
            output = None if buffer is None else capture.end(buffer)
        return ok, payload, finished, row, output, extras

    def _featured(
        self, index: int, started: float
    ) -> tuple[bool, Any, float, tuple[float, ...] | None, dict[str, Any] | None]:
        """One attempt with the per-item features around it; a feature's failure fails the item."""
        features = self.features
        try:
            tokens = begin_features(features, index)
        except FeatureError as exc:
            meter = self.meter
            due = True  # to be measured, unless it is one of the items to run bare
            if meter is not None and meter.skip > 0:
                meter.skip -= 1  # counted down as _attempt would
                due = False
            error = ErrorInfo.from_exception(exc)
            _, _, finished, row = self._failed(error, started, None, due)  # a failed item is read
            return False, error, finished, row, None
        try:
            ok, payload, finished, row = self._attempt(index, started)
        except BaseException:  # a hard stop: the features still end, what they say is not kept
            end_quietly(features, tokens, index)
            raise
        try:
            extras = run_features(features, tokens, index, ok)
        except FeatureError as exc:
            error = ErrorInfo.from_exception(exc)
            if not ok:  # the item had failed already, and was read then
                return False, error, time.time(), row, None
            if row is None:  # it ran bare and quick: read now, as every failed item is
                _, _, finished, row = self._failed(error, started, None)
            else:  # read already (measured, or long): counted once, its streak ends
                if self.meter is not None:
                    self.meter.failed()
                finished = time.time()
            return False, error, finished, row, None
        return ok, payload, finished, row, extras

    def _attempt(
        self, index: int, started: float
    ) -> tuple[bool, Any, float, tuple[float, ...] | None]:
        accumulating = self.accumulating
        meter = self.meter
        measuring = False
        if meter is not None:
            # Quick items are sampled: this one runs bare. "> 0": threads sharing the
            # work may both count the last one down; below zero reads as none left.
            if meter.skip > 0:
                meter.skip -= 1
            else:
                measuring = True
        sharding = self.sharding
        row = None
        if sharding is not None:
            sharding.begin(index)  # the item writes its own shard (see curator.model.shards)
        try:
            if accumulating:
                reset_all(accumulating)
            if not measuring:
                value: Any = self.pipeline[index]
            else:
                assert meter is not None
                readings = meter.start()
                try:
                    value = meter.run(self.pipeline, index, readings)
                finally:
                    row = meter.stop(readings)
            if accumulating:
                # The item's contribution travels with its value: it counts only
                # where the outcome is recorded ok, so exactly once.
                value = Contributed(value, states_of(accumulating))
            if sharding is not None:
                sharding.flush()
        except HardStop:
            if sharding is not None:
                sharding.discard()
            raise
        except BaseException as exc:
            if sharding is not None:
                sharding.drop()
            return self._failed(ErrorInfo.from_exception(exc), started, row, measuring)
        if self.check_results:
            error = self.value_error(value, os.getpid() != self.home)
            if error is not None:
                if sharding is not None:
                    sharding.discard()  # an item that is not ok has no rows
                return self._failed(error, started, row, measuring)
        if sharding is not None:
            try:
                sharding.commit()
            except Exception as exc:  # its shard cannot take its name: the item is not ok
                return self._failed(ErrorInfo.from_exception(exc), started, row, measuring)
        finished = time.time()
        if meter is not None and (measuring or finished - started >= meter.quick):
            row = meter.ended(row, finished - started, True)
        return True, value, finished, row

    def _failed(
        self, error: ErrorInfo, started: float, row: tuple[float, ...] | None, due: bool = False
    ) -> tuple[bool, Any, float, tuple[float, ...] | None]:
        """How a failed attempt ended; a sampled one still gets its readings.

        ``due``: the item was to be measured (see :meth:`Meter.ended`).
        """
        finished = time.time()
        if self.meter is not None:
            row = self.meter.ended(row, finished - started, False, due)
        return False, error, finished, row

    @staticmethod
    def value_error(value: Any, away: bool = True) -> ErrorInfo | None:
        """The error of an ``ok`` item whose value the checkpoint could not store, or ``None``.

        The check of ``check_results``, with the checkpoint's own pickler (see
        :mod:`curator.model.pickling`), for backends that send values themselves: a
        value that fails it must fail its item (with this error) before it is
        sent, since the run's process could not record it. ``away``: the value
        was made outside the run's process.
        """
        problem = pickling.problem(value, away)
        return None if problem is None else Work.travel_error(value, problem, away)

    @staticmethod
    def travel_error(value: Any, problem: Exception, away: bool = True) -> ErrorInfo:
        """The error of an ``ok`` item whose value failed to pickle with ``problem``.

        For backends that pickle values themselves: it says whether the
        sink's result or a stage's partial state (see :mod:`curator.model.state`)
        is to blame. ``away``: the value was made outside the run's process.
        """
        if type(value) is not Contributed:
            return ErrorInfo.unpicklable_result(value, problem)
        inner = pickling.problem(value.value, away)
        if inner is not None:
            return ErrorInfo.unpicklable_result(value.value, inner)
        cause = ErrorInfo.from_exception(problem)
        return ErrorInfo(
            type=ErrorKind.UNPICKLABLE_STATE.value,
            message="a stage's state() returned something that cannot be pickled, so it "
            "cannot be merged in the run's process or stored in the checkpoint: "
            f"{cause.type}: {cause.message}; return plain data (numbers, tuples, lists, "
            "dicts, arrays)",
            traceback=cause.traceback,
        )

    @property
    def metric_width(self) -> int:
        """Floats per row of :attr:`measured` (0 when the work measures nothing)."""
        return self.meter.width if self.meter is not None else 0

    @property
    def is_set_up(self) -> bool:
        """Whether :meth:`setup` ran (and :meth:`teardown` did not yet)."""
        return self._set_up is not None

    def setup(self, worker: WorkerInfo, announce: Announce | None = None) -> None:
        """Call the stages' ``setup(worker)`` once, before this worker's first item.

        Backends call it on the worker's own copy of the work (a process's, a
        thread's); calling it again does nothing until :meth:`teardown`.
        ``announce`` is told ``("setup", stage name)`` before each stage's
        ``setup`` (to name the stage that overran its limit).

        Raises
        ------
        UsageError
            Naming the stage whose ``setup`` raised (the others are torn down).
        """
        if self._set_up is None:
            self._set_up = set_up(self.pipeline, worker, announce)
            if self.meter is not None:
                self.meter.rebase()  # what setup used is no item's
            if self.capture:
                capture.acquire()
                self._capturing = True

    def teardown(self, announce: Announce | None = None) -> None:
        """Call ``teardown()`` of the stages :meth:`setup` set up, after the worker's last item.

        Does nothing if :meth:`setup` was not called (the worker ran no item).
        ``announce`` is told ``("teardown", stage name)`` before each stage's ``teardown``.

        Raises
        ------
        UsageError
            Naming each stage whose ``teardown`` raised.
        """
        done, self._set_up = self._set_up, None
        if done is None:
            return
        if self._capturing:
            self._capturing = False
            capture.release()
        if done:
            tear_down(done, announce)

    def start(self, index: int, worker: str = "main") -> TaskStart:
        """Make the start record for ``index`` (stamped now)."""
        return TaskStart(index, worker, time.time(), self.attempt)

    def interrupted(self, index: int, started: float, worker: str = "main") -> Outcome:
        """The outcome of an item that a hard stop ended while it ran."""
        return Outcome.interrupted(index, started, worker, self.attempt)

    def __getstate__(self) -> _State:
        return (
            self.pipeline, self.attempt, self.check_results, self.home,
            0 if self.meter is None else self.meter.every, self.capture, self.features, self.plan,
        )  # fmt: skip

    def __setstate__(self, state: _State) -> None:
        (self.pipeline, self.attempt, self.check_results, self.home, metrics, self.capture,
         self.features, self.plan) = state  # fmt: skip
        self.extras = None
        self._capturing = False
        self._in_row = None
        self.captured = None
        self.meter = Meter(self.pipeline, metrics) if metrics else None
        self.measured = None
        self._set_up = None  # each copy sets up its own stages
        self.accumulating = self.plan.accumulating
        self.sharding = _shards_of(self.plan)
        self._plain = self._is_plain()

    def _is_plain(self) -> bool:
        """Whether an item is the pipeline's call alone: no features, state, shards or check."""
        return not (self.features or self.accumulating or self.check_results) and (
            self.sharding is None
        )


class InARow:
    """What :meth:`Work.in_a_row` returns: a context manager, entered once per stretch of items."""

    __slots__ = ("_buffer", "_work")

    def __init__(self, work: Work) -> None:
        self._work = work
        self._buffer: Buffer | None = None

    def __enter__(self) -> Work:
        work = self._work
        # Only the plain items take the short way; the others open their own buffer.
        if work._plain and work._in_row is None:
            # Without capture: a buffer never opened, so it stays empty.
            self._buffer = capture.begin() if work.capture else Buffer()
            work._in_row = self._buffer
        return work

    def __exit__(self, *exc: object) -> None:
        buffer, self._buffer = self._buffer, None
        if buffer is None:
            return
        work = self._work
        work._in_row = None
        if work.capture:
            left = capture.end(buffer)
            if left is not None:  # written after the last item: not an item's, not lost either
                sys.stderr.write(left.text)


_State = tuple[Pipeline[Any], int, bool, int, int, bool, tuple[ItemFeature, ...], StagePlan]
"""What a :class:`Work` pickles as."""


def _shards_of(plan: StagePlan) -> WorkerShards | None:
    return WorkerShards(plan.sharding) if plan.sharding else None
