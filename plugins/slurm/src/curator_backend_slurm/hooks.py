"""The plugin's hook module (the ``curator`` entry point). Imports nothing heavy."""

from __future__ import annotations

from curator import Backend, hookimpl
from curator_backend_slurm.backend import SlurmBackend


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide the ``slurm`` backend."""
    return [SlurmBackend]
