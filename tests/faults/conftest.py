from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign import FIGURES, FIRST_SEEN, PENDING, SCALE, SEED, Pending, seems_fixed
from pytest_timeout import get_env_settings

from curator import Registry
from curator.plugin_host.plugins import PluginSettings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A campaign test's hang limit (``--timeout``, or pyproject's) grows with ``FAULT_SCALE``."""
    base = get_env_settings(config).timeout  # as pytest-timeout resolves it for every test
    if not base:  # turned off (``--timeout 0``, for a debugger)
        return
    limit = pytest.mark.timeout(base * max(1.0, SCALE))
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):  # the hook sees the whole session's items
            item.add_marker(limit)


@pytest.fixture(scope="session", autouse=True)
def _figures() -> Iterator[None]:
    FIGURES.clear()
    started = time.monotonic()
    yield
    FIGURES["seconds"] = round(time.monotonic() - started)
    figures: dict[str, object] = {"seed": SEED}
    figures.update((name, round(n)) for name, n in sorted(FIGURES.items()))
    if FIRST_SEEN:
        figures["pending fixes seen"] = {i: f"{PENDING[i]}: {m}" for i, m in FIRST_SEEN.items()}
    unseen = sorted(set(PENDING) - set(FIRST_SEEN))
    if unseen:  # the fix may have landed: take it out of PENDING so the campaign holds it
        figures["pending but not seen"] = {issue: PENDING[issue] for issue in unseen}
    print(f"\nfault campaign: {json.dumps(figures)}")
    target = os.environ.get("FAULT_REPORT")
    if target:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n")
    fixed = [issue for issue in unseen if seems_fixed(issue)]
    if fixed:
        pytest.fail(
            f"pending issues never violated although checked often: {fixed}; their fixes "
            "seem to have landed: take them out of PENDING in campaign.py"
        )


@pytest.fixture
def registry() -> Registry:
    """The installed plugins (the process pool and dask among them), strict."""
    return Registry.load(PluginSettings(strict=True))


@pytest.fixture
def pending() -> Pending:
    """This test's violations of fault classes whose fix has not landed (``settle()`` last)."""
    return Pending()
