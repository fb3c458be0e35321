"""A plugin whose references lead nowhere, to the wrong class, or to something else."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    return [
        ClassRef("nowhere", "curator_fixture_nowhere:Nothing"),
        ClassRef("misnamed", "curator_fixture_later_backend:Later"),
        ClassRef("not-a-backend", "curator_fixture_later_backend:NotABackend"),
        ClassRef("no-colon", "curator_fixture_later_backend.Later"),
    ]
