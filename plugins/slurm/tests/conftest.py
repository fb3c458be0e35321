from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import curator_backend_slurm.hooks as hooks
import pytest

from curator import Registry
from curator.testing.registries import default_registry, isolated_registry

pytest_plugins = ["curator.testing.pytest_plugin"]


def _cluster_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0 and bool(done.stdout.strip())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a Slurm cluster the tests are skipped, unless the tox env promised one."""
    if _cluster_answers():
        return
    if os.environ.get("CURATOR_REQUIRE_SLURM") == "1":
        raise pytest.UsageError(
            "CURATOR_REQUIRE_SLURM=1 but sinfo does not answer: start the one-node cluster "
            "(python plugins/slurm/tests/one_node_slurm.py up)"
        )
    skip = pytest.mark.skip(reason="no Slurm cluster answers (sinfo)")
    for item in items:
        item.add_marker(skip)


@pytest.fixture
def registry() -> Registry:
    """Built-ins plus this plugin's hook module, independent of what else is installed."""
    return isolated_registry(("slurm", hooks))


@pytest.fixture(autouse=True)
def _default_registry(
    registry: Registry, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    # Job folders default to ./curator-jobs: each test's own, not the repository's.
    monkeypatch.chdir(tmp_path)
    with default_registry(registry):
        yield
