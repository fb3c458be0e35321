"""Stage state that merges back: dataset-wide results of stages that accumulate.

A Filter or Sink *accumulates* when it defines three methods:

``reset()``
    Start empty. Bind new containers rather than clearing old ones in place:
    a partial already handed out by :meth:`state` must not change.
``state()``
    Return what the stage accumulated since the last ``reset()``: a
    picklable *partial* (a tuple of numbers, a small dict, an array).
``merge(states)``
    Make the stage hold the combination of the partials in ``states``
    (replacing what it held) and return that combined partial.

and optionally ``finish()``, called once in the run's process after the
final merge, to write the dataset-wide result somewhere (a JSON file).

Every backend runs the same cycle, inside :class:`curator.Work`: a worker
calls ``reset()`` before each item and ``state()`` after an item that ended
``ok``; the partial travels to the run's process with the item's outcome. A
failed, crashed or timed-out attempt contributes nothing, a retried item
counts once. The run's process folds the partials with ``merge`` into the
caller's own stage object, so after ``curator.run(...)`` it holds the
dataset-wide state, as after a sequential run. The checkpoint stores each
batch's partial with the outcomes it covers, in the same transaction, so a
resumed run adds the partials of the items it skips.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from curator.model import pickling
from curator.model.errors import StateMergeError
from curator.model.pipeline import Pipeline

FOLD_ABOVE = 256
"""Partials the run's process keeps per stage before folding them into one."""


def accumulates(stage: object) -> bool:
    """Whether ``stage`` follows the accumulating protocol (``reset``, ``state``, ``merge``)."""
    return all(callable(getattr(stage, name, None)) for name in ("reset", "state", "merge"))


def accumulating_stages(pipeline: Pipeline[Any]) -> tuple[Any, ...]:
    """The pipeline's accumulating filters and sink, in pipeline order."""
    return tuple(s for s in (*pipeline.filters, pipeline.sink) if accumulates(s))


def stage_label(stage: object) -> str:
    """How messages name a stage: its class name."""
    return type(stage).__qualname__


class Contributed:
    """An ``ok`` item's value travelling with its stages' partials (one per stage).

    :class:`curator.Work` wraps values in it when the pipeline has
    accumulating stages; the run loop unwraps it before anything else sees
    the value.
    """

    __slots__ = ("states", "value")

    def __init__(self, value: Any, states: tuple[Any, ...]) -> None:
        self.value = value
        self.states = states

    def __reduce__(self) -> tuple[Any, ...]:
        return (Contributed, (self.value, self.states))


class StateMark:
    """In the checkpoint's queue: the partials of the ``ok`` outcomes queued before it.

    The checkpoint writes outcomes only together with the mark that follows
    them, in one transaction, so a resume never counts an item twice or not at all.
    The partials are pickled when the mark is made: a later ``merge`` that
    updates a partial in place must not change what the checkpoint stores.
    ``pickled`` is ``None`` when they cannot be pickled (a ``merge`` that
    returned something unpicklable): the checkpoint then stores the outcomes
    without partials, and a resume runs their ``ok`` items again.
    """

    __slots__ = ("pickled",)

    def __init__(self, partials: list[tuple[Any, ...]]) -> None:
        self.pickled: bytes | None
        try:
            self.pickled = pickling.dumps(partials)
        except Exception:
            self.pickled = None


def reset_all(stages: Sequence[Any]) -> None:
    """Call ``reset()`` of each stage (before an item)."""
    for stage in stages:
        stage.reset()


def states_of(stages: Sequence[Any]) -> tuple[Any, ...]:
    """Each stage's partial (after an ``ok`` item)."""
    return tuple(stage.state() for stage in stages)


def clean_copy(stage: object) -> object:
    """A copy of an accumulating ``stage`` with its state reset, or the stage if it cannot copy.

    The fingerprint describes this copy: the state a stage accumulated is the
    run's result, not one of its parameters.
    """
    import copy  # here: a worker's start (which imports this module) has no use for it

    try:
        clone = copy.deepcopy(stage)
        clone.reset()  # type: ignore[attr-defined]
    except Exception:
        return stage
    return clone


