"""A plugin that implements a hook curator does not define (a typo)."""

from curator import hookimpl


@hookimpl
def curator_register_backend() -> list[object]:
    return []
