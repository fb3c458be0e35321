"""Pipelines for the dask tests' `curator run` subprocesses (module-level, importable by name)."""

from __future__ import annotations

import os

from curator import Pipeline
from curator.testing.probes import probe


def slow() -> Pipeline[int]:
    """40 items of 2 s each, recorded in the folder ``DASK_TEST_FOLDER`` names."""
    return probe(40, os.environ["DASK_TEST_FOLDER"], sleep=2.0)
