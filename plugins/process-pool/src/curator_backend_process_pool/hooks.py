"""The plugin's hook module (the ``curator`` entry point). Imports nothing heavy."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    """Provide the ``process-pool`` backend."""
    # By reference: a run on another backend never imports the backend's module.
    return [ClassRef("process-pool", "curator_backend_process_pool.backend:ProcessPoolBackend")]
