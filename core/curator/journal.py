"""How batches of outcomes are written into the checkpoint, and read back safely.

Reading a checkpoint must never run code, whoever wrote the file. So a batch
is stored as columns that decode without :mod:`pickle`: numbers as raw
arrays, statuses as bytes, workers and errors as JSON. Only the sinks'
outputs, which may be any picklable value, are pickled, in a column of their
own, with an HMAC-SHA256 signature made with a per-user secret key
(:func:`curator.keyfile.user_key`, a file only its owner can read). ``curator status`` and
``--dry-run`` never touch that column; ``--resume`` unpickles it only when
the signature proves that this user's curator wrote it. A checkpoint written
by anyone else (another user, a crafted file) can be inspected, but its
outputs are refused.
"""

from __future__ import annotations

import array
import hmac
import json
import operator
import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator import pickling
from curator.capture import Captured
from curator.errors import UsageError
from curator.keyfile import key_path
from curator.metrics import Metrics, empty_row
from curator.outcome import ErrorInfo, Outcome, Status

COLUMNS = (
    "indices", "codes", "started", "finished", "attempts", "workers", "info", "outputs", "mac",
    "metrics",
)  # fmt: skip
"""The journal table's data columns, in the order :func:`encode` returns them.

``metrics`` holds the items' metrics rows (see :mod:`curator.metrics`) as raw
doubles, one row after another, ``NaN`` for an item without metrics; it is
``NULL`` for a batch without any (and in checkpoints older than the column).
``info`` is JSON: the batch's worker names, and by position the items'
errors and captured output (see :mod:`curator.capture`).
"""

Record = tuple[
    int, str, Any, "ErrorInfo | None", str, float, float, int, "Metrics | None", "Captured | None"
]
"""(index, status value, outputs, error, worker, started, finished, attempt, metrics, output)."""

_OUTPUTS, _MAC = COLUMNS.index("outputs"), COLUMNS.index("mac")
_STATUSES = list(Status)
_MAX_ATTEMPT = 0xFFFFFFFF
"""The largest attempt number a run keeps (its ledger's column is unsigned 32-bit)."""
_CODES = {status: code for code, status in enumerate(_STATUSES)}
_OK_CODE = _CODES[Status.OK]
_index = operator.attrgetter("index")
_status = operator.attrgetter("status")
_value = operator.attrgetter("value")
_worker = operator.attrgetter("worker")
_started = operator.attrgetter("started")
_finished = operator.attrgetter("finished")
_attempt = operator.attrgetter("attempt")
_metrics = operator.attrgetter("metrics")
_output = operator.attrgetter("output")


def encode(batch: Sequence[Outcome], key: bytes) -> tuple[Any, ...]:
    """A batch of outcomes as the journal's column values (see :data:`COLUMNS`).

    Column by column every loop runs in C, which keeps the writer thread cheap.
    """
    codes = bytes(map(_CODES.__getitem__, map(_status, batch)))
    errors: dict[str, dict[str, Any]] = {}
    if codes.count(_OK_CODE) != len(codes):
        for position, outcome in enumerate(batch):
            error = outcome.error
            if error is not None:
                errors[str(position)] = error.to_json()
    printed = {
        str(position): output.to_json()
        for position, output in enumerate(map(_output, batch))
        if output is not None
    }
    # Few distinct workers, many items: names once, then one number per item.
    workers = list(map(_worker, batch))
    names = list(dict.fromkeys(workers))
    number = {name: n for n, name in enumerate(names)}.__getitem__
    info = json.dumps({"names": names, "errors": errors, "output": printed})
    worker_numbers = array.array("q", map(number, workers)).tobytes()
    outputs, mac = dump_signed(list(map(_value, batch)), key)
    measured = list(map(_metrics, batch))
    return (
        array.array("q", map(_index, batch)).tobytes(),
        codes,
        array.array("d", map(_started, batch)).tobytes(),
        array.array("d", map(_finished, batch)).tobytes(),
        array.array("q", map(_attempt, batch)).tobytes(),
        worker_numbers,
        info,
        outputs,
        mac,
        _metric_rows(measured),
    )


def _metric_rows(measured: list[Metrics | None]) -> bytes | None:
    """The metrics of a batch as the ``metrics`` column holds them."""
    rows = [None if m is None else m.row() for m in measured]
    width = next((len(row) for row in rows if row is not None), 0)
    if not width:
        return None
    blank = empty_row(width)
    flat = array.array("d")
    for row in rows:
        flat.extend(blank if row is None else row)
    return flat.tobytes()


