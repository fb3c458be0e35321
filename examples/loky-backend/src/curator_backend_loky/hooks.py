"""The entry point: register the backend. Nothing heavy is imported here."""

from curator import Backend, hookimpl
from curator_backend_loky.backend import LokyBackend


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide the ``loky`` backend."""
    return [LokyBackend]
