"""Loading must stay cheap: no plugin on import, no engine when listing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from core_support import subprocess_env

import curator
from curator.testing import HEAVY_MODULES

# rich too: importing curator or listing as JSON draws nothing.
HEAVY = HEAVY_MODULES | {"rich"}


def _modules_after(code: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_import_curator_loads_no_plugin_and_no_engine() -> None:
    modules = _modules_after("import curator")
    assert not modules & HEAVY
    assert "curator_fixture_good" not in modules
    # The registry exists but has not been built.
    code = "import curator.registry as r; assert r._default is None"
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())


def test_listing_backends_as_json_imports_no_engine() -> None:
    code = (
        "import sys\n"
        "from curator.cli.main import main\n"
        "sys.argv = ['curator', 'backends', 'list', '--json']\n"
        "main()\n"
    )
    modules = _modules_after(code)
    assert not modules & HEAVY, modules & HEAVY


def test_no_public_name_is_shadowed_by_a_submodule() -> None:
    # `import curator.run` would replace the function `curator.run` by the module.
    code = (
        "import importlib.util, curator\n"
        "print([n for n in curator.__all__ if importlib.util.find_spec(f'curator.{n}')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    after = "import curator.cli.run, curator.runner, curator\nassert callable(curator.run)"
    subprocess.run([sys.executable, "-c", after], check=True, env=subprocess_env())


def _shape() -> Any:
    """``tools/core_shape.py``, which measures the core's shape: its import graph and cycles."""
    path = Path(__file__).resolve().parent.parent / "tools" / "core_shape.py"
    spec = importlib.util.spec_from_file_location("core_shape", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module_imports() -> dict[str, set[str]]:
    """Each core module's imports of other core modules made when it loads (not in functions)."""
    shape = _shape()
    # The installed package (in tox, the built wheel), the kit and example included.
    graph: dict[str, set[str]] = shape.import_graph(
        shape.modules(Path(curator.__file__).parent, whole=True)
    )
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = _shape().cycles(graph)
    return found


def test_the_core_has_no_import_cycle() -> None:
    """Issue 26: modules import each other one way (a deferred import in a function aside)."""
    graph = _module_imports()
    assert "curator.loop" in graph
    assert "curator.store" in graph["curator.loop"]
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_concerns_import_each_other_only_as_the_rules_allow() -> None:
    """Issue 26: the model, observing, the checkpoint, the plugin host and running import only
    what tools/core_shape.py's FORBIDDEN allows; nothing but the command line imports it."""
    shape = _shape()
    assert shape.broken_rules(_module_imports()) == []
    # The rules catch what they are for: the model reaching into the run, the checkpoint
    # into the run loop, anything into the command line.
    planted = {
        "curator.outcome": {"curator.loop"},
        "curator.latest": {"curator.intake"},
        "curator.metrics": {"curator.cli.output"},
        "curator.loop": {"curator.store"},  # allowed: the run writes the checkpoint
    }
    assert shape.broken_rules(planted) == [
        "curator.latest (the checkpoint) imports curator.intake (the run loop)",
        "curator.metrics (observing) imports curator.cli.output (the command line)",
        "curator.outcome (the model) imports curator.loop (running)",
    ]
