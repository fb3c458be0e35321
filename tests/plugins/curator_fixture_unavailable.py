"""A plugin whose backend needs a package that is not installed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from curator import Backend, Capabilities, Work, hookimpl
from curator.model.outcome import Event


class NeedsEngine(Backend):
    name = "needs-engine"
    description = "Needs an engine that is not installed."
    requires = ("curator_fixture_missing_engine",)
    capabilities = Capabilities(parallel=True)

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        import curator_fixture_missing_engine  # noqa: F401

        yield from ()


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    return [NeedsEngine]
