"""The Dask backend passes the conformance kit on a LocalCluster and on a running cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import curator_backend_dask.hooks as hooks
from curator.testing import BackendConformance


class TestDaskLocalCluster(BackendConformance):
    backend = "dask"
    plugins = [("dask", hooks)]  # noqa: RUF012 - a class-level setting of the kit
    load_entrypoints = False
    lasting_threads = ("Dask-Offload",)  # distributed's executor for the interpreter's life


class TestDaskExistingCluster(BackendConformance):
    """A `dask scheduler` and two `dask worker` processes, reached by their scheduler file."""

    backend = "dask"
    plugins = [("dask", hooks)]  # noqa: RUF012 - a class-level setting of the kit
    load_entrypoints = False
    lasting_threads = ("Dask-Offload",)  # distributed's executor for the interpreter's life

    @pytest.fixture
    def backend_options(self, cluster: Path) -> dict[str, Any]:
        return {"scheduler_file": str(cluster)}

    # Dask cannot interrupt a task that runs in a worker thread: on a cluster curator did
    # not start (and so does not shut down), a hard stop cancels what waits and hands over
    # what finished, but items already running go on until they end. These three checks
    # use items that never end, so they apply to the LocalCluster above only.
    _USERS_CLUSTER = "on a user's cluster Dask cannot stop running tasks (see the README)"

    def test_a_hard_stop_kills_running_items_and_leaves_nothing_behind(self) -> None:
        pytest.skip(self._USERS_CLUSTER)

    def test_the_end_of_the_grace_period_stops_running_items(self) -> None:
        pytest.skip(self._USERS_CLUSTER)

    def test_sigterm_stops_at_once_without_a_grace_period(self) -> None:
        pytest.skip(self._USERS_CLUSTER)
