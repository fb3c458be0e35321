"""An item's logging records, into its captured output (see :mod:`curator.observing.capture`).

The catcher is in place from the run's start, before any item can add a
handler or import a library that does (a catcher put in place later would
silence those handlers, and miss the records the first item logs below
Python's last-resort level). In a process that has not imported
:mod:`logging` yet (a worker starts without it, see
:mod:`curator.observing.after_import`), it is put in place by that import,
before the importer's next line: no record can be logged, nor a handler
added, before then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol


class _Writable(Protocol):
    def write(self, text: str) -> None: ...


ItemBuffer = Callable[[], "_Writable | None"]
"""The buffer of the item the calling thread runs, or ``None`` between items."""


class _Quiet(logging.Filter):
    """Put on the process's own handlers for a run: silent for a thread running an item."""

    def __init__(self, item_buffer: ItemBuffer) -> None:
        super().__init__()
        self.item_buffer = item_buffer

    def filter(self, record: logging.LogRecord) -> bool:
        return self.item_buffer() is None


class _Catcher(logging.Handler):
    """On the root logger for a run: an item's records go into its buffer, once."""

    def __init__(self, item_buffer: ItemBuffer) -> None:
        super().__init__()
        self.item_buffer = item_buffer
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buffer = self.item_buffer()
        if buffer is not None:
            buffer.write(self.format(record) + "\n")
        elif not _handled_elsewhere(record):
            # Being a handler of the root, this one keeps Python's last resort from
            # printing a warning nobody else handles: do what it would have done.
            last = logging.lastResort
            if last is not None and record.levelno >= last.level:
                last.handle(record)


def _handled_elsewhere(record: logging.LogRecord) -> bool:
    """Whether a handler other than the catcher sees ``record`` (as ``callHandlers`` walks)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(handler, _Catcher) for handler in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _handlers() -> list[logging.Handler]:
    """Every handler of the loggers this process has made (the root's included)."""
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            found[id(handler)] = handler
    return list(found.values())


class Records:
    """A catcher on the root logger and a filter on every other handler, until :meth:`remove`."""

    def __init__(self, item_buffer: ItemBuffer) -> None:
        self.quiet, self.catcher = _Quiet(item_buffer), _Catcher(item_buffer)
        self.handlers = _handlers()
        for handler in self.handlers:
            handler.addFilter(self.quiet)
        logging.getLogger().addHandler(self.catcher)

    def remove(self) -> None:
        """Put the process's logging back as it was."""
        logging.getLogger().removeHandler(self.catcher)
        for handler in self.handlers:
            handler.removeFilter(self.quiet)
