"""What the kit's per-feature check mixins use of :class:`curator.testing.BackendConformance`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from curator.model.result import RunResult
from curator.testing.limits import KitLimits

if TYPE_CHECKING:
    from curator.backends.backend import Capabilities
    from curator.plugin_host.registry import Registry
    from curator.testing.timelimit import TimeLimit


class KitMixin:
    """Base of the per-feature mixins (groups, lifecycle, stage state) of the kit."""

    folder: Path
    backend: ClassVar[str]
    n_jobs: int
    plugins: ClassVar[Sequence[tuple[str, object]]]
    load_entrypoints: ClassVar[bool]
    limits: ClassVar[KitLimits]
    time_limit: TimeLimit
    run_options: dict[str, Any]
    """The backend options of every run (the ``backend_options`` fixture's)."""
    registry: Registry
    """The registry the checks run with."""
    caps: Capabilities
    """What the backend under test declares."""

    if TYPE_CHECKING:  # provided by BackendConformance

        def run(self, count: int, **kwargs: Any) -> RunResult:
            """Run a probe pipeline of ``count`` items on the backend under test."""

        def need(self, capability: str) -> None:
            """Skip unless the backend declares ``capability``."""
