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
from pathlib import Path

from curator.checkpoint import journal
from curator.checkpoint.latest import Latest


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
        if ok and row_id in stored and len(current) == len(ok):
            data, mac = stored[row_id]
            # A list of pickled marks: plain bytes, so it always loads.
            marks = journal.load_signed(data, mac, key, path, "stage states")
            partials.append((marks, current))
        else:
            rerun.update(current)
    return partials, rerun
