"""The plugin's hook module (the ``curator`` entry point). Imports nothing heavy."""

from __future__ import annotations

from curator import Backend, hookimpl
from curator_backend_process_pool.backend import ProcessPoolBackend


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide the ``process-pool`` backend."""
    return [ProcessPoolBackend]
