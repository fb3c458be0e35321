"""Loading must stay cheap: no plugin on import, no engine when listing."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from core_support import subprocess_env

import curator
from curator.testing import HEAVY_MODULES

# rich too: importing curator or listing as JSON draws nothing.
HEAVY = HEAVY_MODULES | {"rich"}


def _modules_after(code: str, **env: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=subprocess_env(**env),
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _passes(code: str) -> None:
    """Run ``code`` in a fresh interpreter; its asserts are the test's."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert proc.returncode == 0, proc.stderr


def test_import_curator_loads_no_plugin_and_no_engine() -> None:
    modules = _modules_after("import curator")
    assert not modules & HEAVY
    assert "curator_fixture_good" not in modules
    # The registry exists but has not been built.
    code = "import curator.plugin_host.registry as r; assert r._default is None"
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


RUN_TWO_ITEMS = """
import sys, tempfile
from curator import Sink, Source, run

class Two(Source):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        yield index

class Kept(Sink):
    def __call__(self, items, index):
        return list(items)

pipeline = Two().write(Kept())
"""

CHECKPOINT_MODULES = {"sqlite3", "hashlib", "curator.checkpoint.store", "curator.checkpoint.meta"}
REPORTER_MODULES = {
    f"curator.observing.reporters.{name}" for name in ("live", "log", "jsonlines", "summary")
}


def test_a_run_imports_the_checkpoint_and_reporters_only_when_it_uses_them() -> None:
    """Issue 27: what `from curator import run` and a run load is part of every script's
    start; a run without a checkpoint (the API's default) loads no SQLite, no hashing and
    no store, and a run loads the reporters it names only."""
    bare = RUN_TWO_ITEMS + "assert run(pipeline, reporter=None).outputs == [[0], [1]]"
    modules = _modules_after(bare)
    assert "curator.running.loop" in modules
    assert not modules & (CHECKPOINT_MODULES | REPORTER_MODULES | {"rich"}), sorted(
        modules & (CHECKPOINT_MODULES | REPORTER_MODULES | {"rich"})
    )
    logged = _modules_after(RUN_TWO_ITEMS + "run(pipeline, reporter='log')")
    assert "curator.observing.reporters.log" in logged
    unused = {"curator.observing.reporters.live", "curator.observing.reporters.jsonlines", "rich"}
    assert not logged & unused, sorted(logged & unused)
    kept = RUN_TWO_ITEMS + (
        "with tempfile.TemporaryDirectory() as folder:\n"
        "    run(pipeline, reporter=None, checkpoint=folder)\n"
        "    again = run(pipeline, reporter=None, checkpoint=folder, resume=True)\n"
        "    assert again.count('skipped') == 2, again\n"
    )
    assert _modules_after(kept) >= CHECKPOINT_MODULES


def test_only_the_run_that_makes_the_users_key_imports_tempfile(tmp_path: Path) -> None:
    """tempfile (with shutil, bz2, lzma and random) is 4 ms of a checkpoint's start; only
    making the signing key, once per user, needs it."""
    key = {"CURATOR_KEY_FILE": str(tmp_path / "checkpoint.key")}
    code = RUN_TWO_ITEMS.replace("import sys, tempfile", "import sys") + (
        f"run(pipeline, reporter=None, checkpoint={str(tmp_path / 'kept')!r}, resume=RESUME)"
    )
    first = _modules_after(code.replace("RESUME", "False"), **key)
    assert (tmp_path / "checkpoint.key").stat().st_size == 32
    assert {"tempfile", "secrets"} <= first
    again = _modules_after(code.replace("RESUME", "True"), **key)
    assert "curator.checkpoint.store" in again
    assert not again & {"tempfile", "secrets"}, sorted(again & {"tempfile", "secrets"})


