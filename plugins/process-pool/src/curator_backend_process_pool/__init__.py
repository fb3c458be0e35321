"""curator-backend-process-pool: run curator pipelines on a pool of worker processes."""

__version__ = "0.1.0"
