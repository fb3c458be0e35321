"""A plugin whose registration hook returns something that is not a Backend class."""

from curator import hookimpl


@hookimpl
def curator_register_backends() -> list[object]:
    return ["not a backend"]
