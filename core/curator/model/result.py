"""What a run is (:class:`RunInfo`) and what it produced (:class:`RunResult`)."""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path  # at run time: get_type_hints(RunResult) must find it
from typing import Any

from curator.model.measures import StageSummary, summarize, summarize_columns
from curator.model.outcome import Outcome, Status
from curator.model.table import OutcomeTable

_STATUS = operator.attrgetter("status")


def _DURATION(outcome: Outcome) -> float:
    return outcome.finished - outcome.started


def throughput(items: int, seconds: float) -> float:
    """Items per second, ``0.0`` for no time at all (the run's summary and ``status`` agree)."""
    return items / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class RunInfo:
    """The run every event hook receives, so observers can tell runs apart.

    Attributes
    ----------
    run_id
        Unique per run within a process.
    backend
        The backend's canonical name.
    jobs
        Resolved worker count (``-1`` already turned into the CPU count).
    indices
        The requested indices, in the order results are returned (a ``range``
        when every index was requested).
    pipeline
        A short description of the pipeline.
    on_error
        ``"raise"`` or ``"continue"``.
    in_process
        Whether the items run in the calling process although ``backend`` names a
        parallel one (``jobs=1``): its workers never start.
    stages
        The pipeline's stage names, in order (see
        :func:`curator.observing.metrics.stage_names`): what ``Metrics.stages`` are per.
    metrics
        Whether items are measured (``metrics=False`` turns it off).
    capture
        Whether what items print is captured (``capture=False`` turns it off).
    checkpoint
        The checkpoint file the run records to, ``None`` without one (where
        ``curator logs`` can read an item's output back later).
    """

    run_id: str
    backend: str
    jobs: int
    indices: Sequence[int]
    pipeline: str
    on_error: str
    in_process: bool = False
    stages: tuple[str, ...] = ()
    metrics: bool = True
    capture: bool = True
    checkpoint: str | None = None

    @property
    def where(self) -> str:
        """``process-pool, jobs=4``, or ``process-pool, jobs=1 (in this process)``."""
        return f"{self.backend}, jobs={self.jobs}" + (
            " (in this process)" if self.in_process else ""
        )

    @property
    def total(self) -> int:
        """How many indices the run covers."""
        return len(self.indices)


