"""The Dask backend (on a LocalCluster it starts per run) passes the conformance kit."""

from __future__ import annotations

import curator_backend_dask.hooks as hooks
from curator.testing import BackendConformance


class TestDaskLocalCluster(BackendConformance):
    backend = "dask"
    plugins = [("dask", hooks)]  # noqa: RUF012 - a class-level setting of the kit
    load_entrypoints = False
