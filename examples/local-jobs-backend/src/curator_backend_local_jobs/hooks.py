"""The entry point: register the backend. Nothing heavy is imported here."""

from curator import Backend, hookimpl
from curator_backend_local_jobs.backend import LocalJobsBackend


@hookimpl
def curator_register_backends() -> list[type[Backend]]:
    """Provide the ``local-jobs`` backend."""
    return [LocalJobsBackend]