@dataclass
class RunResult:
    """Everything a finished (or stopped) run produced.

    Attributes
    ----------
    run
        The run these results belong to.
    outcomes
        One :class:`~curator.model.outcome.Outcome` per requested index, in the
        requested order. Indices that never ran because the run stopped early
        are ``cancelled``. A run's outcomes are a read-only
        :class:`~curator.model.table.OutcomeTable` (kept in columns, each ``Outcome``
        built when read); any sequence of outcomes may be given. A streamed
        run (:func:`curator.stream`) handed its outcomes out as they came and
        keeps only the failed ones here.
    started, finished
        Wall-clock times of the run.
    interrupted
        Whether the run was stopped by Ctrl-C or SIGTERM.
    retried
        Earlier attempts of items that were tried again (their last attempt is
        in ``outcomes``), in the order they happened.
    checkpoint
        Where the outcomes were recorded, or ``None``.
    terminated
        Whether SIGTERM stopped the run.
    tally
        Outcomes per status, when ``outcomes`` does not hold them all (a
        streamed run); ``None`` to count ``outcomes``.
    """

    run: RunInfo
    outcomes: Sequence[Outcome]
    started: float
    finished: float
    interrupted: bool = False
    retried: list[Outcome] = field(default_factory=list)
    checkpoint: Path | None = None
    terminated: bool = False
    tally: Counter[Status] | None = field(default=None, repr=False)
    _counts: Counter[Status] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._counts = (
            Counter(self.tally)
            if self.tally is not None
            else Counter(map(_STATUS, self.outcomes))  # C-speed: once per run, over every item
        )

    @property
    def outputs(self) -> list[list[str] | None]:
        """What the sink returned per requested index, in order (``None`` where it failed)."""
        if isinstance(self.outcomes, OutcomeTable):
            return self.outcomes.values()
        return [o.value for o in self.outcomes]

    @property
    def failures(self) -> list[Outcome]:
        """The outcomes that failed, crashed or timed out, in requested order."""
        if isinstance(self.outcomes, OutcomeTable):
            return self.outcomes.failures()
        return [o for o in self.outcomes if o.status.is_failure]

    def slowest(self, count: int = 5) -> list[Outcome]:
        """The ``count`` items that ran longest, slowest first (cancelled ones left out)."""
        if isinstance(self.outcomes, OutcomeTable):
            return self.outcomes.slowest(count)
        ran = (o for o in self.outcomes if o.status is not Status.CANCELLED)
        return heapq.nlargest(count, ran, key=_DURATION)

    def stage_summary(self) -> list[StageSummary]:
        """Seconds per stage over the items this run measured: total, mean, p50, p95, max.

        Empty when the run measured nothing (``metrics=False``) or kept no
        outcomes (a streamed run).
        """
        names = self.run.stages
        if not names or not self.run.metrics:
            return []
        if isinstance(self.outcomes, OutcomeTable):
            summary = summarize_columns(names, *self.outcomes.metric_columns())
        else:
            rows = (o.metrics.row() for o in self.outcomes if o.metrics is not None)
            summary = summarize(names, rows)
        return summary if any(s.items for s in summary) else []

    @property
    def seconds(self) -> float:
        """Wall time of the run."""
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        """Whether every requested index succeeded (or was skipped as already done)."""
        return all(s in (Status.OK, Status.SKIPPED) for s, n in self._counts.items() if n)

    def count(self, status: Status) -> int:
        """How many outcomes have ``status``."""
        return self._counts[status]

    def counts(self) -> Counter[Status]:
        """Outcomes per status."""
        return Counter(self._counts)

    @property
    def ran(self) -> int:
        """Items this run ran: every outcome but the skipped and the cancelled ones."""
        counts = self._counts
        return counts.total() - counts[Status.CANCELLED] - counts[Status.SKIPPED]

    @property
    def items_per_second(self) -> float:
        """Items that ran (see :attr:`ran`) per second of wall time."""
        return throughput(self.ran, self.seconds)

    def summary(self) -> RunSummary:
        """A JSON-ready summary: counts, timing and the failures; printed, a few lines of text."""
        stages = self.stage_summary()
        data = {
            "backend": self.run.backend,
            "jobs": self.run.jobs,
            "total": self.run.total,
            "ok": self.count(Status.OK),
            "failed": len(self.failures),
            "skipped": self.count(Status.SKIPPED),
            "cancelled": self.count(Status.CANCELLED),
            "interrupted": self.interrupted,
            "counts": {status.value: n for status, n in self._counts.items()},
            "retried": len(self.retried),
            "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
            "seconds": round(self.seconds, 6),
            "items_per_second": round(self.items_per_second, 3),
            "stages": [stage.to_json() for stage in stages],
            "failures": [
                {
                    "index": o.index,
                    "status": o.status.value,
                    "error_type": o.error.type if o.error else None,
                    "message": o.error.message if o.error else None,
                    "worker": o.worker,
                }
                for o in self.failures
            ],
        }
        # Imported here: the summary reporter imports this module.
        from curator.observing.reporters.summary import format_summary

        return RunSummary(data, format_summary(self, prefix="", stages=stages))

    def __str__(self) -> str:
        """The run in a few lines: what :meth:`summary` prints as."""
        return str(self.summary())


class RunSummary(dict[str, Any]):
    """A run's summary: a JSON-ready dict whose ``str`` is the text people read.

    The dict is what ``curator run --json`` prints; the text is the ``summary``
    reporter's, without its ``curator:`` prefix: ``print(result.summary())`` shows
    ``10 items: 8 ok, 2 failed in 0.02 s (...)``, a line of time per stage and one
    per failure, while ``summary["failed"]`` and ``json.dumps`` work as on any dict,
    and ``repr`` is the dict's.
    """

    def __init__(self, data: dict[str, Any], text: str) -> None:
        super().__init__(data)
        self.text = text

    def __str__(self) -> str:
        return self.text