@dataclass(frozen=True)
class Batch:
    """One stored batch decoded into columns, without unpickling anything.

    ``codes`` are status codes (positions in :class:`~curator.outcome.Status`),
    ``workers`` numbers into ``names``; ``errors`` and ``printed`` are the
    JSON of the items' errors and captured output by position; ``metrics``
    holds ``width`` floats per item (``width`` 0: none).
    """

    indices: array.array[int]
    codes: bytes
    started: array.array[float]
    finished: array.array[float]
    attempts: array.array[int]
    workers: array.array[int]
    names: list[str]
    errors: dict[str, Any]
    printed: dict[str, Any]
    metrics: array.array[float]
    width: int


def read_batch(row: Sequence[Any], where: Path) -> Batch:
    """The columns of one stored batch (outputs left out: nothing is unpickled).

    ``row`` holds the :data:`COLUMNS` values, in order.

    Raises
    ------
    UsageError
        When the batch is damaged.
    """
    (index_bytes, codes, started_bytes, finished_bytes, attempt_bytes, worker_bytes, info,
     _outputs, _mac, metric_bytes) = row  # fmt: skip
    indices, started, finished, attempts, numbers = (
        array.array("q"), array.array("d"), array.array("d"), array.array("q"), array.array("q"),
    )  # fmt: skip
    try:
        indices.frombytes(index_bytes)
        started.frombytes(started_bytes)
        finished.frombytes(finished_bytes)
        attempts.frombytes(attempt_bytes)
        numbers.frombytes(worker_bytes)
        details = json.loads(info)
        names, errors = details["names"], details["errors"]
        printed = details.get("output", {})
        if not (isinstance(names, list) and isinstance(errors, dict)):
            raise TypeError("an info column of the wrong shape")
        if not isinstance(printed, dict):
            raise TypeError("an output column of the wrong shape")
        codes = bytes(codes)
        count = len(indices)
        if {len(started), len(finished), len(attempts), len(numbers), len(codes)} != {count}:
            raise ValueError("columns of different lengths")
        if max(codes, default=0) >= len(_STATUSES):
            raise ValueError("an unknown status code")
        if numbers and not (min(numbers) >= 0 and max(numbers) < len(names)):
            raise ValueError("a worker number out of range")
        if attempts and not (min(attempts) >= 1 and max(attempts) <= _MAX_ATTEMPT):
            raise ValueError("an attempt number out of range")
        measured = array.array("d")
        if metric_bytes:
            measured.frombytes(metric_bytes)
            if len(measured) % count:
                raise ValueError("a metrics column that does not split into rows")
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise UsageError(f"{where} is damaged: a journal batch cannot be read ({exc})") from None
    width = len(measured) // count if count else 0
    return Batch(
        indices, codes, started, finished, attempts, numbers, names, errors, printed, measured,
        width,
    )  # fmt: skip


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
    try:
        errors = {int(p): ErrorInfo.from_json(e) for p, e in batch.errors.items()}
        printed = {int(p): Captured.from_json(o) for p, o in batch.printed.items()}
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise UsageError(f"{where} is damaged: a journal batch cannot be read ({exc})") from None
    values: list[Any] = [None] * len(batch.indices)
    if key is not None:
        values = load_signed(row[_OUTPUTS], row[_MAC], key, where, "outputs")
    names, numbers, width, measured = batch.names, batch.workers, batch.width, batch.metrics
    started, finished, attempts, codes = batch.started, batch.finished, batch.attempts, batch.codes
    for position, index in enumerate(batch.indices):
        yield (
            index,
            _STATUSES[codes[position]].value,
            values[position],
            errors.get(position),
            names[numbers[position]],
            started[position],
            finished[position],
            attempts[position],
            Metrics.from_row(measured[position * width : (position + 1) * width])
            if width
            else None,
            printed.get(position),
        )


DONE_CODES = frozenset({_CODES[Status.OK], _CODES[Status.SKIPPED]})
"""The status codes of items a resume skips."""


def latest_codes(rows: Iterable[tuple[bytes, bytes]], where: Path) -> dict[int, int]:
    """The latest status code per index, from ``(indices, codes)`` columns in journal order.

    Only two columns, decoded in C: what counting done items over a large
    checkpoint needs, at a fraction of the cost of :func:`decode`.
    """
    latest: dict[int, int] = {}
    try:
        for index_bytes, codes in rows:
            indices = array.array("q")
            indices.frombytes(index_bytes)
            latest.update(zip(indices, codes, strict=True))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where} is damaged: a journal batch cannot be read ({exc})") from None
    return latest


def dump_signed(value: Any, key: bytes) -> tuple[bytes, bytes]:
    """``value`` pickled (:func:`curator.pickling.dumps`), with its signature.

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
    """
    if not hmac.compare_digest(_sign(key, data), mac or b""):
        raise UsageError(
            f"the {what} recorded in {where} were not written by your curator (their "
            f"signature does not match your key {key_path()}), so they are not loaded: "
            "unpickling them could run code. Resume from a checkpoint you wrote, or start "
            "over with a new --checkpoint"
        )
    return pickle.loads(data)


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, "sha256").digest()
