"""The post-import hook capture uses to set up its logging catcher only once logging exists."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from curator.observing.after_import import when_imported


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a module nobody imported yet (it counts its executions)."""
    name = f"late_module_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text("import builtins\nEXECUTED = True\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_the_callback_runs_right_after_the_import_with_the_module_whole(module: str) -> None:
    seen: list[object] = []
    when_imported(module, lambda: seen.append(sys.modules[module].VALUE))
    assert seen == []  # nothing imported it yet, and the hook does not
    assert module not in sys.modules
    imported = importlib.import_module(module)
    assert seen == [42]
    assert imported.__loader__.get_source(module).endswith("VALUE = 42\n")  # the real loader's
    importlib.reload(imported)
    assert seen == [42]  # once: a reload calls nothing
    assert not any(type(finder).__name__ == "_Watch" for finder in sys.meta_path)


def test_asking_whether_the_module_exists_does_not_use_the_watch_up(module: str) -> None:
    seen: list[str] = []
    when_imported(module, lambda: seen.append("called"))
    assert importlib.util.find_spec(module) is not None  # a library's "is it installed?"
    assert seen == []
    importlib.import_module(module)
    assert seen == ["called"]


def test_an_imported_module_calls_back_at_once(module: str) -> None:
    importlib.import_module(module)
    seen: list[str] = []
    cancel = when_imported(module, lambda: seen.append("called"))
    assert seen == ["called"]
    cancel()  # nothing left to cancel


def test_a_cancelled_watch_calls_nothing_and_leaves_the_import_alone(module: str) -> None:
    seen: list[str] = []
    cancel = when_imported(module, lambda: seen.append("called"))
    cancel()
    assert importlib.import_module(module).VALUE == 42
    assert seen == []
    assert not any(type(finder).__name__ == "_Watch" for finder in sys.meta_path)


def test_a_failing_callback_is_said_and_the_import_still_succeeds(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("no catcher today")

    when_imported(module, broken)
    assert importlib.import_module(module).VALUE == 42
    said = capsys.readouterr().err
    assert f"curator: after importing {module}: RuntimeError('no catcher today')" in said


def test_the_watch_never_changes_the_finder_list_an_import_is_walking(module: str) -> None:
    # importlib walks the list it took from sys.meta_path: a watch inserted or removed
    # in place would shift the finders under an import running in another thread.
    walking = sys.meta_path
    before = list(walking)
    cancel = when_imported(module, lambda: None)
    assert sys.meta_path is not walking
    assert walking == before
    walking = sys.meta_path
    cancel()
    assert sys.meta_path is not walking
    assert len(walking) == len(before) + 1
    assert sys.meta_path == before


def test_the_wrapped_loader_copies_without_recursion(module: str) -> None:
    import copy

    when_imported(module, lambda: None)
    loader = importlib.import_module(module).__loader__
    assert copy.copy(loader).get_source(module).endswith("VALUE = 42\n")


CATCHER_AFTER_ALL = """
import sys
from curator.observing import capture

assert "logging" not in sys.modules
capture.acquire()
# An import that goes around the watch (a finder ahead of it, a thread that found
# logging before the watch was set): the next item still gets the catcher.
sys.meta_path = [f for f in sys.meta_path if type(f).__name__ != "_Watch"]
import logging

buffer = capture.begin()
logging.getLogger("late").warning("item logs")
print(repr(capture.end(buffer).text))
capture.release()
"""


def test_an_import_past_the_watch_still_has_the_next_item_caught() -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", CATCHER_AFTER_ALL], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "'WARNING late: item logs\\n'\n"