class StageStates:
    """The run's process side: partials in, the caller's stages hold their merge at the end.

    Parameters
    ----------
    stages
        The caller's accumulating stages (the objects of the pipeline given to
        the run), which receive the merged state.
    """

    def __init__(self, stages: Sequence[Any]) -> None:
        self.stages = tuple(stages)
        self._pending: list[list[Any]] = [[] for _ in self.stages]
        self._batch: list[tuple[Any, ...]] = []
        self.problem: str | None = None
        """Why merging failed (the first failure); partials are then kept unfolded."""
        self._merged_then_failed = False
        """Whether the failure was a ``finish()``: that stage holds the merged state."""

    def add(self, states: tuple[Any, ...]) -> None:
        """Count one ``ok`` item's partials (one per stage)."""
        self._batch.append(states)

    def add_all(self, states: list[tuple[Any, ...]]) -> None:
        """Count many ``ok`` items' partials."""
        self._batch += states

    def add_stored(self, marks: Sequence[bytes]) -> Exception | None:
        """Count the partials a checkpoint holds for one batch of items a resumed run skips.

        ``marks`` are :attr:`StateMark.pickled` values, read from a checkpoint
        whose signature proved this user's curator wrote it. All of them count,
        or, when one does not unpickle here (its class changed since the run),
        none: then it returns why, and the batch's items must run again.
        """
        try:
            loaded = [states for pickled in marks for states in pickle.loads(pickled)]
        except Exception as exc:  # whatever a partial's own unpickling raises
            return exc
        for states in loaded:
            self._keep(states)
        return None

    def end_batch(self) -> list[tuple[Any, ...]] | None:
        """Close the current batch; return its partials (folded to one when merging works).

        ``None`` when the batch had no ``ok`` item. What is returned is what the
        checkpoint stores with the batch's outcomes.
        """
        batch, self._batch = self._batch, []
        if not batch:
            return None
        if len(batch) > 1 and self.problem is None:
            folded = self._fold_columns(batch)
            if folded is not None:
                batch = [folded]
        for states in batch:
            self._keep(states)
        return batch

    def _keep(self, states: tuple[Any, ...]) -> None:
        for pending, partial in zip(self._pending, states, strict=True):
            pending.append(partial)
        if len(self._pending[0]) > FOLD_ABOVE and self.problem is None:
            folded = self._fold_columns(list(zip(*self._pending, strict=True)))
            if folded is not None:
                self._pending = [[partial] for partial in folded]

    def _fold_columns(self, rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        """One partial per stage out of many rows of partials, or ``None`` once merging failed."""
        folded = []
        for position, stage in enumerate(self.stages):
            combined = self._merge(stage, [row[position] for row in rows])
            if self.problem is not None:
                return None
            folded.append(combined)
        return tuple(folded)

    def _merge(self, stage: Any, partials: list[Any]) -> Any:
        try:
            combined = stage.merge(partials)
        except Exception as exc:
            self.problem = (
                f"the stage {stage_label(stage)} could not merge its partial states: "
                f"merge() raised {type(exc).__name__}: {exc}"
            )
            return None
        if combined is None:
            self.problem = (
                f"the stage {stage_label(stage)}'s merge() returned nothing: it must return "
                "the combined state (and hold it)"
            )
        return combined

    def finish(self) -> None:
        """Leave each caller's stage holding the merge of every partial counted.

        Raises
        ------
        StateMergeError
            Naming the stage whose ``merge`` raised or returned nothing (the
            result is attached by the run loop).
        """
        if self.problem is None:
            for stage, pending in zip(self.stages, self._pending, strict=True):
                if not self._settle(stage, pending):
                    break
        if self.problem is not None:
            held = (
                "the stage holds the run's merged state, but its finish() did not complete"
                if self._merged_then_failed
                else "the stage does not hold the run's merged state"
            )
            raise StateMergeError(
                f"{self.problem}. Every outcome is recorded and the checkpoint is intact; {held}"
            )

    def _settle(self, stage: Any, pending: list[Any]) -> bool:
        """Reset ``stage``, merge ``pending`` into it, let it finish; ``False`` once one failed."""
        if not self._call(stage, "reset"):
            return False
        if pending:
            self._merge(stage, pending)
            if self.problem is not None:
                return False
        if not callable(getattr(stage, "finish", None)) or self._call(stage, "finish"):
            return True
        self._merged_then_failed = True
        return False

    def _call(self, stage: Any, name: str) -> bool:
        """Call ``stage.<name>()``; if it raises, say so in :attr:`problem`, return ``False``."""
        try:
            getattr(stage, name)()
        except Exception as exc:
            self.problem = (
                f"the stage {stage_label(stage)}'s {name}() raised {type(exc).__name__}: {exc}"
            )
            return False
        return True
