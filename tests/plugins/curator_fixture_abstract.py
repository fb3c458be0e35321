"""A plugin whose backend forgets to implement execute."""

from typing import Any

from curator import Backend, Capabilities, hookimpl


class Unfinished(Backend):  # type: ignore[misc]
    name = "unfinished"
    capabilities = Capabilities()


@hookimpl
def curator_register_backends() -> list[Any]:
    return [Unfinished]
