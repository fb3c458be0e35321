"""How batches of outcomes are written into the checkpoint, and read back safely.

Reading a checkpoint must never run code, whoever wrote the file. So a batch
is stored as columns that decode without :mod:`pickle`: numbers as raw
arrays, statuses as bytes, workers and errors as JSON. Only the sinks'
outputs, which may be any picklable value, are pickled, in a column of their
own, with an HMAC-SHA256 signature made with a per-user secret key
(:func:`curator.checkpoint.keyfile.user_key`, a file only its owner can read).
``curator status`` and ``--dry-run`` never touch that column; ``--resume`` unpickles it only when
the signature proves that this user's curator wrote it. A checkpoint written
by anyone else (another user, a crafted file) can be inspected, but its
outputs are refused.
"""

from __future__ import annotations

import array
import hmac
import itertools
import json
import math
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.checkpoint.file import damaged
from curator.checkpoint.keyfile import key_path
from curator.model import pickling
from curator.model.captured import Captured
from curator.model.columns import CODES, STATUSES, OutcomeColumns
from curator.model.errors import UsageError
from curator.model.measures import FIELDS, Metrics, ascending_positions, rows_read
from curator.model.outcome import ErrorInfo, Outcome, Status, Successes

COLUMNS = (
    "indices", "codes", "started", "finished", "attempts", "workers", "info", "outputs", "mac",
    "metrics", "measured", "sampled",
)  # fmt: skip
"""The journal table's data columns, in the order :func:`encode` returns them.

``metrics`` holds the items' metrics rows (see :mod:`curator.observing.metrics`) as raw
doubles, one row per item (``NaN`` for an item without metrics, in checkpoints older
than ``measured``); it is ``NULL`` for a batch without any. Quick items are sampled,
so most items of a run of small ones have no row: such a batch leaves ``metrics``
``NULL`` and stores the rows it has in ``sampled``, their positions in ``measured``
(raw 64-bit integers, ascending). A curator older than those columns then reads the
batch as one without metrics, never the rows of one item as another's.
``info`` is JSON: the batch's worker names, and by position the items'
errors, captured output (see :mod:`curator.observing.capture`) and the data of
per-item features (``extras``, see :mod:`curator.observing.features`; absent in
checkpoints older than it).
"""

Record = tuple[
    int, str, Any, "ErrorInfo | None", str, float, float, int, "Metrics | None", "Captured | None",
    "dict[str, Any] | None",
]  # fmt: skip
"""(index, status value, outputs, error, worker, started, finished, attempt, metrics, output,
extras)."""

_OUTPUTS, _MAC = COLUMNS.index("outputs"), COLUMNS.index("mac")
_MAX_ATTEMPT = 0xFFFFFFFF
"""The largest attempt number a run keeps (its ledger's column is unsigned 32-bit)."""


def encode(batch: Sequence[Outcome | Successes], key: bytes) -> tuple[Any, ...]:
    """A batch of outcomes as the journal's column values (see :data:`COLUMNS`).

    A :class:`~curator.model.outcome.Successes` (a worker's ``ok`` items in columns)
    goes in as its columns, without an ``Outcome`` per item; a run of single
    outcomes goes in column by column (:class:`~curator.model.columns.OutcomeColumns`).
    Either way every loop runs in C, which keeps the writer thread cheap.
    """
    columns = OutcomeColumns.of(batch)
    details: dict[str, Any] = {
        "names": columns.names,
        "errors": {str(row): error.to_json() for row, error in columns.errors.items()},
        "output": {str(row): output.to_json() for row, output in columns.printed.items()},
    }
    if columns.extras:
        details["extras"] = {str(row): extras for row, extras in columns.extras.items()}
    assert columns.values is not None
    outputs = pickling.dumps_outputs(columns.values)
    mac = _sign(key, outputs)
    return (
        columns.indices.tobytes(),
        bytes(columns.codes),
        columns.started.tobytes(),
        columns.finished.tobytes(),
        columns.attempts.tobytes(),
        columns.workers.tobytes(),
        json.dumps(details),
        outputs,
        mac,
        *_metric_columns(columns),
    )