def test_the_command_line_loads_the_checkpoint_only_for_a_run_that_keeps_one(
    tmp_path: Path,
) -> None:
    code = RUN_TWO_ITEMS + (
        "from curator.cli.main import main\n"
        "assert main(['run', '__main__:pipeline', '-b', 'sequential', '--reporter', 'none',"
        " '--no-checkpoint']) == 0\n"
    )
    assert not _modules_after(code) & CHECKPOINT_MODULES
    kept = code.replace("'--no-checkpoint'", f"'--checkpoint', {str(tmp_path)!r}")
    assert _modules_after(kept) >= CHECKPOINT_MODULES
    assert (tmp_path / "checkpoint.sqlite").exists()


def test_auto_decides_on_log_without_importing_rich_when_stderr_is_no_terminal() -> None:
    """What rich would answer for a stderr that is no terminal, without its 25 ms import;
    a variable that overrides rich's check (FORCE_COLOR) still goes to rich."""
    plain = subprocess_env()
    for name in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        plain.pop(name, None)
    code = RUN_TWO_ITEMS + (
        "from curator.observing.reporters import auto_reporter\n"
        "print(auto_reporter(), 'rich' in sys.modules)\n"
        "run(pipeline)\n"
        "print('rich' in sys.modules)\n"
    )
    for env, expected in (
        (plain, "log False\nFalse"),
        ({**plain, "FORCE_COLOR": "1"}, "rich True"),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert proc.stdout.strip().startswith(expected), (proc.stdout, proc.stderr)
    assert (
        "run started: 2 items"
        in subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=plain, check=True
        ).stderr
    )


def test_a_reporter_first_loaded_inside_a_sys_modules_patch_still_works_after_it() -> None:
    """A test hiding an optional module with patch.dict(sys.modules) around the process's
    first run drops the reporter modules that run loaded; the classes kept still read
    their option types."""
    code = RUN_TWO_ITEMS + (
        "from unittest import mock\n"
        "for reporter in ('log', 'json', 'summary', 'rich'):\n"
        "    with mock.patch.dict(sys.modules, {'some_optional_dependency': None}):\n"
        "        run(pipeline, reporter=reporter)\n"
        "    assert run(pipeline, reporter=reporter).outputs == [[0], [1]], reporter\n"
    )
    _passes(code)


def test_the_public_api_keeps_its_type_hints_and_its_older_names() -> None:
    """Lazy imports keep what was there: the public classes' and functions' annotations
    resolve (pydantic, cattrs and typeguard read them), the names importable before."""
    code = (
        "import inspect, typing, curator\n"
        "broken = []\n"
        "for name in curator.__all__:\n"
        "    value = getattr(curator, name)\n"
        "    if inspect.isclass(value) or inspect.isfunction(value):\n"
        "        try:\n"
        "            typing.get_type_hints(value)\n"
        "        except Exception as exc:\n"
        "            broken.append(f'{name}: {exc}')\n"
        "assert not broken, broken\n"
        "from curator.reporters import Reporter, RichReporter\n"
        "from curator.runner import checkpoint_path, default_store_path, open_store\n"
        "import curator.observing.reporters as reporters\n"
        "assert {'RichReporter', 'LogReporter', 'Reporter'} <= set(dir(reporters))\n"
    )
    _passes(code)


