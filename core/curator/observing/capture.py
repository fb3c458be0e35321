"""What an item prints, captured per item: stdout, stderr and logging output.

While a worker runs an item, text written to :data:`sys.stdout` or
:data:`sys.stderr` from that worker's thread goes into the item's buffer
instead of the terminal, so a worker's ``print`` neither scribbles over the
live progress view nor gets lost: it travels on the item's
:class:`~curator.model.outcome.Outcome` (``output``), into the checkpoint, and to
the reporters (``curator logs INDEX`` prints it later).

How: :func:`acquire` puts one :class:`_Switch` in front of each stream. A
switch writes to the buffer of the calling thread's running item, if there is
one, and to the stream it replaced otherwise, so other threads (the main
thread drawing progress, a thread-pool worker between items) are unaffected.
Logging records go to a catcher on the root logger, which writes those of an
item's thread into its buffer (``LEVEL logger: message``); the process's own
handlers are silenced for such records (a filter), so an item's record is
neither printed over the progress view nor captured twice. Records are
filtered by the loggers' levels as usual (Python's default: warnings and
above). A switch is as strict as a text stream: ``bytes`` raise the
``TypeError`` in the item that wrote them. Not captured: output written to the
file descriptors directly (a C library's ``printf``, ``sys.stdout.buffer``),
and records of handlers added while the run goes on are captured and also
printed by those handlers.

Only the last :data:`LIMIT` characters of an item are kept; how many were
dropped is recorded.

A worker that runs many items one after another in one thread keeps its buffer
open for all of them (:meth:`curator.Work.in_a_row`): there is no "between
items" then, and the work takes each item's text from the buffer as it ends.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from curator.model.captured import LIMIT, Captured
from curator.observing.after_import import when_imported

if TYPE_CHECKING:
    from curator.observing.capture_logging import Records

__all__ = ["LIMIT", "Buffer", "Captured", "acquire", "begin", "end", "release"]


class Buffer:
    """A thread's item output, trimmed to the last :data:`LIMIT` characters as it grows.

    Each thread keeps one, reused item after item (making one per item cost a
    no-op item a tenth of a microsecond); ``open`` while an item runs.
    """

    __slots__ = ("dropped", "open", "outer", "parts", "size")

    def __init__(self, outer: Buffer | None = None) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.open = False
        self.outer = outer
        """The buffer of the item this one runs inside (a pipeline run from a stage), if any."""

    def write(self, text: str) -> None:
        """Add ``text`` (what the item wrote), trimming now and then."""
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * LIMIT:  # trim now and then, not on every write
            self._trim()

    def _trim(self) -> None:
        joined = "".join(self.parts)
        extra = len(joined) - LIMIT
        if extra > 0:
            joined = joined[extra:]
            self.dropped += extra
        self.parts = [joined]
        self.size = len(joined)

    def take(self) -> Captured:
        """What the item wrote (there was something); the buffer is empty again."""
        self._trim()
        captured = Captured(self.parts[0], self.dropped)
        self.parts, self.size, self.dropped = [], 0, 0
        return captured


_running = threading.local()
"""``buffer``: the current thread's :class:`Buffer`, once it ran an item."""


def _item_buffer() -> Buffer | None:
    """The buffer of the item the current thread runs, or ``None`` between items."""
    buffer: Buffer | None = getattr(_running, "buffer", None)
    return buffer if buffer is not None and buffer.open else None


class _Switch:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: routes text by thread (see module doc)."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer = _item_buffer()
        if buffer is None:
            return self.original.write(text)
        if not isinstance(text, str):
            # What a text stream raises, in the item that wrote: bytes in the buffer
            # would fail when the item's output is joined, outside the item.
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        buffer.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        # Not through __getattr__: that would write past the item's buffer.
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _item_buffer() is None:
            self.original.flush()

    def isatty(self) -> bool:
        # While an item runs, its text goes to a buffer: no colour codes, no progress bars.
        return _item_buffer() is None and self.original.isatty()

    def close(self) -> None:
        # While a run captures, nothing closes the stream under it: an item's stream is
        # its buffer, and a thread the item started (it is no item itself) would close
        # the terminal under the run and every other item, which a worker process would
        # not have done. The run puts the stream back as it found it.
        self.flush()

    @property
    def closed(self) -> bool:
        return _item_buffer() is None and bool(self.original.closed)

    def __enter__(self) -> _Switch:
        # ``with (open(path) if path else sys.stdout) as out:``, as with the stream itself.
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _TextSwitch(_Switch):
    """A switch in front of an :class:`io.TextIOBase`: a text stream to ``isinstance`` too."""


# Registered, not inherited: nothing of IOBase may hide what __getattr__ hands on.
io.TextIOBase.register(_TextSwitch)


