"""A checkpoint's whole record, read for tools: the public API of reading checkpoints.

:func:`read_checkpoint` reads every outcome a checkpoint holds into columns
(:class:`~curator.model.columns.OutcomeColumns`), with what the checkpoint says
about its pipeline and its runs. Nothing is unpickled (the sinks' outputs
are left out), no object is made per item, and a checkpoint a run is still
writing can be read (SQLite's WAL lets one process read while another
writes). The ``curator-report`` plugin builds its report on it; any tool
may.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from curator.checkpoint import journal
from curator.checkpoint.catalog import RunRecord, read_runs, reading_checkpoint, run_state
from curator.checkpoint.latest import beyond
from curator.checkpoint.meta import meta_total
from curator.model.columns import STATUSES, OutcomeColumns
from curator.model.measures import FIELDS, StageSummary, summarize_columns
from curator.model.outcome import Status

__all__ = ["RecordedRun", "RunRecord", "read_checkpoint"]


@dataclass(frozen=True)
class RecordedRun:
    """Everything a checkpoint records, outputs aside.

    Attributes
    ----------
    path
        The checkpoint.
    pipeline
        The pipeline as it was recorded (its ``repr``).
    total
        How many items the pipeline has.
    stages
        The pipeline's stage names, in order (empty in checkpoints older than them).
    state
        What its last run is doing: ``never run``, ``running``, ``died``
        (its process is gone), ``interrupted``, ``stopped`` (it ended early,
        not by a hard stop) or ``finished``.
    runs
        The runs it records, oldest first.
    columns
        Every recorded outcome, in the order they were recorded (an item
        retried or resumed has several rows; :meth:`latest_rows` picks each
        item's last). Its ``values`` are not read.
    """

    path: Path
    pipeline: str
    total: int
    stages: tuple[str, ...]
    state: str
    runs: list[RunRecord]
    columns: OutcomeColumns

    def latest_rows(self) -> list[int]:
        """The row of each recorded item's latest outcome, by index."""
        indices = self.columns.indices
        latest = dict(zip(indices, range(len(indices)), strict=True))
        return [latest[index] for index in sorted(latest)]

    def status(self, row: int) -> Status:
        """The status of the outcome at ``row``."""
        return STATUSES[self.columns.codes[row]]

    def metric(self, row: int, name: str) -> float | None:
        """Reading ``name`` (one of :data:`curator.model.measures.FIELDS`) of ``row``, or None."""
        columns = self.columns
        values = columns.metric_row(row)
        if values is None:
            return None
        value = values[columns.width - len(FIELDS) + FIELDS.index(name)]
        return None if math.isnan(value) else value

    def stage_summaries(self, rows: Sequence[int]) -> list[StageSummary]:
        """Seconds per stage over ``rows`` (empty when nothing was measured)."""
        columns = self.columns
        width = columns.width
        if not width or len(self.stages) != width - len(FIELDS):
            return []
        return summarize_columns(self.stages, columns.metrics, width, columns.metric_numbers(rows))


def read_checkpoint(path: str | Path) -> RecordedRun:
    """Read the checkpoint at ``path``, every outcome in columns, without unpickling anything.

    Raises
    ------
    UsageError
        When there is no checkpoint there, it is not one, or it is damaged
        (the message says which and where).
    """
    path = Path(path)
    columns = OutcomeColumns(values=False)
    with reading_checkpoint(path) as (db, meta):
        total = meta_total(meta, path)
        # A checkpoint of an earlier version may lack columns added since: they read as NULL.
        present = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
        wanted = ", ".join(
            c if c in present and c != "outputs" else f"NULL AS {c}" for c in journal.COLUMNS
        )
        for row in db.execute(f"SELECT {wanted} FROM journal ORDER BY id"):
            columns.add_batch(journal.read_batch(row, path))
        runs = read_runs(db, path)
    if max(columns.indices, default=-1) >= total:
        raise beyond(path, max(columns.indices), total)
    return RecordedRun(
        path=path,
        pipeline=str(meta.get("pipeline", "?")),
        total=total,
        stages=_stage_names(meta.get("stages")),
        state=run_state(path, runs),
        runs=runs,
        columns=columns,
    )


def _stage_names(recorded: str | None) -> tuple[str, ...]:
    """The stage names the meta table records (none if they are not a list of names)."""
    try:
        names = json.loads(recorded or "[]")
    except ValueError:
        return ()
    if isinstance(names, list) and all(isinstance(name, str) for name in names):
        return tuple(names)
    return ()
