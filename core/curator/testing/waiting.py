"""Waiting in tests for something that happens in another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail the test if ``seconds`` pass first.

    A wait that gives up silently lets the test go on to assert something
    else, and the real reason (it never got that far) is lost.

    Raises
    ------
    AssertionError
        Naming ``what`` was waited for, when the deadline passes.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:g} s waiting for {what}")
        time.sleep(0.01)
