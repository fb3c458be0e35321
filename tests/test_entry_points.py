"""Finding the plugins: read from the distributions' folders, as importlib.metadata reads them.

Issue 27 (fixed cost): importing :mod:`importlib.metadata` alone cost about 15 ms of
every run's and command's start, and parsing every installed distribution's METADATA
about 50 ms before that.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from core_support import make_distribution, subprocess_env

from curator.plugin_host import entrypoints
from curator.plugin_host.entrypoints import EntryPoint, entry_points


@pytest.mark.parametrize("group", ["curator", "console_scripts", "pytest11"])
def test_the_installed_entry_points_are_those_importlib_metadata_finds(group: str) -> None:
    found = entry_points(group)
    assert found == entrypoints._from_importlib(group, list(sys.path), default_path=True)


def test_loading_the_plugins_never_imports_importlib_metadata(tmp_path: Path) -> None:
    make_distribution(tmp_path, "curator-fixture-good", "1.0", {"good": "curator_fixture_good"})
    code = (
        "import sys; from curator.plugin_host.registry import Registry; "
        "from curator.plugin_host.plugins import PluginSettings; "
        "r = Registry.load(PluginSettings()); "
        "print('importlib.metadata' in sys.modules, 'echo' in r.backends)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env=subprocess_env(tmp_path),
    )  # fmt: skip
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_path_like_entries_and_extras_read_as_importlib_metadata_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a review: a Path on sys.path (a conftest's) broke every command."""
    make_distribution(tmp_path, "curator-x", "1.0", {"x": "json:dumps [fast]", "y": "json"})
    make_distribution(tmp_path / "twice", "curator-twice", "1.0", {})
    (tmp_path / "twice" / "curator_twice-1.0.dist-info" / "entry_points.txt").write_text(
        "[curator]\nsame = json\nsame = os\n"
    )
    monkeypatch.setattr(sys, "path", [*sys.path, tmp_path, tmp_path / "twice", 42])
    found = entry_points("curator")
    mine = [ep for ep in found if ep.distribution in ("curator-x", "curator-twice")]
    assert [(ep.name, ep.value) for ep in mine] == [
        ("same", "json"), ("same", "os"), ("x", "json:dumps [fast]"), ("y", "json"),
    ]  # fmt: skip
    assert mine[2].load() is __import__("json").dumps


def test_a_folder_of_distributions_reads_names_versions_requirements_and_the_first_of_a_name(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_distribution(
        first, "curator-Fancy_Thing", "1.2", {"b": "pkg.mod:obj.attr", "a": "pkg"},
        requires=("curator-core>=0.1", "numpy"),
    )  # fmt: skip
    make_distribution(second, "curator-fancy-thing", "9.9", {"c": "other"})  # shadowed
    make_distribution(second, "zzz-other", "0.1", {"x": "x"}, group="not-ours")
    egg = second / "curator_egg.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: curator-egg\nVersion: 3.0\n")
    (egg / "entry_points.txt").write_text("[curator]\negg = egg_module\n")
    (egg / "requires.txt").write_text("curator-core<1\n\n[extra]\nnever-this\n")
    path = [str(first), str(second)]
    found = entry_points("curator", path)
    requires = ("curator-core>=0.1", "numpy")
    assert found == [  # by distribution (canonical name), then entry-point name
        EntryPoint(
            "egg",
            "egg_module",
            "curator-egg",
            "3.0",
            ("curator-core<1", 'never-this; extra == "extra"'),
        ),
        EntryPoint("a", "pkg", "curator-Fancy_Thing", "1.2", requires),
        EntryPoint("b", "pkg.mod:obj.attr", "curator-Fancy_Thing", "1.2", requires),
    ]
    assert found == entrypoints._from_importlib("curator", path, default_path=False)


def test_a_zip_on_the_path_is_read_by_importlib_metadata(tmp_path: Path) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "zipped_plugin-1.0.dist-info/METADATA", "Name: zipped-plugin\nVersion: 1.0\n"
        )
        zipped.writestr("zipped_plugin-1.0.dist-info/entry_points.txt", "[curator]\nz = zmod\n")
    assert entry_points("curator", [str(archive)]) == [
        EntryPoint("z", "zmod", "zipped-plugin", "1.0", ())
    ]


def test_an_entry_point_loads_its_attribute(tmp_path: Path) -> None:
    ep = EntryPoint("x", "os.path:join", "d", "1", ())
    assert ep.load() is __import__("os").path.join
    assert EntryPoint("m", "json", "d", "1", ()).load() is __import__("json")
