"""The stages' partial states a resume takes back from its checkpoint, batch by batch.

A run with accumulating stages (see :mod:`curator.model.state`) stores, with each
journal batch, the partials of that batch's ``ok`` items, in the same
transaction. A resume adds back the partials of the batches whose ``ok``
items are all still their index's latest record; the items of any other
batch run again, so that every item counts exactly once in the merged state.
"""

from __future__ import annotations

import array
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curator.checkpoint import journal
from curator.checkpoint.file import reading
from curator.checkpoint.latest import Latest, batch_row


def stored_partials(
    db: sqlite3.Connection, path: Path, key: bytes, latest: Latest
) -> tuple[list[tuple[list[bytes], list[int]]], set[int]]:
    """The partials of the ``ok`` items a resume skips, read from the checkpoint ``db``.

    ``latest`` is every item's latest record; ``key`` verifies the partials'
    signatures (``path`` names the checkpoint in errors).

    Returns
    -------
    tuple
        For every batch (signature checked) whose ``ok`` items are all still
        their index's latest outcome: its pickled
        :class:`~curator.model.state.StateMark` partials and those items. Then the
        ``ok`` indices whose contribution is not stored whole (their batch has
        no partials, or a later run redid some of its items): a resume runs
        those again, so each item counts exactly once.

    Raises
    ------
    UsageError
        When a batch's partials were not written by this user's curator.
    sqlite3.Error
        When the file cannot be read (the caller names it).
    """
    partials: list[tuple[list[bytes], list[int]]] = []
    rerun: set[int] = set()
    for stored, current in _batches(db, latest):
        if stored is None:
            rerun.update(current)
            continue
        # A list of pickled marks: plain bytes, so it always loads.
        marks = journal.load_signed(*stored, key, path, "stage states")
        partials.append((marks, current))
    return partials, rerun


def _batches(
    db: sqlite3.Connection, latest: Latest
) -> Iterator[tuple[tuple[Any, Any] | None, list[int]]]:
    """Each journal batch's partials a resume takes back, with its current ``ok`` items.

    The partials as stored (data, mac), or ``None`` when the resume runs those
    items again instead.
    """
    stored = {
        journal_id: (data, mac)
        for journal_id, data, mac in db.execute("SELECT journal, partials, mac FROM states")
    }
    for row_id, index_bytes, codes in db.execute(
        "SELECT id, indices, codes FROM journal ORDER BY id"
    ):
        codes_of = dict(zip(array.array("q", index_bytes), codes, strict=True))
        ok = [index for index, code in codes_of.items() if code in journal.DONE_CODES]
        current = [index for index in ok if latest.batches[index] == row_id]
        taken = ok and row_id in stored and len(current) == len(ok)
        yield (stored[row_id] if taken else None), current


def check_signatures(path: Path, latest: Latest, states: bool) -> None:
    """Refuse, as a resume would, what it loads that this user's key did not sign.

    What ``--resume --dry-run`` checks: the outputs of every batch that holds
    some item's latest record, and (``states``: the pipeline has accumulating
    stages) the partials a resume adds back. Their signatures only: nothing is
    unpickled, and no key is made where there is none.

    Raises
    ------
    UsageError
        When a signature does not match the key (or there is no key).
    """
    from curator.checkpoint.keyfile import existing_key

    key = existing_key()
    with reading(path) as db:
        for batch in latest.holding_batches():
            row = batch_row(db, batch, "outputs, mac")
            if row is not None:
                journal.check_signed(row[0], row[1], key, path, "outputs")
        if states:
            for stored, _ in _batches(db, latest):
                if stored is not None:
                    journal.check_signed(*stored, key, path, "stage states")
