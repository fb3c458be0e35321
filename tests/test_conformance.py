"""The built-in backends pass the conformance kit, exactly as a third party would run it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Capabilities, Event, Work, hookimpl
from curator.testing import BackendConformance


class TestSequential(BackendConformance):
    backend = "sequential"
    load_entrypoints = False


class TestThreadPool(BackendConformance):
    backend = "thread-pool"
    load_entrypoints = False


class _Reverse(Backend):
    """The docs' example backend (docs/plugins.md): the last index first, in this process."""

    name = "reverse"
    capabilities = Capabilities(parallel=False)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in reversed(indices):
            if self.stop_requested:
                return
            yield work.start(index)
            yield work(index)


class _ReversePlugin:
    @hookimpl
    def curator_register_backends(self) -> list[type[Backend]]:
        return [_Reverse]


class TestABackendMayRunTheIndicesInAnyOrder(BackendConformance):
    """The contract lets a backend take the indices in any order; no check may assume one."""

    backend = "reverse"
    load_entrypoints = False
    plugins = (("reverse", _ReversePlugin()),)
