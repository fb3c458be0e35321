"""A plugin that registers its backends by reference (curator.ClassRef)."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    return [
        ClassRef("later", "curator_fixture_later_backend:Later"),
        ClassRef("later-unavailable", "curator_fixture_later_backend:NeedsEngine"),
    ]
