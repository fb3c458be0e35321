"""The plugin's hook module (the ``curator`` entry point). Imports nothing heavy."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    """Provide the ``slurm`` backend."""
    # By reference: a run on another backend never imports the backend's module.
    return [ClassRef("slurm", "curator_backend_slurm.backend:SlurmBackend")]
