"""curator-backend-dask: run curator pipelines on a Dask distributed cluster."""

__version__ = "0.1.0"
