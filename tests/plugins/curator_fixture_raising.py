"""A plugin whose registration hook raises."""

from curator import hookimpl


@hookimpl
def curator_register_backends() -> list[object]:
    raise RuntimeError("boom while registering")
