"""The plugin's hook module (the ``curator`` entry point). It never imports dask."""

from __future__ import annotations

from curator import Backend, hookimpl
from curator_backend_dask.backend import DaskBackend


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide the ``dask`` backend."""
    return [DaskBackend]
