"""The whole conformance kit against the slurm backend, on the one-node cluster."""

from __future__ import annotations

from typing import Any, ClassVar

from curator.testing import BackendConformance
from curator.testing.limits import KitLimits


class TestSlurm(BackendConformance):
    backend = "slurm"
    # Each run submits job arrays; the one-node cluster starts a job in about a second.
    limits = KitLimits(check=600)
    options: ClassVar[dict[str, Any]] = {"signal_before_limit": 30}