def _metric_columns(columns: OutcomeColumns) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``metrics``, ``measured`` and ``sampled``: a row per item, or the rows with positions."""
    if not columns.measured:
        return None, None, None
    if len(columns.measured) == len(columns):
        return columns.metrics.tobytes(), None, None
    return None, columns.measured.tobytes(), columns.metrics.tobytes()


def encode_storable(batch: Sequence[Outcome | Successes], key: bytes) -> tuple[Any, bool]:
    """:func:`encode`, with an item whose value cannot be pickled here recorded failed.

    Every value was checked with the checkpoint's pickler where it was made; one
    that still fails here fails its own item, never the others' records. The
    flag says whether some item was recorded failed so.
    """
    try:
        return encode(batch, key), False
    except Exception:
        singles = [o for entry in batch for o in _one_by_one(entry)]
        stored = [_storable(outcome) for outcome in singles]
        changed = any(new is not old for new, old in zip(stored, singles, strict=True))
        return encode(stored, key), changed


def _one_by_one(entry: Outcome | Successes) -> Sequence[Outcome]:
    """``entry``'s outcomes, one object each."""
    if isinstance(entry, Successes):
        return list(entry)
    return (entry,)


def _storable(outcome: Outcome) -> Outcome:
    """``outcome``, or, if its value cannot be pickled here, its item failed for that reason."""
    if outcome.status is not Status.OK:
        return outcome
    problem = pickling.problem(outcome.value)
    if problem is None:
        return outcome
    return outcome.replace(
        status=Status.FAILED,
        value=None,
        error=ErrorInfo.unpicklable_result(outcome.value, problem),
    )


@dataclass(frozen=True)
class Batch:
    """One stored batch decoded into columns, without unpickling anything.

    ``codes`` are status codes (positions in :class:`~curator.model.outcome.Status`),
    ``workers`` numbers into ``names``; ``errors``, ``printed`` and
    ``extras`` are the items' errors, captured output and features' data by
    position; ``metrics`` holds ``width`` floats (``width`` 0: none) for each
    position in ``measured`` (ascending), the items with a reading.
    Everything was checked: a damaged batch is never returned.
    """

    indices: array.array[int]
    codes: bytes
    started: array.array[float]
    finished: array.array[float]
    attempts: array.array[int]
    workers: array.array[int]
    names: list[str]
    errors: dict[int, ErrorInfo]
    printed: dict[int, Captured]
    metrics: array.array[float]
    width: int
    extras: dict[int, dict[str, Any]]
    measured: array.array[int]
    rows: dict[int, int]
    """Row number in ``metrics`` by position."""


_DAMAGE = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)
"""What decoding a damaged column raises."""


def read_batch(row: Sequence[Any], where: Path) -> Batch:
    """The columns of one stored batch (outputs left out: nothing is unpickled).

    ``row`` holds the :data:`COLUMNS` values, in order.

    Raises
    ------
    DamagedCheckpoint
        When the batch is damaged.
    """
    (index_bytes, codes, started_bytes, finished_bytes, attempt_bytes, worker_bytes, info,
     _outputs, _mac, metric_bytes, measured_bytes, sampled_bytes) = row  # fmt: skip
    try:
        indices = _numbers("q", index_bytes)
        started, finished = _numbers("d", started_bytes), _numbers("d", finished_bytes)
        attempts, numbers = _numbers("q", attempt_bytes), _numbers("q", worker_bytes)
        if not isinstance(codes, bytes):
            raise TypeError(f"a codes column of type {type(codes).__name__}")
        count = len(indices)
        if {len(started), len(finished), len(attempts), len(numbers), len(codes)} != {count}:
            raise ValueError("columns of different lengths")
        if max(codes, default=0) >= len(STATUSES):
            raise ValueError("an unknown status code")
        if min(indices, default=0) < 0:
            raise ValueError("a negative index")
        if not (math.isfinite(sum(started)) and math.isfinite(sum(finished))):
            raise ValueError("a time that is not a number")
        if attempts and not (min(attempts) >= 1 and max(attempts) <= _MAX_ATTEMPT):
            raise ValueError("an attempt number out of range")
        names, errors, printed, extras = _details(info, count)
        if numbers and not (min(numbers) >= 0 and max(numbers) < len(names)):
            raise ValueError("a worker number out of range")
        metrics, measured, width = _metrics(metric_bytes, measured_bytes, sampled_bytes, count)
    except _DAMAGE as exc:
        raise damaged(where, f"a journal batch cannot be read ({exc})") from None
    return Batch(
        indices, codes, started, finished, attempts, numbers, names, errors, printed, metrics,
        width, extras, measured, dict(zip(measured, range(len(measured)), strict=True)),
    )  # fmt: skip


