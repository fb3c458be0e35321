"""The process pool passes the conformance kit, loaded through its entry point."""

from __future__ import annotations

from curator.testing import BackendConformance


class TestProcessPool(BackendConformance):
    backend = "process-pool"


class TestProcessPoolSpawn(BackendConformance):
    backend = "process-pool"
    options = {"start_method": "spawn"}  # noqa: RUF012 - a class-level setting of the kit
