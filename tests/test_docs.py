"""The docs must stay true to the code."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import re
import sys
import types
from pathlib import Path

import pytest
from pipelines import numbers

from curator import hookspecs, run
from curator.cli.main import build_parser
from curator.testing.events import EventRecorder
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
    assert len(specs) == 6
    for name, fn in specs.items():
        doc = inspect.getdoc(fn) or ""
        assert doc.startswith(("Called", "Return")), name
        assert "process" in doc, f"{name} must say in which process it is called"


def test_every_hookspec_is_in_the_generated_hook_reference() -> None:
    text = (DOCS / "hooks.md").read_text()
    directive = re.search(r"automodule:: curator\.hookspecs\n\s+:members: (.+)", text)
    assert directive is not None, "hooks.md must generate the reference from curator.hookspecs"
    documented = {name.strip() for name in directive.group(1).split(",")}
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
    assert ".. argparse::" in text
    assert ":module: curator.cli.main" in text
    assert ":func: build_parser" in text
    # Every subcommand is reachable from the parser the page is generated from.
    commands = _subcommands(build_parser())
    for command in ("backends list", "backends show", "reporters list", "plugins list"):
        assert f"curator {command}" in commands
    assert {"curator run", "curator status"} <= set(commands)


def test_the_readme_example_runs_as_shown() -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "[['2: C'], ['0: A']]"
    assert "'total': 2" in lines[1]


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
    backend_module = _module_from(blocks[0], "doc_backend_example", monkeypatch)
    reporter_module = _module_from(blocks[1], "doc_reporter_example", monkeypatch)
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
