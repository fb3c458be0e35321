"""curator-backend-slurm: run curator pipelines as Slurm job arrays."""

__version__ = "0.1.0"
