"""The records a batch job appends to its task's file, and reading them back as they come.

A job and the run's process share nothing but a folder, often on a network
file system, so everything a job has to say is appended to one file per
task: that its job started, the items it finished (in the columns of
:class:`curator.backends.columns.Batch`), the item it is running, a crash or
a timeout it saw, its end. Each record is one frame, written with a single
``write`` to a file opened for appending::

    magic b"CUR1" | kind (1 byte) | length (4 bytes) | CRC-32 of the payload (4 bytes) | payload

The payload is a pickle. A job killed while writing leaves a torn frame at
the end: a reader stops before it (and reads on once it is complete), and
the next job of the same task (a requeue) cuts it off before appending.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from enum import IntEnum
from typing import Any, NamedTuple

MAGIC = b"CUR1"
_HEADER = struct.Struct("<4sBII")


class Kind(IntEnum):
    """What a record says."""

    HELLO = 1
    """The job started: ``(pid, host, time)``."""
    ROWS = 2
    """``(indices, running, rows)``: the indices of the items finished (an ``array``, or
    ``None``), the item running now (``(index, since)``, or ``None``), and the finished
    items' :data:`curator.backends.columns.Rows` pickled on their own (``bytes``, or
    ``None``): a job reads its own records without loading the items' values."""
    HOOK = 3
    """``(hook, stage)``: the worker's stages are in ``setup``/``teardown`` of ``stage``."""
    CRASH = 4
    """``(index, started, exit_code, message)``: the worker died running ``index``."""
    TIMEOUT = 5
    """``(index, started, seconds, message)``: ``index`` ran past the item's time limit of
    ``seconds`` and its worker was killed; or ``message`` says why it is given up."""
    SETUP_FAILED = 6
    """``(error,)``: a stage's ``setup(worker)`` raised (an :class:`curator.ErrorInfo`)."""
    SETUP_TIMEOUT = 7
    """``(stage, seconds)``: the stages' ``setup(worker)`` overran its limit."""
    END = 8
    """``(problem, abandoned, stage)``: the job is done; ``problem`` is what its teardown
    said went wrong (or ``None``); ``abandoned`` whether the teardown overran its limit and
    was given up, in ``stage`` (``None``: not known)."""
    LEFT = 9
    """``(signal, index)``: the job was signalled to leave (preempted) and did, ``index``
    (or ``None``) unfinished: it runs again."""


class Record(NamedTuple):
    """One record read back: its kind and what it carries."""

    kind: Kind
    body: tuple[Any, ...]


def frame(kind: Kind, payload: bytes) -> bytes:
    """One record as written: the header, then ``payload``."""
    return _HEADER.pack(MAGIC, kind, len(payload), zlib.crc32(payload)) + payload


def append(fd: int, kind: Kind, body: tuple[Any, ...], payload: bytes | None = None) -> None:
    """Append one record to the file open as ``fd`` (``O_APPEND``), in one write.

    ``payload`` is ``body`` already pickled, where the caller pickled it
    itself (the finished items, whose values may need more than plain pickle).
    """
    data = frame(kind, payload if payload is not None else pickle.dumps(body, protocol=5))
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Reader:
    """Reads a task's records as a job appends them, from where it stopped last time.

    Parameters
    ----------
    path
        The task's records file (it need not exist yet).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        """Where the next unread record starts: every byte before it is whole records."""
        self.need = 0
        """How long the file must be before reading it again is worth it (a record being
        written is not read again and again while it grows)."""

    def read(self) -> list[Record]:
        """The records complete since the last call; a torn or half-written one waits."""
        try:
            with open(self.path, "rb") as file:
                if os.fstat(file.fileno()).st_size < max(self.need, self.offset + 1):
                    return []
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        records, used = parse(data)
        self.offset += used
        rest = len(data) - used
        self.need = 0
        if rest >= _HEADER.size:
            magic, _, length, _ = _HEADER.unpack_from(data, used)
            if magic == MAGIC:
                self.need = self.offset + _HEADER.size + length
        return records


def parse(data: bytes) -> tuple[list[Record], int]:
    """The whole records at the start of ``data``, and how many bytes they take.

    Parsing stops at the first frame that is incomplete or damaged (a torn
    write): what follows it is never read as records. A whole frame whose
    payload cannot be loaded here is passed over (its items count as not run).
    """
    records: list[Record] = []
    at = 0
    size = _HEADER.size
    while len(data) - at >= size:
        magic, kind, length, crc = _HEADER.unpack_from(data, at)
        end = at + size + length
        if magic != MAGIC or end > len(data):
            break
        payload = data[at + size : end]
        if zlib.crc32(payload) != crc:
            break
        at = end
        try:
            records.append(Record(Kind(kind), pickle.loads(payload)))
        except Exception:  # whole but unloadable here: its items run again, the rest is read
            continue
    return records, at
