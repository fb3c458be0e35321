"""What a resume needs of the items it skips: their recorded columns, batch by batch.

A resume skips every item the checkpoint records as done, reporting it
``skipped`` with what it recorded (outputs, times, worker, attempt, the
features' data). :func:`skippable` decodes only the journal batches that hold
some item's latest record, verifies and unpickles their outputs, and keeps
their columns; :meth:`Skippable.split` then gives the skipped items as
:class:`~curator.model.outcome.Successes` columns, never an object per item.
"""

from __future__ import annotations

import array
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from curator.checkpoint import journal
from curator.checkpoint.latest import DONE, Latest, batch_columns, batch_row
from curator.model.outcome import Status, Successes

_DONE = frozenset(code + 1 for code in journal.DONE_CODES)
"""Done statuses as :attr:`curator.checkpoint.latest.Latest.codes` holds them (code plus one)."""
_INDEX_BYTES = array.array("q").itemsize


class _Kept(NamedTuple):
    """The columns of a batch a resume reports skipped items from."""

    started: array.array[float]
    finished: array.array[float]
    attempts: array.array[int]
    workers: array.array[int]
    names: list[str]
    values: list[Any]
    extras: dict[int, dict[str, Any]]


class Skippable:
    """What a resume needs of the items it skips: their batches' columns, kept by batch.

    Made by :func:`skippable`. Per item it keeps only its position in the
    batch that holds its latest record; :meth:`skipped` builds the item's
    ``skipped`` outcome from that batch's columns when asked.
    """

    def __init__(self, latest: Latest) -> None:
        self.latest = latest
        self.positions = array.array("q", bytes(_INDEX_BYTES * len(latest.codes)))
        self._kept: dict[int, _Kept] = {}
        self.unloadable: list[int] = []
        """Done items whose recorded outputs do not unpickle here: a resume runs them again."""
        self.cause: journal.UnloadableRecord | None = None
        """Why the first of them did not load."""

    def split(
        self, indices: Sequence[int], rerun: set[int]
    ) -> tuple[Iterator[Successes], list[int]]:
        """``indices`` split into the ones a resume skips, in columns, and the ones it runs.

        Skipped items come as :class:`~curator.model.outcome.Successes` of status
        ``skipped``, one per run of consecutive indices recorded in the same
        stored batch by the same worker and attempt (so a run's table takes
        each with one slice per column), made as they are asked for; no
        ``Outcome`` is made. ``rerun``: done items that must run again all the same.
        """
        codes, batches, positions, kept = (
            self.latest.codes, self.latest.batches, self.positions, self._kept,
        )  # fmt: skip
        size = len(codes)
        groups: dict[tuple[int, int, int], array.array[int]] = {}
        to_run: list[int] = []
        done = _DONE
        where = (0, -1, -1)
        members = array.array("q")
        for index in indices:
            if 0 <= index < size and codes[index] in done and index not in rerun:
                batch = batches[index]
                found = kept.get(batch)
                if found is not None:
                    at = positions[index]
                    worker, attempt = found.workers[at], found.attempts[at]
                    # Neighbours mostly share their group: look it up only when it changes.
                    if batch != where[0] or worker != where[1] or attempt != where[2]:
                        where = (batch, worker, attempt)
                        members = groups.setdefault(where, array.array("q"))
                    members.append(index)
                    continue
            to_run.append(index)
        skipped = (
            self._columns(batch, worker, attempt, run)
            for (batch, worker, attempt), members in groups.items()
            for run in _consecutive(members)
        )
        return skipped, to_run

    def _columns(
        self, batch: int, worker: int, attempt: int, members: array.array[int]
    ) -> Successes:
        """The ``skipped`` outcomes of ``members``, recorded in ``batch`` by one worker."""
        found = self._kept[batch]
        at = [self.positions[index] for index in members]
        extras = found.extras
        return Successes(
            found.names[worker],
            members,
            array.array("d", map(found.started.__getitem__, at)),
            array.array("d", map(found.finished.__getitem__, at)),
            list(map(found.values.__getitem__, at)),
            attempt,
            status=Status.SKIPPED,
            extras={p: extras[a] for p, a in enumerate(at) if a in extras} if extras else None,
        )

    def take(self, batch: int, row: Any, key: bytes) -> None:
        """Keep one journal batch that holds some item's latest record, with its outputs."""
        where = self.latest.where
        columns = journal.read_batch(row, where)
        try:
            values = journal.load_outputs(row, len(columns.indices), key, where)
        except journal.UnloadableRecord as exc:
            recorded = self.latest
            mine = {i for i in columns.indices if recorded.batches[i] == batch}
            self.unloadable += sorted(i for i in mine if recorded.status(i) in DONE)
            self.cause = self.cause or exc
            return
        self._kept[batch] = _Kept(
            columns.started, columns.finished, columns.attempts, columns.workers,
            columns.names, values, columns.extras,
        )  # fmt: skip
        positions, latest = self.positions, self.latest.batches
        for position, index in enumerate(columns.indices):
            if latest[index] == batch:
                positions[index] = position


def _consecutive(indices: array.array[int]) -> Iterator[array.array[int]]:
    """``indices`` cut into runs of consecutive numbers."""
    start = 0
    for position in range(1, len(indices)):
        if indices[position] != indices[position - 1] + 1:
            yield indices[start:position]
            start = position
    if indices:
        yield indices[start:]


def skippable(db: sqlite3.Connection, latest: Latest, key: bytes) -> Skippable:
    """The records a resume skips: outputs verified with ``key`` and unpickled, batch by batch.

    Only the batches that hold some item's latest record are decoded (a
    batch a later run redid is not).
    """
    found = Skippable(latest)
    columns = batch_columns(db, outputs=True)
    for batch in latest.holding_batches():
        found.take(batch, batch_row(db, batch, columns), key)
    return found
