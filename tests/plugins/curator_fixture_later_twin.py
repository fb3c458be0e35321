"""A plugin whose reference to a backend named ``later`` leads nowhere (it registers first)."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    return [ClassRef("later", "curator_fixture_nowhere:Later")]