def _metrics(
    metric_bytes: Any, measured_bytes: Any, sampled_bytes: Any, count: int
) -> tuple[array.array[float], array.array[int], int]:
    """The metrics rows that hold a reading, their positions, and the floats per row."""
    if measured_bytes is None and metric_bytes is None:
        return array.array("d"), array.array("q"), 0
    if measured_bytes is None:  # a row per item
        rows = _numbers("d", metric_bytes)
        if not count or len(rows) % count or len(rows) // count < len(FIELDS):
            raise ValueError("a metrics column that does not split into rows")
        width = len(rows) // count
        measured = array.array("q", rows_read(rows, width))
        if len(measured) != count:  # NaN rows, written before the measured column: left out
            rows = array.array(
                "d",
                itertools.chain.from_iterable(rows[p * width : (p + 1) * width] for p in measured),
            )
        return rows, measured, width
    rows = _numbers("d", sampled_bytes)
    measured = _numbers("q", measured_bytes)
    if not measured or len(rows) % len(measured) or len(rows) // len(measured) < len(FIELDS):
        raise ValueError("a metrics column that does not split into its measured rows")
    if not ascending_positions(measured, count):
        raise ValueError("measured positions that are not ascending positions of the batch")
    return rows, measured, len(rows) // len(measured)


def _numbers(kind: str, data: Any) -> array.array[Any]:
    """A column of raw numbers (``q`` or ``d``) as an array; it must be a blob."""
    if not isinstance(data, bytes):
        raise TypeError(f"a column of type {type(data).__name__} where numbers belong")
    numbers = array.array(kind)
    numbers.frombytes(data)
    return numbers


def _details(
    info: Any, count: int
) -> tuple[list[str], dict[int, ErrorInfo], dict[int, Captured], dict[int, dict[str, Any]]]:
    """The info column: worker names, and the items' errors, output and extras by position."""
    details = json.loads(info)
    if not isinstance(details, dict):
        raise TypeError("an info column that is not an object")
    names, errors, printed = details["names"], details["errors"], details.get("output", {})
    extras = details.get("extras", {})
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise TypeError("worker names that are not text")
    if not (isinstance(errors, dict) and isinstance(printed, dict) and isinstance(extras, dict)):
        raise TypeError("errors, output or extras of the wrong shape")
    return (
        names,
        _by_position(errors, count, stored_error),
        _by_position(printed, count, Captured.from_json),
        _by_position(extras, count, _stored_extras),
    )


def _stored_extras(data: Any) -> dict[str, Any]:
    """One item's features' data as the journal stores it, its shape checked."""
    if not (isinstance(data, dict) and all(isinstance(name, str) for name in data)):
        raise TypeError("an item's extras that are not an object")
    return data


def _by_position(entries: dict[str, Any], count: int, parse: Any) -> dict[int, Any]:
    parsed = {}
    for key, entry in entries.items():
        position = int(key)
        if not 0 <= position < count:
            raise IndexError(f"an entry for position {position} of {count}")
        parsed[position] = parse(entry)
    return parsed


def stored_error(data: Any) -> ErrorInfo:
    """An error as the journal stores it (or the list of older checkpoints), its types checked."""
    error = ErrorInfo.from_json(data)
    texts = (error.type, error.message, error.traceback)
    if not all(isinstance(text, str) for text in texts):
        raise TypeError("an error whose fields are not text")
    if error.exit_code is not None and type(error.exit_code) is not int:
        raise TypeError("an exit code that is not a number")
    return error


