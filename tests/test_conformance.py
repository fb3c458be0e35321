"""The built-in backends pass the conformance kit, exactly as a third party would run it."""

from __future__ import annotations

from curator.testing import BackendConformance


class TestSequential(BackendConformance):
    backend = "sequential"
    load_entrypoints = False


class TestThreadPool(BackendConformance):
    backend = "thread-pool"
    load_entrypoints = False
