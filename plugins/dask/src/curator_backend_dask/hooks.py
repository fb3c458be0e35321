"""The plugin's hook module (the ``curator`` entry point). It never imports dask."""

from __future__ import annotations

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    """Provide the ``dask`` backend."""
    # By reference: a run on another backend never imports the backend's module.
    return [ClassRef("dask", "curator_backend_dask.backend:DaskBackend")]
