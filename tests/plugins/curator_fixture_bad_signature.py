"""A plugin whose hook takes an argument the spec does not have."""

from curator import hookimpl


@hookimpl
def curator_register_backends(config: object) -> list[object]:
    return []