def past_items(stream: TextIO) -> TextIO:
    """``stream`` without capture's switch: what is written there reaches no item's buffer.

    For the run's own notices written from the main thread, which may be
    inside an item that runs in this process (a signal's handler).
    """
    return stream.original if isinstance(stream, _Switch) else stream


def notice(text: str) -> bool:
    """Write a notice of the run's to stderr from a signal's handler; false if it could not.

    The handler runs in the main thread wherever it stands: perhaps inside an
    item that runs in this process (the notice goes past its capture), or
    inside a write to stderr (one blocked on a full pipe runs handlers too),
    where writing would raise "reentrant call" into that write. The notice is
    dropped then.
    """
    stderr = past_items(sys.stderr)
    try:
        stderr.write(text)
        stderr.flush()
    # "reentrant call inside <_io.BufferedWriter name='<stderr>'>"; a stderr closed
    # (ValueError) or whose reader is gone (OSError): raised from a handler, it would
    # land wherever the main thread stands.
    except (RuntimeError, OSError, ValueError):
        return False
    return True


def _switch(stream: TextIO) -> _Switch:
    """``stream`` if it is a switch already, else a switch in front of it."""
    if isinstance(stream, _Switch):
        return stream
    return (_TextSwitch if isinstance(stream, io.TextIOBase) else _Switch)(stream)


class _Installed:
    """What :func:`acquire` put in place in this process."""

    def __init__(self) -> None:
        self.removed = False
        self.out: _Switch | None = None  # set by rewrap()
        self.err: _Switch | None = None
        self.records: Records | None = None
        # Set up once logging is imported (now, if it is): a worker starts without it.
        self.unwatch = when_imported("logging", self.catch_records)
        self.rewrap()

    def catch_records(self) -> None:
        if self.removed:  # a watch that outlived its capture
            return
        from curator.observing.capture_logging import Records

        with _records_lock:
            if self.records is None and not self.removed:
                self.records = Records(_item_buffer)

    def rewrap(self) -> None:
        """Put switches in front of the streams again where something replaced them.

        A test harness or a notebook may swap ``sys.stdout`` while a run goes on;
        the item's text must still reach its buffer, and other text the new stream.
        """
        if sys.stdout is not self.out:
            self.out = _switch(sys.stdout)
            sys.stdout = self.out
        if sys.stderr is not self.err:
            self.err = _switch(sys.stderr)
            sys.stderr = self.err

    def remove(self) -> None:
        # Only where nobody replaced a switch since (a progress view's own
        # redirection restores the switch later, which then passes text through).
        if self.out is not None and sys.stdout is self.out:
            sys.stdout = self.out.original
        if self.err is not None and sys.stderr is self.err:
            sys.stderr = self.err.original
        self.unwatch()
        with _records_lock:
            self.removed = True
            if self.records is not None:
                self.records.remove()


_lock = threading.Lock()
_records_lock = threading.Lock()  # not _lock: the catcher may be set up inside an import
_users = 0
_installed: _Installed | None = None


def acquire() -> None:
    """Start capturing in this process: switches on stdout and stderr, a logging catcher.

    Calls nest: each :func:`acquire` needs one :func:`release`; the first
    installs, the last removes.
    """
    global _users, _installed
    with _lock:
        _users += 1
        if _installed is None:
            _installed = _Installed()
        else:
            _installed.rewrap()


def release() -> None:
    """Undo one :func:`acquire`; the last puts everything back."""
    global _users, _installed
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users or _installed is None:
            return
        _installed.remove()
        _installed = None


def begin() -> Buffer:
    """Start capturing the current thread's output for one item."""
    global _installed
    installed = _installed
    if installed is None:
        # A worker process whose backend never called Work.setup: capture for
        # the rest of the process's life (the run's own process releases at its end).
        with _lock:
            if _installed is None:
                _installed = _Installed()
    else:
        if sys.stdout is not installed.out or sys.stderr is not installed.err:
            with _lock:
                installed.rewrap()
        if installed.records is None and "logging" in sys.modules:
            # Imported past the watch (a thread that had found it before the watch was
            # set, a finder ahead of it): the catcher is set up here, before the item.
            installed.catch_records()
    try:
        buffer: Buffer = _running.buffer
    except AttributeError:
        buffer = _running.buffer = Buffer()
    if buffer.open:  # an item run inside an item (a stage runs a pipeline): a buffer of its own
        buffer = _running.buffer = Buffer(buffer)
    buffer.open = True
    return buffer


def end(buffer: Buffer) -> Captured | None:
    """Stop capturing the current thread's output: what the item printed, if anything."""
    buffer.open = False
    if buffer.outer is not None:  # back to the item around it
        _running.buffer = buffer.outer
    return buffer.take() if buffer.size else None