def test_the_version_is_answered_without_loading_the_plugin_system() -> None:
    code = (
        "import sys\nfrom curator.cli.main import main\nsys.argv = ['curator', '--version']\nmain()"
    )
    modules = _modules_after(code)
    assert "curator.cli.main" in modules
    assert not modules & {"pluggy", "curator.plugin_host.registry"}, sorted(
        modules & {"pluggy", "curator.plugin_host.registry"}
    )


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
    after = "import curator.cli.run, curator.running.runner, curator\nassert callable(curator.run)"
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
    assert "curator.running.loop" in graph
    assert "curator.running.ledger" in graph["curator.running.loop"]
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_concerns_import_each_other_only_as_the_rules_allow() -> None:
    """Issue 26: each sub-package imports only what tools/core_shape.py's FORBIDDEN allows
    (its docstring says the same); nothing but the command line imports the command line."""
    shape = _shape()
    assert shape.broken_rules(_module_imports()) == []
    # The rules catch what they are for: the model reaching into the run, the checkpoint
    # into the run, a backend into the checkpoint, anything into the command line.
    planted = {
        "curator.model.outcome": {"curator.running.loop"},
        "curator.checkpoint.latest": {"curator.running.intake"},
        "curator.backends.work": {"curator.checkpoint.store"},
        "curator.observing.metrics": {"curator.cli.output"},
        "curator.plugin_host.registry": {"curator.backends.backend"},  # allowed: a plugin base
        "curator.running.loop": {"curator.checkpoint.store"},  # allowed: the run writes it
    }
    assert shape.broken_rules(planted) == [
        "curator.backends.work (backends) imports curator.checkpoint.store (the checkpoint)",
        "curator.checkpoint.latest (the checkpoint) imports curator.running.intake (running)",
        "curator.model.outcome (the model) imports curator.running.loop (running)",
        "curator.observing.metrics (observing) imports curator.cli.output (the command line)",
    ]


def test_every_sub_package_says_what_it_owns_and_may_import() -> None:
    """Issue 26: a one-paragraph docstring per sub-package, naming what it may import."""
    package = Path(curator.__file__).parent
    for name in ("model", "backends", "running", "checkpoint", "observing", "plugin_host", "cli"):
        doc = ast.get_docstring(ast.parse((package / name / "__init__.py").read_text()))
        assert doc, f"curator.{name} has no docstring"
        if name != "cli":
            assert "import" in doc.lower(), f"curator.{name} does not say what it may import"


def test_the_old_module_names_are_the_same_modules() -> None:
    """Issue 26: code and pickles that name a module by its name before the sub-packages
    (``curator.dispatch``) get the module at its new home, the very same object."""
    code = textwrap.dedent(
        """
        import importlib, pickle, sys
        from curator import _moved
        for old, new in _moved.MOVED.items():
            then, now = importlib.import_module("curator." + old), importlib.import_module(
                "curator." + new
            )
            assert then is now, (old, then, now)
            assert now.__spec__.name == "curator." + new, now.__spec__
        from curator.reporters.summary import SummaryReporter
        from curator.observing.reporters.summary import SummaryReporter as Same
        assert SummaryReporter is Same
        import curator.model.outcome
        assert pickle.loads(b"ccurator.outcome\\nStatus\\n.") is curator.model.outcome.Status
        assert pickle.loads(b"ccurator.metrics\\nMetrics\\n.") is curator.Metrics
        import curator, importlib.util
        assert curator.metrics is importlib.import_module("curator.observing.metrics")
        assert importlib.util.find_spec("curator.reporters.nothing_here") is None
        from curator.observing import Capture, Provides
        from curator.backends import SequentialBackend
        assert SequentialBackend.name == "sequential"
        print(len(_moved.MOVED))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50


def test_a_worker_loading_the_work_imports_neither_pluggy_nor_the_plugin_system() -> None:
    """Review of issue 26: Work lives in curator.backends; the package imports nothing, so a
    worker that unpickles a Work does not load the built-in backends, the hooks or pluggy."""
    code = (
        "import sys, curator.backends.work\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('curator.', 'pluggy')))\n"
        "print(loaded)\n"
        "assert not any(m.startswith(('pluggy', 'curator.plugin_host')) for m in loaded)\n"
        "assert 'curator.backends.builtin' not in loaded"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


WORKER_NEEDS_NONE_OF = {"dataclasses", "inspect", "pathlib", "json", "pluggy", "rich"}
"""Each costs a worker's start 1-7 ms, on the critical path of every short run."""


def test_the_worker_side_of_the_core_imports_nothing_a_worker_does_not_need() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import curator.backends.work, curator.backends.spawning, curator.model.pickling\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    imported = set(ast.literal_eval(proc.stdout.splitlines()[-1]))
    assert "curator.backends.work" in imported
    assert not imported & WORKER_NEEDS_NONE_OF, sorted(imported & WORKER_NEEDS_NONE_OF)
