from __future__ import annotations

import sys
from pathlib import Path

import pytest
from core_support import make_distribution

from curator._version import __version__
from curator.plugin_host.compat import core_requirement, satisfies
from curator.plugin_host.plugins import PluginSettings
from curator.plugin_host.registry import Registry


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("0.1.0", ">=0.1,<1", True),
        ("1.0.0", ">=0.1,<1", False),
        ("0.0.9", ">=0.1,<1", False),
        ("0.1.0", "==0.1.*", True),
        ("0.2.0", "==0.1.*", False),
        ("0.2.0", "!=0.1.*", True),
        ("1.4.5", "~=1.4.2", True),
        ("1.5.0", "~=1.4.2", False),
        ("1.4.1", "~=1.4.2", False),
        ("0.1.0", "==0.1", True),
        ("0.1.0", ">0.1", False),
        ("0.1.0", "<=0.1.0", True),
        ("0.1.0", "", True),
        ("0.1.0", ">=banana", True),  # unreadable: left to pip
    ],
)
def test_version_ranges(version: str, spec: str, expected: bool) -> None:
    assert satisfies(version, spec) is expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["curator-core>=0.1,<1"], ">=0.1,<1"),
        (["rich>=13", "curator_core (>=0.2)"], ">=0.2"),
        (["Curator.Core[testing]>=0.1; python_version >= '3.10'"], ">=0.1"),
        (["curator-core>=9; extra == 'test'"], None),
        (["curator-core-extras>=2"], None),
        ([], None),
        (None, None),
    ],
)
def test_the_core_requirement_is_read_from_requires_dist(
    lines: list[str] | None, expected: str | None
) -> None:
    assert core_requirement(lines) == expected


def test_a_plugin_built_for_another_core_is_broken_and_never_imported(site: Path) -> None:
    module = site / "curator_fixture_future.py"
    module.write_text("raise RuntimeError('imported although built for another core')\n")
    make_distribution(
        site,
        "curator-fixture-future",
        "3.0",
        {"future": "curator_fixture_future"},
        requires=("curator-core>=99,<100",),
    )
    make_distribution(
        site,
        "curator-fixture-fits",
        "1.0",
        {"fits": "curator_fixture_good"},
        requires=(f"curator-core=={__version__}",),
    )
    sys.path.insert(0, str(site))
    try:
        registry = Registry.load(PluginSettings(strict=False), path=[str(site)])
    finally:
        sys.path.remove(str(site))
    record = registry.host.records["future"]
    assert record.status == "broken"
    assert record.error == (
        f"built for curator-core>=99,<100, but curator-core {__version__} is installed; "
        "not imported (install a version of the plugin made for this core)"
    )
    assert "curator_fixture_future" not in sys.modules
    assert registry.host.records["fits"].status == "loaded"