def decode(row: Sequence[Any], key: bytes | None, where: Path) -> Iterator[Record]:
    """The records of one stored batch.

    Parameters
    ----------
    row
        The column values, in the order of :data:`COLUMNS`.
    key
        The user's key, to verify and unpickle the outputs; ``None`` leaves
        them out (``None`` per record) and never unpickles anything.
    where
        The checkpoint, for error messages.

    Raises
    ------
    UsageError
        When the batch is damaged, or the outputs are asked for but their
        signature does not match.
    """
    batch = read_batch(row, where)
    values: list[Any] = [None] * len(batch.indices)
    if key is not None:
        values = load_outputs(row, len(batch.indices), key, where)
    for position in range(len(batch.indices)):
        yield record(batch, position, values[position], where)


def record(batch: Batch, position: int, value: Any, where: Path) -> Record:
    """The record at ``position`` of a decoded batch, with ``value`` as its outputs."""
    width, number = batch.width, batch.rows.get(position)
    metrics = None
    if number is not None:
        try:
            metrics = Metrics.from_row(batch.metrics[number * width : (number + 1) * width])
        except _DAMAGE as exc:
            raise damaged(where, f"an item's metrics cannot be read ({exc})") from None
    return (
        batch.indices[position],
        STATUSES[batch.codes[position]].value,
        value,
        batch.errors.get(position),
        batch.names[batch.workers[position]],
        batch.started[position],
        batch.finished[position],
        batch.attempts[position],
        metrics,
        batch.printed.get(position),
        batch.extras.get(position),
    )


def load_outputs(row: Sequence[Any], count: int, key: bytes, where: Path) -> list[Any]:
    """The ``count`` outputs of one stored batch (``row`` as in :func:`decode`), verified.

    Raises
    ------
    UsageError
        When their signature does not match ``key``, or they do not match the batch's items.
    """
    values = load_signed(row[_OUTPUTS], row[_MAC], key, where, "outputs")
    if not isinstance(values, list) or len(values) != count:
        raise damaged(where, "a journal batch's outputs do not match its items")
    return values


DONE_CODES = frozenset({CODES[Status.OK], CODES[Status.SKIPPED]})
"""The status codes of items a resume skips."""
FAILURE_CODES = frozenset(code for code, status in enumerate(STATUSES) if status.is_failure)
"""The status codes of failed items (failed, crashed, timed out)."""


def dump_signed(value: Any, key: bytes) -> tuple[bytes, bytes]:
    """``value`` pickled (:func:`curator.model.pickling.dumps`), with its signature.

    How pickled data goes into the checkpoint.
    """
    data = pickling.dumps(value)
    return data, _sign(key, data)


def load_signed(data: bytes, mac: bytes | None, key: bytes, where: Path, what: str) -> Any:
    """Unpickle ``data`` only if ``mac`` proves this user's curator wrote it.

    Raises
    ------
    UsageError
        When the signature does not match (``what`` names the data in the message).
    UnloadableRecord
        When the data is this user's but does not unpickle here.
    """
    check_signed(data, mac, key, where, what)
    try:
        return pickle.loads(data)
    except Exception as exc:  # whatever a value's own unpickling raises
        raise UnloadableRecord(what, exc) from exc


def check_signed(data: Any, mac: Any, key: bytes | None, where: Path, what: str) -> None:
    """Refuse ``data`` unless ``mac`` proves this user's curator wrote it (``key=None``: no key).

    Raises
    ------
    UsageError
        As :func:`load_signed` does.
    """
    if not (  # a damaged column may hold anything
        key is not None
        and isinstance(data, bytes)
        and isinstance(mac, bytes)
        and hmac.compare_digest(_sign(key, data), mac)
    ):
        raise UsageError(
            f"the {what} recorded in {where} were not written by your curator (their "
            f"signature does not match your key {key_path()}), so they are not loaded: "
            "unpickling them could run code. Resume from a checkpoint you wrote, or start "
            "over with a new --checkpoint"
        )


class UnloadableRecord(Exception):
    """Signed data that this user's curator wrote but that does not unpickle here.

    A value whose class was renamed or removed since the run, or whose own
    ``__reduce__`` pickles but refuses to load. It is not damage: the items
    it belongs to are run again (the resume says so), and nothing else is lost.
    """

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {type(cause).__name__}: {cause}")
        self.what = what
        self.cause = cause


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, "sha256").digest()
