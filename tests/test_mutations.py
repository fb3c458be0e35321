"""The mutation script stays runnable: every mutant can still be planted where it says.

``benchmarks/mutations.py`` (``tox -e mutations``) takes minutes; this check takes
milliseconds, so a moved file or an edited line breaks the core suite at once instead of
the script months later.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutations", ROOT / "benchmarks/mutations.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutations"] = module  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["mutations"]
    return module


SCRIPT = _script()
MUTATIONS = SCRIPT.MUTATIONS


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_mutation_can_be_planted_and_its_tests_exist(mutation: object) -> None:
    assert SCRIPT.problems(mutation) == []


def test_each_mutation_changes_something_and_has_a_unique_name() -> None:
    assert all(m.before != m.after and m.tests for m in MUTATIONS)
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)


def test_a_moved_file_or_an_edited_line_is_a_problem(tmp_path: Path) -> None:
    mutation = MUTATIONS[0]
    assert SCRIPT.problems(mutation, root=tmp_path) != []  # nothing there
    target = tmp_path / mutation.path
    target.parent.mkdir(parents=True)
    target.write_text(mutation.before + "\n" + mutation.before)
    for test in mutation.tests:
        (tmp_path / test.split("::")[0]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / test.split("::")[0]).touch()
    assert "occurs 2 times" in " ".join(SCRIPT.problems(mutation, root=tmp_path))
    target.write_text(mutation.before)
    assert SCRIPT.problems(mutation, root=tmp_path) == []
