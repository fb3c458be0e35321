"""The entry point: register the backend. Nothing heavy is imported here."""

from curator import Backend, ClassRef, hookimpl


@hookimpl
def curator_register_backends() -> list[type[Backend] | ClassRef]:
    """Provide the ``local-jobs`` backend."""
    # By reference: a run on another backend never imports the backend's module.
    return [ClassRef("local-jobs", "curator_backend_local_jobs.backend:LocalJobsBackend")]
