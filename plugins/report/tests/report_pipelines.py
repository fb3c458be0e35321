"""Pipelines the report's tests run from the command line (they import in child processes)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from curator import Pipeline, Sink
from curator.testing.probes import Numbers, probe


class Sleep(Sink[int]):
    """Each item sleeps ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        time.sleep(self.seconds)
        return [str(index)]


ten = Numbers(10).write(Sleep(0.0))
busy = Numbers(12).write(Sleep(0.25))


def chatty() -> Pipeline[int]:
    """Six items that print (stdout, stderr, a logging warning); item 2 fails."""
    folder = os.path.join(os.getcwd(), "chatty")  # the run's folder: a test's own
    os.makedirs(folder, exist_ok=True)
    return probe(6, folder, chatty=True, fail=frozenset({2}))


class FailAt(Sink[int]):
    """Item ``at`` raises; the others return their index."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == self.at:
            raise ValueError(f"item {index} fails")
        return [str(index)]


fails_at_3 = Numbers(10).write(FailAt(3))
