"""The docs must stay true to the code."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import inspect
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from pipelines import numbers

from curator import Registry, hookspecs, run
from curator.cli.main import build_parser
from curator.plugin_host.plugins import PluginSettings
from curator.testing.events import EventRecorder
from curator.testing.limits import KitLimits
from curator.testing.registries import isolated_registry

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def _hookspecs() -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("curator_")
    }


def test_every_hookspec_says_when_and_where_it_is_called() -> None:
    specs = _hookspecs()
    assert len(specs) == 9
    for name, fn in specs.items():
        doc = inspect.getdoc(fn) or ""
        assert doc.startswith(("Called", "Return")), name
        assert "process" in doc, f"{name} must say in which process it is called"


def test_every_hookspec_is_in_the_generated_hook_reference() -> None:
    text = (DOCS / "hooks.md").read_text()
    assert "<!-- generated: hooks -->" in text, (
        "hooks.md must be generated from curator.plugin_host.hookspecs"
    )
    documented = set(re.findall(r"^### `(curator_\w+)`$", text, flags=re.MULTILINE))
    assert documented == set(_hookspecs()), "every hookspec must be listed in docs/hooks.md"


def test_every_hookspec_documents_its_arguments() -> None:
    for name, fn in _hookspecs().items():
        params = list(inspect.signature(fn).parameters)  # type: ignore[arg-type]
        doc = inspect.getdoc(fn) or ""
        for param in params:
            assert re.search(rf"^{param}$", doc, flags=re.MULTILINE), (
                f"{name}: {param} undocumented"
            )


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "curator") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_subcommands(sub, f"{prefix} {name}"))
    return found


def test_the_cli_reference_is_generated_from_the_parser() -> None:
    text = (DOCS / "cli.md").read_text()
    assert "<!-- generated: cli -->" in text
    # Every command that takes arguments has its section, generated from the parser (with the
    # built-in plugins' commands: status and logs come with the built-in plugin checkpoint).
    commands = _subcommands(build_parser(Registry.load(PluginSettings(), entrypoints=False)))
    for command in ("backends list", "backends show", "reporters list", "plugins list"):
        assert f"curator {command}" in commands
    assert {"curator run", "curator status"} <= set(commands)
    for command in commands:
        if command.count(" ") == 2 or command in ("curator run", "curator status"):
            assert f"### `{command}`" in text, command


def test_the_readme_example_runs_as_shown() -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "[['2: C'], ['0: A']]"
    assert re.fullmatch(
        r"2 items: 2 ok in \d+\.\d\d s \(.* items/s, thread-pool, jobs=2\)", lines[1]
    )
    assert lines[2].startswith("  time per stage: Files (source) ")


def _module_from(code: str, name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, f"plugins.md ({name})", "exec"), module.__dict__)
    return module


def test_the_backend_and_reporter_examples_in_the_plugin_guide_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (DOCS / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    (backend_block,) = [b for b in blocks if "class ReverseBackend" in b]
    (reporter_block,) = [b for b in blocks if "def curator_register_reporters" in b]
    backend_module = _module_from(backend_block, "doc_backend_example", monkeypatch)
    reporter_module = _module_from(reporter_block, "doc_reporter_example", monkeypatch)
    registry = isolated_registry(
        ("backend-example", backend_module), ("reporter-example", reporter_module)
    )
    assert registry.backends["reverse"].status == "ok"
    # A backend that runs one item at a time is itself called with jobs=1, options and all;
    # the reporter sees every item; results keep the requested order.
    events = EventRecorder()
    result = run(
        numbers(3),
        backend="reverse",
        registry=registry,
        reporter=["dots", events],
        options={"announce": "true"},
    )
    assert result.outputs == [["0"], ["2"], ["4"]]
    assert capsys.readouterr().out == "2\n.1\n.0\n.\n"  # announcements, then dots
    assert [(e.hook, e.index) for e in events.events[1:-1]] == [
        ("task_start", 2),
        ("task_finish", 2),
        ("task_start", 1),
        ("task_finish", 1),
        ("task_start", 0),
        ("task_finish", 0),
    ]


def test_the_generated_docs_are_current_and_read_in_full_as_files() -> None:
    tool = Path(__file__).parent.parent / "tools" / "gen_docs.py"
    check = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    # Read on a code host, each page shows its content, not a directive.
    for page in ("hooks.md", "cli.md", "tutorial-backend.md"):
        text = (DOCS / page).read_text()
        assert "{eval-rst}" not in text
        assert "{literalinclude}" not in text
    hooks = (DOCS / "hooks.md").read_text()
    for name in ("curator_run_start", "curator_task_finish", "curator_register_backends"):
        assert f"### `{name}`" in hooks
    assert "- `outcome`: Status, value or error" in hooks
    cli = (DOCS / "cli.md").read_text()
    assert "### `curator run`" in cli
    assert "| `--resume` |" in cli
    tutorial = (DOCS / "tutorial-backend.md").read_text()
    backend = Path(__file__).parent.parent / "examples/loky-backend/src/curator_backend_loky"
    assert (backend / "backend.py").read_text().strip() in tutorial


def test_the_docs_generator_notices_a_stale_page(tmp_path: Path) -> None:
    tool = Path(__file__).parent.parent / "tools" / "gen_docs.py"
    spec = importlib.util.spec_from_file_location("gen_docs", tool)
    assert spec is not None
    assert spec.loader is not None
    gen_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_docs)
    stale = "<!-- generated: file LICENSE -->\nold text\n<!-- end generated -->\n"
    fresh = gen_docs.regenerate(stale)
    assert "old text" not in fresh
    assert "Apache License" in fresh
    assert gen_docs.regenerate(fresh) == fresh


def test_every_number_the_kit_enforces_is_in_the_testing_guide() -> None:
    """docs/testing.md lists each KitLimits field with its default, and nothing else."""
    text = (DOCS / "testing.md").read_text()
    section = text[text.index("## Limits") : text.index("## The kit can fail")]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([\d.]+) \|", section, flags=re.MULTILINE))
    defaults = {f.name: f.default for f in dataclasses.fields(KitLimits)}
    assert set(rows) == set(defaults)
    assert {name: float(value) for name, value in rows.items()} == {
        name: float(value)  # type: ignore[arg-type]
        for name, value in defaults.items()
    }


def test_the_kits_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match=r"KitLimits\.check must be a number > 0, not -1"):
        KitLimits(check=-1)
