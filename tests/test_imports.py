"""Loading must stay cheap: no plugin on import, no engine when listing."""

from __future__ import annotations

import json
import subprocess
import sys

from core_support import subprocess_env

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
